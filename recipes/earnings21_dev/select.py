"""Select entity-dense sentences from the Earnings-21 reference transcripts.

Writes into ``--out`` (default ``$CTC_BIASING_CACHE/earnings21_dev_text``):

- ``sentences.tsv``: ``id<TAB>text<TAB>entity|entity...`` (no header), the input of
  ``ctc-biasing make-testset``;
- ``entities.txt``: every distinct entity of the set, one per line (the "global list");
- ``entity_classes.tsv``: ``entity<TAB>classes<TAB>rare<TAB>sentences`` (header), the
  classes the transcripts give the entity, whether it counts as rare, and in how many
  selected sentences it occurs;
- ``distractors.txt``: entries of ``bias_lists/distractor_list.txt`` that are neither in
  ``oracle_list.txt`` nor in any selected sentence.

    python -m recipes.earnings21_dev.select       # reads shared_root()/data/earnings21

The selection is deterministic for a given ``--seed``; see README.md for the rules.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from biasing.paths import cache_root, checkout_root, shared_root, write_text_atomic

# The text is Earnings-21's (CC BY-SA 4.0, in the development data): it is written outside
# the repository, and only the ids of the selection are kept in it, to pin it.
DEFAULT_OUT = cache_root() / "earnings21_dev_text"
PINNED_IDS = checkout_root() / "data" / "benchmarks" / "earnings21_dev" / "selected_ids.txt"
DEFAULT_EARNINGS21 = shared_root() / "data" / "earnings21"

# Entity classes (wer_tags JSON ``entity_type``) whose entities the set is about.
TARGET_CLASSES = ("PERSON", "ORG", "PRODUCT", "GPE")
# Punctuation (nlp column 5) that ends a sentence; "…" (trailing off) also splits but such
# sentences are dropped as unfinished.
SENTENCE_END = (".", "?", "!")
SPLIT_AT = (*SENTENCE_END, "…")
# Hesitations that a clean read sentence should not contain.
FILLERS = frozenset({"uh", "um", "uh-huh", "mm", "mhm", "hmm", "er", "erm", "ah"})
# A word made of letters, with inner apostrophes or hyphens and an optional final apostrophe
# (no digits, no partial words like "we're-", no "U.S.", no symbols).
_WORD = re.compile(r"^[^\W\d_]+(?:['’\-][^\W\d_]+)*['’]?$")
# Lower-case function words the automatic tags sometimes put at an entity's edges
# ("the Monro Forward Initiative", "Alan Alanis of").
_EDGE_WORDS = frozenset({"the", "a", "an", "of", "from", "and", "with", "at", "in", "for", "to",
                         "by", "on"})
# Abbreviations whose period does not end a sentence unless a capitalised word follows
# (titles never end one).
_TITLES = frozenset({"mr", "mrs", "ms", "dr", "st", "messrs"})
_ABBREVIATIONS = frozenset({"inc", "corp", "co", "ltd", "jr", "sr", "vs", "no", "llc"})
_POSSESSIVE = re.compile(r"['’]s?$")


@dataclass(frozen=True)
class Token:
    """One line of an ``.nlp`` file."""

    text: str  # the token as written, already cased ("Monro", "we're")
    speaker: str  # speaker number as written
    punct: str  # punctuation that follows the token ("" when none)
    case: str  # UC / LC / CA / MC, as written (not used for spelling: it is noisy)
    entity_ids: tuple[str, ...]  # wer_tags ids the token belongs to


@dataclass(frozen=True)
class Entity:
    """A tagged entity of a target class inside one sentence."""

    text: str  # original spelling, leading "the" and a final "'s" removed ("Brett Ponton")
    entity_class: str  # PERSON / ORG / PRODUCT / GPE


@dataclass(frozen=True)
class Sentence:
    """A candidate sentence of one call."""

    call_id: str  # Earnings-21 file id, e.g. "4320211"
    index: int  # position of the sentence in the call, from 0
    text: str  # reconstructed text with punctuation, first letter upper case
    entities: tuple[Entity, ...]  # target-class entities, in order of appearance

    @property
    def sentence_id(self) -> str:
        return f"e21_{self.call_id}_{self.index}"


def read_nlp(path: Path) -> list[Token]:
    """Read an Earnings-21 ``.nlp`` token file (pipe separated, header line, CRLF or LF)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].startswith("token|"):
        raise ValueError(f"{str(path)!r} is not an .nlp file: first line is {lines[:1]!r}")
    tokens = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("|")
        if len(fields) != 8:
            raise ValueError(f"{str(path)!r} line {number}: expected 8 fields, got {line!r}")
        ids = ast.literal_eval(fields[7]) if fields[7] else []
        tokens.append(Token(fields[0], fields[1], fields[4], fields[5], tuple(ids)))
    return tokens


