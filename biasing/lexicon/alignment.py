"""Many-to-many EM alignment of CMUdict spellings to pronunciations, and a chunk bigram.

Each word's letters and (stressless) phones are cut into aligned chunks: 1-2 letters to 0-2
phones (``"ph"`` -> ``F``, ``"x"`` -> ``K S``, a silent final ``"e"`` -> nothing; two
letters to two phones is left out, it would swallow the one-to-one pairs). Expectation
maximisation (forward-backward over all segmentations, the "joint" model of Jiampojamarn
et al. 2007) estimates each (letters, phones) pair's probability, vectorised in numpy over
all words of one length at a time. Every training word is then cut along its best
(Viterbi) segmentation, and the pair sequences, with a word-boundary pair at both ends,
give unigram and bigram counts: an :class:`AlignmentTable`. The G2G module reads it as a
joint-sequence bigram model, P(pair | previous pair), so a spelling's context counts
("c" says /K/ before "a" but rarely before "y").

Training on 40,000 words takes about 5-10 s on one core; the table is cached as JSON under
``~/.cache/ctc-biasing/g2g/`` (``$CTC_BIASING_CACHE`` overrides the root), keyed by the
options and the cmudict version, so it is trained once.

>>> table = load_alignment()                          # doctest: +SKIP
>>> align_word("phoenix", ("F", "IY", "N", "IH", "K", "S"), table)  # doctest: +SKIP
[('ph', ('F',)), ('oe', ('IY',)), ('n', ('N',)), ('i', ('IH',)), ('x', ('K', 'S'))]
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..paths import atomic_write, cache_root
from ._resources import load_cmudict, package_version
from .arpabet import BASE_PHONES, Phones, strip_stress

FORMAT_VERSION = 2
BOUNDARY = 0  # index of the word-boundary pair ("", ()) in AlignmentTable.pairs
# (letters, phones) chunk shapes the alignment may use
SHAPES: tuple[tuple[int, int], ...] = ((1, 0), (1, 1), (1, 2), (2, 0), (2, 1))
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"
_G_SIZE = 27 * 27  # letter-chunk codes: c1 (1..26) or 27 * c1 + c2
_P_BASE = len(BASE_PHONES) + 1
_P_SIZE = _P_BASE * _P_BASE  # phone-chunk codes: 0 (none), p1 (1..39) or 40 * p1 + p2
_PAIRS = _G_SIZE * _P_SIZE  # pair codes; code _PAIRS itself means "no edge"


@dataclass(frozen=True)
class AlignmentOptions:
    """How the alignment table is trained (every field is part of the cache key)."""

    words: int = 40_000  # CMUdict words sampled for training (all their pronunciations)
    iterations: int = 5  # EM iterations
    seed: int = 0  # seeds the word sample
    max_letters: int = 16  # longer words are left out of training

    def __post_init__(self) -> None:
        if self.words < 100:
            raise ValueError(f"AlignmentOptions.words must be >= 100, got {self.words}")
        if self.iterations < 1:
            raise ValueError(f"AlignmentOptions.iterations must be >= 1, got {self.iterations}")
        if self.max_letters < 2:
            raise ValueError(f"AlignmentOptions.max_letters must be >= 2, got {self.max_letters}")


@dataclass(frozen=True)
class AlignmentTable:
    """Counts of aligned (letters, phones) chunk pairs in Viterbi-segmented CMUdict words."""

    key: str  # identifies the training options, cmudict version and format
    pairs: tuple[tuple[str, Phones], ...]  # chunk pairs; pairs[0] = ("", ()) is the boundary
    unigrams: tuple[int, ...]  # occurrences of each pair (the boundary: twice per word)
    bigrams: tuple[tuple[int, int, int], ...]  # (previous pair, pair, count), by index
    words: int  # training pronunciations that could be aligned

    def __post_init__(self) -> None:
        if len(self.unigrams) != len(self.pairs) or not self.pairs \
                or self.pairs[BOUNDARY] != ("", ()):
            raise ValueError("AlignmentTable: pairs and unigrams disagree, or no boundary pair")


def load_alignment(options: AlignmentOptions | None = None,
                   cache_dir: str | os.PathLike[str] | None = None) -> AlignmentTable:
    """The trained table for ``options``: read from the cache, else trained and cached.

    Args:
        options: training options; defaults to :class:`AlignmentOptions` ().
        cache_dir: folder of cached tables; default ``~/.cache/ctc-biasing/g2g``.
    """
    options = options or AlignmentOptions()
    key = _table_key(options)
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / "g2g"
    path = folder / f"alignment-{key[:16]}.json"
    if path.is_file():
        try:
            return _read_table(path, key)
        except (ValueError, KeyError, TypeError):
            pass  # a damaged or foreign cache file is retrained and replaced
    table = train_alignment(options)
    _write_json_atomic(path, {
        "key": table.key, "words": table.words, "options": asdict(options),
        "pairs": [[g, " ".join(p), c] for (g, p), c in zip(table.pairs, table.unigrams)],
        "bigrams": [list(b) for b in table.bigrams]})
    return table


def train_alignment(options: AlignmentOptions | None = None) -> AlignmentTable:
    """Train the table on a seeded sample of CMUdict (no caching; see :func:`load_alignment`)."""
    import numpy as np

    options = options or AlignmentOptions()
    examples = _training_examples(options)
    buckets = [_Bucket(np, [e for e in examples if len(e[0]) == length])
               for length in sorted({len(e[0]) for e in examples})]
    prob = np.zeros(_PAIRS + 1)
    for bucket in buckets:  # start uniform over every pair seen in some segmentation
        for keys in bucket.keys.values():
            prob[keys.ravel()] = 1.0
    prob[_PAIRS] = 0.0
    prob /= prob.sum()
    for _ in range(options.iterations):
        counts = np.zeros(_PAIRS + 1)
        for bucket in buckets:
            bucket.expected_counts(prob, counts)
        counts[_PAIRS] = 0.0
        prob = counts / counts.sum()
    sequences: list[list[int]] = []
    for bucket in buckets:
        sequences += bucket.viterbi(prob)
    return _count_pairs(sequences, _table_key(options))


def align_word(word: str, phones: Phones, table: AlignmentTable) -> list[tuple[str, Phones]]:
    """Best segmentation of ``word`` against ``phones`` under the table's pair unigrams.

    Raises ``ValueError`` when no segmentation exists (e.g. more than two phones a letter).
    """
    letters = word.lower()
    target = strip_stress(phones)
    total = sum(table.unigrams[1:])
    counts = dict(zip(table.pairs[1:], table.unigrams[1:]))
    n, m = len(letters), len(target)
    best: dict[tuple[int, int], tuple[float, tuple[int, int, str, Phones] | None]] = {
        (0, 0): (0.0, None)}
    for i in range(1, n + 1):
        for j in range(m + 1):
            options = []
            for a, b in SHAPES:
                if i < a or j < b or (i - a, j - b) not in best:
                    continue
                g, p = letters[i - a:i], target[j - b:j]
                c = counts.get((g, p), 0)
                if c > 0:
                    options.append((best[(i - a, j - b)][0] + math.log(c / total),
                                    (i - a, j - b, g, p)))
            if options:
                best[(i, j)] = max(options)
    if (n, m) not in best:
        raise ValueError(f"cannot align {word!r} with {' '.join(phones)!r} under the table")
    out: list[tuple[str, Phones]] = []
    state = (n, m)
    while (back := best[state][1]) is not None:
        out.append((back[2], back[3]))
        state = (back[0], back[1])
    return out[::-1]


def _table_key(options: AlignmentOptions) -> str:
    config = json.dumps({"options": asdict(options), "shapes": SHAPES,
                         "format": FORMAT_VERSION, "cmudict": package_version("cmudict")},
                        sort_keys=True)
    return hashlib.sha256(config.encode()).hexdigest()


def _training_examples(options: AlignmentOptions) -> list[tuple[str, Phones]]:
    cmu = load_cmudict()
    eligible = sorted(w for w in cmu
                      if 2 <= len(w) <= options.max_letters and all(c in _ALPHABET for c in w))
    rng = random.Random(options.seed)
    chosen = rng.sample(eligible, min(options.words, len(eligible)))
    return [(word, strip_stress(p)) for word in chosen for p in cmu[word]
            if len(p) <= 2 * len(word)]


class _Bucket:
    """Words of one length, padded to the longest pronunciation, with their edge codes.

    ``keys[(a, b)][w, i, j]`` is the pair code of the edge that ends at letter ``i`` and
    phone ``j`` of word ``w`` after taking ``a`` letters and ``b`` phones (or "no edge").
    """

    def __init__(self, np: Any, examples: list[tuple[str, Phones]]) -> None:
        self.np = np
        phone_index = {p: i + 1 for i, p in enumerate(BASE_PHONES)}
        self.length = len(examples[0][0])
        self.n_phones = np.array([len(p) for _, p in examples])
        width = int(self.n_phones.max()) + 1
        letters = np.array([[ord(c) - 96 for c in w] for w, _ in examples])  # (W, L)
        phones = np.zeros((len(examples), width), dtype=np.int64)  # (W, P + 1), padded
        for row, (_, p) in enumerate(examples):
            phones[row, : len(p)] = [phone_index[x] for x in p]
        self.width = width
        length = self.length
        self.keys: dict[tuple[int, int], Any] = {}
        j = np.arange(width)
        for a, b in SHAPES:
            g = np.full((len(examples), length + 1), -1, dtype=np.int64)
            if a == 1:
                g[:, 1:] = letters
            else:
                g[:, 2:] = 27 * letters[:, :-1] + letters[:, 1:]
            p = np.full((len(examples), width), -1, dtype=np.int64)
            if b == 0:
                p[:] = 0
            elif b == 1:
                p[:, 1:] = phones[:, :-1]
            else:
                p[:, 2:] = _P_BASE * phones[:, :-2] + phones[:, 1:-1]
            p[j[None, :] > self.n_phones[:, None]] = -1
            code = g[:, :, None] * _P_SIZE + p[:, None, :]
            valid = (g[:, :, None] >= 0) & (p[:, None, :] >= 0)
            self.keys[(a, b)] = np.where(valid, code, _PAIRS).astype(np.int32)

    def expected_counts(self, prob: Any, counts: Any) -> None:
        """Add this bucket's expected pair counts (forward-backward) to ``counts``."""
        np = self.np
        n, length, width = len(self.n_phones), self.length, self.width
        edge = {s: prob[k] for s, k in self.keys.items()}  # (W, L + 1, P + 1) each
        alpha = np.zeros((n, length + 1, width))
        alpha[:, 0, 0] = 1.0
        for i in range(1, length + 1):
            for (a, b), e in edge.items():
                if i >= a:
                    alpha[:, i, b:] += alpha[:, i - a, : width - b] * e[:, i, b:]
        rows = np.arange(n)
        total = alpha[rows, length, self.n_phones]
        ok = total > 0
        beta = np.zeros_like(alpha)
        beta[rows, length, self.n_phones] = np.where(ok, 1.0 / np.where(ok, total, 1.0), 0.0)
        for i in range(length - 1, -1, -1):
            for (a, b), e in edge.items():
                if i + a <= length:
                    beta[:, i, : width - b] += e[:, i + a, b:] * beta[:, i + a, b:]
        for (a, b), e in edge.items():
            # posterior of every edge of this shape, by the letter i and phone j it ends at
            post = alpha[:, : length + 1 - a, : width - b] * e[:, a:, b:] * beta[:, a:, b:]
            keys = self.keys[(a, b)][:, a:, b:]
            counts += np.bincount(keys.ravel(), post.ravel(), minlength=_PAIRS + 1)

    def viterbi(self, prob: Any) -> list[list[int]]:
        """Each alignable word's best segmentation, as a list of pair codes."""
        np = self.np
        n, length, width = len(self.n_phones), self.length, self.width
        delta = np.zeros((n, length + 1, width))
        delta[:, 0, 0] = 1.0
        back = np.zeros((n, length + 1, width), dtype=np.int8)
        for i in range(1, length + 1):
            for shape, (a, b) in enumerate(SHAPES):
                if i >= a:
                    cand = delta[:, i - a, : width - b] * prob[self.keys[(a, b)][:, i, b:]]
                    better = cand > delta[:, i, b:]
                    delta[:, i, b:] = np.where(better, cand, delta[:, i, b:])
                    back[:, i, b:] = np.where(better, shape, back[:, i, b:])
        alignable = delta[np.arange(n), length, self.n_phones] > 0
        keys = [self.keys[s] for s in SHAPES]
        out = []
        for w in np.nonzero(alignable)[0].tolist():
            i, j = length, int(self.n_phones[w])
            codes = []
            while i > 0:
                shape = int(back[w, i, j])
                codes.append(int(keys[shape][w, i, j]))
                i, j = i - SHAPES[shape][0], j - SHAPES[shape][1]
            out.append(codes[::-1])
        return out


