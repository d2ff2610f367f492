"""Grapheme-to-grapheme (G2G) variants: other spellings that sound like an entity.

A recogniser that hears a rare name correctly often spells it the way it sounds
("zelensky" for "Zelenskyy"). For each word of an entity, its pronunciations (from a
:class:`~biasing.lexicon.lexicon.Lexicon`) are decoded back into spellings with the
alignment table (:mod:`biasing.lexicon.alignment`): a beam search over the phones, each
step writing a letter chunk for a chunk of 0-2 phones, scored by

    (1 - reverse_weight) * log P(letters | phones) + reverse_weight * log P(phones | letters)

with probabilities for the chunk's position in the word (first, middle, last) interpolated
with position-free ones. The second term keeps spellings that read back as the same sound
(it penalises "c" for /S/, which more often says /K/).

A variant's score ``logp`` (<= 0) is its log-probability ratio to the most likely spelling
of the word's pronunciations, summed over the words that differ from the canonical
spelling; variants below ``min_logp``, outside the model's characters, with a letter
tripled, or too far from the canonical spelling are dropped, the canonical spelling itself
is never returned. Results for a list are cached on disk by content hash.

>>> spelling_variants(["Zelenskyy", "Fremont"])        # doctest: +SKIP
{'Zelenskyy': [('zelensky', -0.2), ...], 'Fremont': [('freemont', -1.9), ...]}
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..entities import UnitInventory
from ..paths import cache_root
from .alignment import BOUNDARY, AlignmentTable, _write_json_atomic, load_alignment
from .arpabet import Phones, strip_stress
from .g2p import g2p_version
from .lexicon import Lexicon

FORMAT_VERSION = 1
_LOWER = UnitInventory(chars=frozenset("abcdefghijklmnopqrstuvwxyz'"), lower_case=True,
                       has_space=True)
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")
_CANDIDATES = 24  # spellings per word ranked against the canonical spelling


@dataclass(frozen=True)
class G2GOptions:
    """What :func:`spelling_variants` returns and how hard it searches."""

    k: int = 3  # variants per entity, canonical spelling excluded
    min_logp: float = -4.0  # drop variants whose score (see spelling_variants) is below this
    edit_weight: float = 0.5  # score paid per character edit away from the canonical spelling
    max_edit_fraction: float = 0.5  # drop variants farther than this x word length (edits)
    beam: int = 16  # partial spellings kept per phone position
    chunk_choices: int = 6  # letter chunks tried per phone chunk (the most frequent)
    pronunciations: int = 3  # pronunciations decoded per word

    def __post_init__(self) -> None:
        for name in ("k", "beam", "chunk_choices", "pronunciations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"G2GOptions.{name} must be an integer >= 1, got {value!r}")
        if not (math.isfinite(self.min_logp) and self.min_logp <= 0):
            raise ValueError(f"G2GOptions.min_logp must be a finite number <= 0, "
                             f"got {self.min_logp!r}")
        if not (math.isfinite(self.edit_weight) and self.edit_weight >= 0):
            raise ValueError(f"G2GOptions.edit_weight must be a finite number >= 0, "
                             f"got {self.edit_weight!r}")
        if not self.max_edit_fraction > 0:
            raise ValueError(f"G2GOptions.max_edit_fraction must be > 0, "
                             f"got {self.max_edit_fraction!r}")


def spelling_variants(entities: Sequence[str],
                      inventory: UnitInventory | Iterable[str] | None = None,
                      options: G2GOptions | None = None, *,
                      lexicon: Lexicon | None = None,
                      table: AlignmentTable | None = None,
                      cache_dir: str | os.PathLike[str] | None = None,
                      use_cache: bool = True) -> dict[str, list[tuple[str, float]]]:
    """Up to ``options.k`` alternative spellings per entity, best first.

    Args:
        entities: entity texts as the model spells them (e.g. the output of
            :func:`biasing.entities.normalize_entity`), words separated by spaces.
        inventory: characters the model can write (a :class:`UnitInventory` or any
            iterable of characters); default lower-case a-z and apostrophe. Variants copy
            the canonical word's capitalisation unless the inventory is lower-case.
        options: see :class:`G2GOptions`.
        lexicon: pronunciation source (user entries, CMUdict, G2P); default ``Lexicon()``.
        table: alignment table; default :func:`~biasing.lexicon.alignment.load_alignment` ().
        cache_dir: folder for cached results; default ``~/.cache/ctc-biasing/g2g``.
        use_cache: read and write the on-disk cache.

    Returns:
        ``{entity: [(variant, logp), ...]}`` for every distinct entity; ``logp <= 0``.
        Words without letters (digits, symbols) are kept as written.
    """
    if isinstance(entities, str):
        raise TypeError(f"entities must be a sequence of strings, not the string "
                        f"{entities[:40]!r}")
    for entity in entities:
        if not isinstance(entity, str) or not entity.strip():
            raise ValueError(f"entities must be non-empty strings, got {entity!r}")
    inv = _as_inventory(inventory)
    options = options or G2GOptions()
    lexicon = lexicon if lexicon is not None else Lexicon()
    table = table if table is not None else load_alignment()
    texts = list(dict.fromkeys(" ".join(e.split()) for e in entities))
    path = None
    if use_cache:
        config = json.dumps({"format": FORMAT_VERSION, "options": asdict(options),
                             "table": table.key, "g2p": g2p_version(), "lexicon": lexicon.key,
                             "chars": "".join(sorted(inv.chars)), "lower": inv.lower_case,
                             "space": inv.has_space, "entities": texts}, sort_keys=True)
        digest = hashlib.sha256(config.encode()).hexdigest()[:24]
        folder = Path(cache_dir) if cache_dir is not None else cache_root() / "g2g"
        path = folder / f"variants-{digest}.json"
        if path.is_file():
            try:
                cached = json.loads(path.read_text(encoding="utf-8"))
                return {t: [(str(v), float(s)) for v, s in cached[t]] for t in texts}
            except (ValueError, KeyError, TypeError):
                pass  # damaged cache: recompute and overwrite
    out = _compile(texts, inv, options, lexicon, table)
    if path is not None:
        _write_json_atomic(path, out)
    return {t: [(v, s) for v, s in out[t]] for t in texts}


def word_variants(word: str, pronunciations: Sequence[Phones],
                  table: AlignmentTable | None = None,
                  options: G2GOptions | None = None) -> list[tuple[str, float]]:
    """Spellings of one word's pronunciations, best first, with their scores (<= 0).

    Unfiltered except for the score floor and tripled letters; the canonical spelling may
    be among them (it is what :func:`spelling_variants` then drops).
    """
    options = options or G2GOptions()
    table = table if table is not None else load_alignment()
    return _spell(tuple(strip_stress(p) for p in pronunciations[: options.pronunciations]),
                  _model(table, options.chunk_choices), options)


def _compile(texts: list[str], inv: UnitInventory, options: G2GOptions, lexicon: Lexicon,
             table: AlignmentTable) -> dict[str, list[tuple[str, float]]]:
    model = _model(table, options.chunk_choices)
    words_of = [(t.casefold() if inv.lower_case else t).split(" ") for t in texts]
    # pronunciations of each distinct word with letters (a word inside a multi-word user
    # entry is looked up with its entity, below)
    plain = sorted({w for words in words_of for w in words if _spellable(w)})
    per_word = dict(zip(plain, (p[0] if p else [] for p in
                                lexicon.word_pronunciations_batch(plain))))
    spelled: dict[tuple[str, tuple[Phones, ...]], list[tuple[str, float]]] = {}
    out: dict[str, list[tuple[str, float]]] = {}
    for text, words in zip(texts, words_of):
        prons: list[list[Phones]] = [per_word.get(w, []) for w in words]
        if text in lexicon:
            user = lexicon.word_pronunciations(text)
            if len(user) == len(words):
                prons = user
        choices: list[list[tuple[str, float]]] = []
        for word, word_prons in zip(words, prons):
            options_here = [(word, 0.0)]
            if word_prons and _spellable(word):
                key = (word.casefold(), tuple(strip_stress(p)
                                              for p in word_prons[: options.pronunciations]))
                if key not in spelled:
                    spelled[key] = _spell(key[1], model, options)
                options_here += _rank(word, spelled[key], inv, options)
            choices.append(options_here)
        out[text] = _combine(choices, options)
    return out


def _spellable(word: str) -> bool:
    letters = word.casefold().replace("'", "")
    return bool(letters) and all(c in _LETTERS for c in letters)


def _rank(word: str, spellings: list[tuple[str, float]], inv: UnitInventory,
          options: G2GOptions) -> list[tuple[str, float]]:
    """Score spellings against the canonical ``word``; keep the best ``k`` that pass."""
    canonical = word.casefold()
    bare = canonical.replace("'", "")
    limit = max(1, round(options.max_edit_fraction * len(bare)))
    out: list[tuple[str, float]] = []
    for spelling, logp in spellings:  # best logp first; a score is at most its logp
        if len(out) >= options.k and logp <= sorted(s for _, s in out)[-options.k]:
            break
        if spelling in (canonical, bare):
            continue
        # the most edits that still clear both limits
        most = limit if options.edit_weight == 0 else min(
            limit, int((logp - options.min_logp) / options.edit_weight + 1e-9))
        edits = _edit_distance(spelling, bare, most)
        if edits > most:
            continue
        score = logp - options.edit_weight * edits
        cased = spelling if inv.lower_case else _copy_case(word, spelling)
        if all(c in inv.chars for c in cased):
            out.append((cased, round(score, 3)))
    out.sort(key=lambda item: -item[1])
    return out[: options.k]


def _combine(choices: list[list[tuple[str, float]]], options: G2GOptions,
             ) -> list[tuple[str, float]]:
    """Top-k word combinations by summed score; the all-canonical one (score 0) excluded."""
    combos: list[tuple[float, str]] = [(0.0, "")]
    for word_choices in choices:
        merged = ((score + s, f"{text} {spelling}" if text else spelling)
                  for score, text in combos for spelling, s in word_choices)
        combos = heapq.nlargest(options.k + 1, merged, key=lambda item: item[0])
    canonical = " ".join(c[0][0] for c in choices)
    return [(text, round(score, 3)) for score, text in combos
            if text != canonical and score >= options.min_logp][: options.k]


def _spell(prons: tuple[Phones, ...], model: _Model, options: G2GOptions,
           ) -> list[tuple[str, float]]:
    """Beam search from phones to spellings; scores relative to the best spelling."""
    found: dict[str, float] = {}
    for phones in dict.fromkeys(prons):
        if phones:
            for spelling, score in _beam(phones, model, options):
                if score > found.get(spelling, -math.inf):
                    found[spelling] = score
    if not found:
        return []
    best = max(found.values())
    ranked = sorted(((s - best, w) for w, s in found.items()), reverse=True)
    return [(w, round(s, 3)) for s, w in ranked
            if s >= options.min_logp and not _tripled(w)][: _CANDIDATES]


def _beam(phones: Phones, model: _Model, options: G2GOptions) -> list[tuple[str, float]]:
    """Spellings of one pronunciation with their joint log-probabilities, best first.

    A beam search over phone positions whose states are (spelling, last pair); the exact
    best completion of every state (:meth:`_Model.completions`) prunes whatever cannot end
    within ``min_logp`` of the best spelling.
    """
    n = len(phones)
    rest = model.completions(phones)
    floor = rest[0][(BOUNDARY, False)] + options.min_logp
    # layers[j]: (partial spelling, last pair) -> (score, last chunk silent), after j phones
    layers: list[dict[tuple[str, int], tuple[float, bool]]] = [{} for _ in range(n + 1)]
    layers[0][("", BOUNDARY)] = (0.0, False)
    done: dict[str, float] = {}
    logp, letters, silent_pairs = model.logp, model.letters, model.silent
    for j in range(n + 1):
        layer, ahead = layers[j], rest[j]
        for (spelling, last), (score, silent) in list(layer.items()):
            if not silent:  # silent letters ("gh", a final "e"): one chunk in a row at most
                row = logp[last]
                for x in silent_pairs:
                    total = score + row[x]
                    if total + ahead[(x, True)] >= floor:
                        key = (spelling + letters[x], x)
                        if total > layer.get(key, (-math.inf, True))[0]:
                            layer[key] = (total, True)
        if len(layer) > options.beam:
            layer = dict(heapq.nlargest(options.beam, layer.items(), key=lambda kv: kv[1][0]))
        for (spelling, last), (score, _) in layer.items():
            row = logp[last]
            if j == n:
                total = score + row[BOUNDARY]
                if total >= floor and total > done.get(spelling, -math.inf):
                    done[spelling] = total
                continue
            for b in (1, 2):
                if j + b > n:
                    break
                following, later = layers[j + b], rest[j + b]
                for x in model.by_phones.get(phones[j:j + b], ()):
                    total = score + row[x]
                    if total + later.get((x, False), -math.inf) >= floor:
                        key = (spelling + letters[x], x)
                        if total > following.get(key, (-math.inf, False))[0]:
                            following[key] = (total, False)
    return sorted(done.items(), key=lambda kv: -kv[1])


class _Model:
    """The alignment table as a joint-sequence bigram, P(pair | previous pair).

    Witten-Bell smoothing backs off to pair unigrams. ``logp[previous][pair]`` holds the
    natural-log probabilities as nested lists (the search reads them millions of times);
    ``by_phones`` lists the pairs tried for a phone chunk (the ``choices`` most frequent).
    """

    def __init__(self, table: AlignmentTable, choices: int) -> None:
        import numpy as np

        self.letters = [g for g, _ in table.pairs]
        n_pairs = len(table.pairs)
        unigrams = np.asarray(table.unigrams, dtype=np.float64)
        unigram = (unigrams + 0.5) / (unigrams.sum() + 0.5 * n_pairs)
        bigrams = np.asarray(table.bigrams, dtype=np.int64).reshape(-1, 3)
        counts = np.zeros((n_pairs, n_pairs))
        counts[bigrams[:, 0], bigrams[:, 1]] = bigrams[:, 2]
        out_total = counts.sum(axis=1)
        out_types = (counts > 0).sum(axis=1)
        seen = out_total + out_types
        backoff = np.where(seen > 0, out_types / np.maximum(seen, 1), 1.0)
        prob = counts / np.maximum(seen, 1)[:, None] + backoff[:, None] * unigram[None, :]
        self.logp: list[list[float]] = np.log(prob).tolist()
        ranked = sorted(range(1, n_pairs), key=lambda i: -table.unigrams[i])
        self.by_phones: dict[Phones, list[int]] = {}
        for i in ranked:
            chosen = self.by_phones.setdefault(table.pairs[i][1], [])
            if len(chosen) < choices:
                chosen.append(i)
        self.silent = self.by_phones.pop((), [])

    def completions(self, phones: Phones) -> list[dict[tuple[int, bool], float]]:
        """``rest[j][(last pair, last silent)]``: the best score that can still be added.

        Exact (a backward Viterbi pass over the same moves as the beam search), so
        ``rest[0][(BOUNDARY, False)]`` is the best spelling's score.
        """
        n = len(phones)
        logp = self.logp
        rest: list[dict[tuple[int, bool], float]] = [{} for _ in range(n + 1)]
        for j in range(n, -1, -1):
            moves = [(x, rest[j + b][(x, False)]) for b in (1, 2) if j + b <= n
                     for x in self.by_phones.get(phones[j:j + b], ())
                     if (x, False) in rest[j + b]]
            if j == n:
                moves = [(BOUNDARY, 0.0)]
            here = rest[j]
            for x in self.silent:
                row = logp[x]
                here[(x, True)] = max((row[y] + after for y, after in moves),
                                      default=-math.inf)
            silent_moves = [(x, here[(x, True)]) for x in self.silent]
            lasts = {x for b in (1, 2) if j - b >= 0
                     for x in self.by_phones.get(phones[j - b:j], ())} if j else {BOUNDARY}
            for last in lasts:
                row = logp[last]
                best = max((row[y] + after for y, after in moves), default=-math.inf)
                best = max(best, max((row[y] + after for y, after in silent_moves),
                                     default=-math.inf))
                if best > -math.inf:
                    here[(last, False)] = best
        return rest


_MODELS: dict[tuple[str, int], _Model] = {}


def _model(table: AlignmentTable, choices: int) -> _Model:
    key = (table.key, choices)
    if key not in _MODELS:
        if len(_MODELS) >= 4:
            _MODELS.clear()
        _MODELS[key] = _Model(table, choices)
    return _MODELS[key]


def _tripled(text: str) -> bool:
    return any(text[i] == text[i + 1] == text[i + 2] for i in range(len(text) - 2))


def _copy_case(original: str, spelling: str) -> str:
    letters = [c for c in original if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return spelling.upper()
    if letters and letters[0].isupper():
        return spelling[:1].upper() + spelling[1:]
    return spelling


def _edit_distance(a: str, b: str, most: int) -> int:
    """Levenshtein distance, or ``most + 1`` as soon as it must exceed ``most``.

    Only the diagonal band ``|i - j| <= most`` is filled: cells outside it exceed ``most``.
    """
    if abs(len(a) - len(b)) > most:
        return most + 1
    over = most + 1
    previous = [j if j <= most else over for j in range(len(b) + 1)]
    for i, ca in enumerate(a, start=1):
        low, high = max(1, i - most), min(len(b), i + most)
        current = [over] * (len(b) + 1)
        current[0] = i if i <= most else over
        best = current[0]
        for j in range(low, high + 1):
            value = min(previous[j] + 1, current[j - 1] + 1,
                        previous[j - 1] + (ca != b[j - 1]))
            current[j] = value
            best = min(best, value)
        if best > most:
            return over
        previous = current
    return min(previous[-1], over)


def _as_inventory(inventory: UnitInventory | Iterable[str] | None) -> UnitInventory:
    if inventory is None:
        return _LOWER
    if isinstance(inventory, UnitInventory):
        return inventory
    if isinstance(inventory, str):
        chars = frozenset(inventory)
    elif not isinstance(inventory, Iterable):
        raise TypeError(f"inventory must be a UnitInventory or characters, got "
                        f"{type(inventory).__name__}")
    else:
        chars = frozenset(inventory)
        bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise ValueError(f"inventory must hold single characters, got {bad[:5]!r}")
    if not chars & _LETTERS and not any(c.isupper() for c in chars):
        raise ValueError(f"inventory {''.join(sorted(chars))[:40]!r} has no letters a-z")
    return UnitInventory(chars=chars, lower_case=not any(c.isupper() for c in chars),
                         has_space=" " in chars)