def read_entity_classes(path: Path) -> dict[str, str]:
    """Read a ``wer_tag.json`` sidecar: entity id -> entity class."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {key: value["entity_type"] for key, value in data.items()}


def _ends_sentence(token: Token, following: Token | None) -> bool:
    if token.punct not in SPLIT_AT:
        return False
    word = token.text.lower()
    if token.punct != "." or following is None or word not in _TITLES | _ABBREVIATIONS:
        return True
    return word in _ABBREVIATIONS and following.text[:1].isupper()


def split_sentences(tokens: Sequence[Token]) -> list[range]:
    """Token index ranges of the sentences: split after sentence punctuation (not after
    "Mr." or "Inc." inside a sentence) and at speaker changes."""
    spans: list[range] = []
    start = 0
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        speaker_change = following is not None and following.speaker != token.speaker
        if following is None or speaker_change or _ends_sentence(token, following):
            spans.append(range(start, i + 1))
            start = i + 1
    return spans


def sentence_text(tokens: Sequence[Token]) -> str:
    """Join tokens with their punctuation; the first letter is made upper case."""
    text = " ".join(token.text + token.punct for token in tokens)
    return text[:1].upper() + text[1:]


def entity_spelling(words: Sequence[str]) -> str:
    """Spelling of an entity for a biasing list: drop lower-case function words at its
    edges and a final "'s".

    >>> entity_spelling(["the", "Monro", "Forward", "Initiative's"])
    'Monro Forward Initiative'
    """
    words = list(words)
    while words and words[0] in _EDGE_WORDS:
        words = words[1:]
    while words and words[-1] in _EDGE_WORDS:
        words = words[:-1]
    if words:
        words[-1] = _POSSESSIVE.sub("", words[-1])
    return " ".join(word for word in words if word)


def is_clean_sentence(tokens: Sequence[Token], min_words: int, max_words: int) -> bool:
    """A sentence a TTS voice can read as written: min..max words, ends with . ? or !,
    only plain words (no digits, symbols, partial words, acronyms in capitals) and no
    hesitations."""
    if not min_words <= len(tokens) <= max_words or tokens[-1].punct not in SENTENCE_END:
        return False
    for token in tokens:
        if not _WORD.match(token.text) or token.text.lower() in FILLERS:
            return False
        if _is_acronym(token.text):
            return False
    return True


def _is_acronym(word: str) -> bool:
    """Two or more capitals, optionally followed by a plural "s" ("GAAP", "DSOs")."""
    letters = [c for c in re.sub(r"s$", "", word) if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def sentence_entities(
    tokens: Sequence[Token], span: range, classes: dict[str, str]
) -> tuple[Entity, ...] | None:
    """Target-class entities inside ``span``; None when one crosses the sentence boundary.

    An entity is kept when it has a word starting with an upper-case letter (the automatic
    tags also mark things like "snow falls" as PERSON).
    """
    positions: dict[str, list[int]] = defaultdict(list)
    for i in span:
        for entity_id in tokens[i].entity_ids:
            if classes.get(entity_id) in TARGET_CLASSES:
                positions[entity_id].append(i)
    entities = []
    for entity_id, where in sorted(positions.items(), key=lambda item: item[1][0]):
        for neighbour in (where[0] - 1, where[-1] + 1):
            inside = 0 <= neighbour < len(tokens) and entity_id in tokens[neighbour].entity_ids
            if inside and neighbour not in span:
                return None
        text = entity_spelling([tokens[i].text for i in where])
        if text and any(word[:1].isupper() for word in text.split()):
            entities.append(Entity(text, classes[entity_id]))
    unique = {(e.text, e.entity_class): e for e in entities}
    return tuple(unique.values())


def call_sentences(
    tokens: Sequence[Token], classes: dict[str, str], call_id: str,
    min_words: int = 6, max_words: int = 30,
) -> list[Sentence]:
    """Clean sentences of one call that hold at least one target-class entity."""
    found = []
    for index, span in enumerate(split_sentences(tokens)):
        words = [tokens[i] for i in span]
        if not is_clean_sentence(words, min_words, max_words):
            continue
        entities = sentence_entities(tokens, span, classes)
        if entities:
            found.append(Sentence(call_id, index, sentence_text(words), entities))
    return found


def wordfreq_rarity(zipf_threshold: float) -> Callable[[str], bool]:
    """``word -> True`` when its wordfreq Zipf frequency in English is below the threshold.

    Raises:
        ImportError: wordfreq is not installed (``pip install wordfreq``).
    """
    try:
        from wordfreq import zipf_frequency
    except ImportError as err:
        raise ImportError("rarity by word frequency needs: pip install wordfreq") from err
    return lambda word: zipf_frequency(word.lower(), "en") < zipf_threshold


def corpus_rarity(words: Iterable[str], max_count: int) -> Callable[[str], bool]:
    """``word -> True`` when it occurs at most ``max_count`` times in ``words`` (any case)."""
    counts = Counter(word.lower() for word in words)
    return lambda word: counts[word.lower()] <= max_count


def is_rare_entity(entity: str, is_rare_word: Callable[[str], bool]) -> bool:
    """An entity is rare when at least one of its words is rare."""
    return any(is_rare_word(word) for word in re.split(r"[\s\-]+", entity) if word)


def even_cap(sizes: Iterable[int], target: int) -> int:
    """Smallest per-call cap ``c`` with ``sum(min(c, size)) >= target`` (or the largest
    size when the calls hold fewer than ``target`` sentences in all).

    >>> even_cap([10, 2, 10], 12)
    5
    """
    sizes = sorted(sizes)
    cap = 1
    while sizes and cap < sizes[-1] and sum(min(cap, n) for n in sizes) < target:
        cap += 1
    return cap


def select_sentences(
    candidates: Sequence[Sentence], rare: set[str], target: int, seed: int,
    max_per_call: int | None = None,
) -> list[Sentence]:
    """Pick up to ``target`` sentences, spread over the calls, preferring rare entities.

    Only sentences with at least one rare entity are used while there are enough of them.
    Calls take turns in a seeded order; on its turn a call gives the sentence that adds the
    most rare entities not yet in the set (then the most new entities, then the most rare
    entities, then a seeded random tie-break), and no call gives more than
    ``max_per_call`` (default: the smallest cap that still reaches ``target``, see
    ``even_cap``). Returns the sentences sorted by call and position.
    """
    if target < 1 or (max_per_call is not None and max_per_call < 1):
        raise ValueError(f"target and max_per_call must be >= 1, got {target}, {max_per_call}")
    rng = random.Random(seed)
    with_rare = [s for s in candidates if any(e.text in rare for e in s.entities)]
    pool = with_rare if len(with_rare) >= target else list(candidates)
    by_call: dict[str, list[Sentence]] = defaultdict(list)
    for sentence in pool:
        by_call[sentence.call_id].append(sentence)
    if max_per_call is None:
        max_per_call = even_cap((len(group) for group in by_call.values()), target)
    ties = {s.sentence_id: rng.random() for s in pool}
    order = sorted(by_call)
    rng.shuffle(order)
    chosen: list[Sentence] = []
    seen: set[str] = set()
    taken: Counter[str] = Counter()
    while len(chosen) < target:
        progressed = False
        for call_id in order:
            left = by_call[call_id]
            if not left or taken[call_id] >= max_per_call or len(chosen) >= target:
                continue

            def score(s: Sentence) -> tuple[int, int, int, float]:
                names = {e.text for e in s.entities}
                return (len((names & rare) - seen), len(names - seen), len(names & rare),
                        ties[s.sentence_id])

            best = max(left, key=score)
            left.remove(best)
            chosen.append(best)
            seen.update(e.text for e in best.entities)
            taken[call_id] += 1
            progressed = True
        if not progressed:
            break
    return sorted(chosen, key=lambda s: (s.call_id, s.index))


def normalise_for_match(text: str) -> str:
    """Lower case, apostrophes unified, everything but letters, digits and apostrophes a
    single space, padded with spaces (for whole-word ``in`` tests)."""
    text = text.lower().replace("’", "'")
    return " " + " ".join(re.sub(r"[^\w']+|_", " ", text).split()) + " "


def pick_distractors(
    distractors: Iterable[str], oracle: Iterable[str], sentences: Iterable[str]
) -> list[str]:
    """Distractor entries not in the oracle list (any case) and not said in any sentence
    (whole words, any case, punctuation ignored); in the order of the distractor list."""
    oracle_keys = {normalise_for_match(entry) for entry in oracle}
    said = [normalise_for_match(text) for text in sentences]
    kept, seen = [], set()
    for entry in distractors:
        key = normalise_for_match(entry)
        if not key.strip() or key in oracle_keys or key in seen:
            continue
        if any(key in text for text in said):
            continue
        seen.add(key)
        kept.append(entry.strip())
    return kept


def read_list(path: Path) -> list[str]:
    """Non-empty lines of a text file, stripped."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def write_outputs(
    out: Path, chosen: Sequence[Sentence], rare: set[str], distractors: Sequence[str]
) -> None:
    """Write sentences.tsv, entities.txt, entity_classes.tsv and distractors.txt."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [f"{s.sentence_id}\t{s.text}\t{'|'.join(e.text for e in s.entities)}"
            for s in chosen]
    write_text_atomic(out / "sentences.tsv", "\n".join(rows) + "\n")
    classes: dict[str, set[str]] = defaultdict(set)
    counts: Counter[str] = Counter()
    for sentence in chosen:
        for entity in sentence.entities:
            classes[entity.text].add(entity.entity_class)
        counts.update({e.text for e in sentence.entities})
    names = sorted(classes, key=lambda name: (name.casefold(), name))
    write_text_atomic(out / "entities.txt", "\n".join(names) + "\n")
    table = ["entity\tclasses\trare\tsentences"] + [
        f"{name}\t{','.join(sorted(classes[name]))}\t{int(name in rare)}\t{counts[name]}"
        for name in names]
    write_text_atomic(out / "entity_classes.tsv", "\n".join(table) + "\n")
    write_text_atomic(out / "distractors.txt", "\n".join(distractors) + "\n")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--earnings21", type=Path, default=DEFAULT_EARNINGS21,
                        help="Earnings-21 folder with transcripts/ and bias_lists/ "
                             "(default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder (default: %(default)s)")
    parser.add_argument("--target", type=int, default=300, help="number of sentences")
    parser.add_argument("--max-per-call", type=int, default=None,
                        help="most sentences from one call (default: the smallest cap that "
                             "still gives --target sentences)")
    parser.add_argument("--min-words", type=int, default=6)
    parser.add_argument("--max-words", type=int, default=30)
    parser.add_argument("--zipf", type=float, default=3.5,
                        help="a word is rare below this wordfreq Zipf frequency (default 3.5)")
    parser.add_argument("--corpus-max-count", type=int, default=5,
                        help="without wordfreq: a word is rare when it occurs at most this "
                             "often in Earnings-21 (default 5)")
    parser.add_argument("--seed", type=int, default=21)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    transcripts = args.earnings21 / "transcripts"
    nlp_files = sorted((transcripts / "nlp_references").glob("*.nlp"))
    if not nlp_files:
        print(f"select: no .nlp files under {transcripts / 'nlp_references'}", file=sys.stderr)
        return 2
    candidates: list[Sentence] = []
    corpus_words: list[str] = []
    for path in nlp_files:
        tokens = read_nlp(path)
        classes = read_entity_classes(transcripts / "wer_tags" / f"{path.stem}.wer_tag.json")
        candidates += call_sentences(tokens, classes, path.stem, args.min_words, args.max_words)
        corpus_words += [token.text for token in tokens]
    try:
        is_rare_word = wordfreq_rarity(args.zipf)
        rarity = f"wordfreq zipf < {args.zipf}"
    except ImportError:
        is_rare_word = corpus_rarity(corpus_words, args.corpus_max_count)
        rarity = f"at most {args.corpus_max_count} occurrences in Earnings-21"
    names = {e.text for s in candidates for e in s.entities}
    rare = {name for name in names if is_rare_entity(name, is_rare_word)}
    calls = {s.call_id for s in candidates}
    chosen = select_sentences(candidates, rare, args.target, args.seed, args.max_per_call)
    max_per_call = max(Counter(s.call_id for s in chosen).values(), default=0)
    lists = args.earnings21 / "bias_lists"
    distractors = pick_distractors(read_list(lists / "distractor_list.txt"),
                                   read_list(lists / "oracle_list.txt"),
                                   [s.text for s in chosen])
    write_outputs(args.out, chosen, rare, distractors)
    if PINNED_IDS.is_file() and (args.target, args.seed, args.zipf) == (300, 21, 3.5):
        pinned = PINNED_IDS.read_text(encoding="utf-8").split()
        if pinned != [s.sentence_id for s in chosen]:
            print(f"select: warning: the selection differs from the pinned one in "
                  f"{PINNED_IDS} (is wordfreq installed? without it rarity falls back to "
                  "corpus counts)", file=sys.stderr)
    entities = {e.text for s in chosen for e in s.entities}
    per_class = Counter(e.entity_class for s in chosen for e in s.entities)
    print(f"select: {len(candidates)} candidate sentences in {len(calls)} calls; chose "
          f"{len(chosen)} from {len({s.call_id for s in chosen})} calls (at most "
          f"{max_per_call} from one call); {len(entities)} distinct entities, "
          f"{len(entities & rare)} rare ({rarity}); entity mentions per class "
          f"{dict(sorted(per_class.items()))}; {len(distractors)} distractors",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