def _count_pairs(sequences: list[list[int]], key: str) -> AlignmentTable:
    """Unigram and bigram counts of pair sequences, with the boundary at both ends."""
    index: dict[int, int] = {-1: BOUNDARY}
    for codes in sequences:
        for code in codes:
            index.setdefault(code, len(index))
    unigrams = [0] * len(index)
    bigrams: dict[tuple[int, int], int] = {}
    for codes in sequences:
        previous = BOUNDARY
        unigrams[BOUNDARY] += 1
        for code in [*codes, -1]:
            current = index[code]
            unigrams[current] += 1
            bigrams[(previous, current)] = bigrams.get((previous, current), 0) + 1
            previous = current
    pairs: list[tuple[str, Phones]] = [("", ())] * len(index)
    for code, i in index.items():
        if code >= 0:
            pairs[i] = _decode_pair(code)
    return AlignmentTable(key=key, pairs=tuple(pairs), unigrams=tuple(unigrams),
                          bigrams=tuple((a, b, c) for (a, b), c in sorted(bigrams.items())),
                          words=len(sequences))


def _decode_pair(code: int) -> tuple[str, Phones]:
    g_code, p_code = divmod(code, _P_SIZE)
    letters = _ALPHABET[g_code - 1] if g_code < 27 else (
        _ALPHABET[g_code // 27 - 1] + _ALPHABET[g_code % 27 - 1])
    if p_code == 0:
        return letters, ()
    if p_code < _P_BASE:
        return letters, (BASE_PHONES[p_code - 1],)
    return letters, (BASE_PHONES[p_code // _P_BASE - 1], BASE_PHONES[p_code % _P_BASE - 1])


def _read_table(path: Path, key: str) -> AlignmentTable:
    data = json.loads(path.read_text(encoding="utf-8"))
    if data["key"] != key:
        raise ValueError(f"{path}: cached table is for another configuration")
    pairs = tuple((str(g), tuple(str(p).split())) for g, p, _ in data["pairs"])
    return AlignmentTable(key=key, pairs=pairs,
                          unigrams=tuple(int(c) for _, _, c in data["pairs"]),
                          bigrams=tuple((int(a), int(b), int(c)) for a, b, c in data["bigrams"]),
                          words=int(data["words"]))


def _write_json_atomic(path: Path, data: object) -> None:
    """Write-then-rename, so a concurrent reader never sees half a file."""
    with atomic_write(path) as stream:
        stream.write(json.dumps(data, separators=(",", ":")).encode("utf-8"))
