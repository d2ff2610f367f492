"""Recognition metrics over normalised words: WER, entity precision/recall/F1, B-WER/U-WER.

Definitions (docs/evaluation.md, "Metrics"):

- WER = (S + D + I) / N over the words of :func:`normalize_text`.
- Entity precision / recall / F1 from a word alignment (:func:`align`): an entity occurrence
  in the reference is *found* when the hypothesis holds it at the aligned place, a listed
  entity in the hypothesis that is not in the reference there is a *false alarm*.
- B-WER / U-WER (Le et al. 2021): errors on reference words of the biasing set over the
  number of such words, and the same for the other words.

>>> score = score_utterance("I met Jean Luc in Fremont", "i met john luke in fremont",
...                         ["Jean Luc", "Fremont"])
>>> score.entity_tp, score.entity_fn, score.entity_fp
(1, 1, 0)
>>> aggregate([score]).b_wer  # "jean" and "luc" substituted, "fremont" right
0.6666666666666666
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

Op = Literal["C", "S", "D", "I"]
AlignedPair = tuple[str | None, str | None, Op]
Outcome = Literal["found", "missed", "false_alarm"]


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between two word sequences (substitutions, deletions,
    insertions all cost 1)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[-1]


def normalize_text(text: str) -> list[str]:
    """Lower-case words; punctuation other than apostrophes inside words removed."""
    cleaned = "".join(c if c.isalnum() or c in "' " else " " for c in text.casefold())
    return [w.strip("'") for w in cleaned.split() if w.strip("'")]


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus WER = (S + D + I) / N over normalised words of paired references and hypotheses."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    errors = words = 0
    for ref, hyp in zip(refs, hyps):
        ref_words = normalize_text(ref)
        errors += edit_distance(ref_words, normalize_text(hyp))
        words += len(ref_words)
    if words == 0:
        raise ValueError("references hold no words")
    return errors / words


def align(ref_words: Sequence[str], hyp_words: Sequence[str]) -> list[AlignedPair]:
    """A minimum-edit word alignment, as ``(ref_word, hyp_word, op)`` triples in reading order.

    ``op`` is ``"C"`` (correct), ``"S"`` (substitution), ``"D"`` (deletion: ``hyp_word`` is
    None) or ``"I"`` (insertion: ``ref_word`` is None). The number of non-``"C"`` triples
    equals :func:`edit_distance`.

    Tie-breaking, deterministic: among alignments with the fewest edits, one with the most
    correct words is chosen (``"a b"`` vs ``"b c"`` gives D, C, I rather than S, S); the
    remaining ties are settled left to right, preferring C/S, then D, then I at each step
    (``"a"`` vs ``"b c"`` gives S, I).

    >>> align("new york city".split(), "newark city".split())
    [('new', 'newark', 'S'), ('york', None, 'D'), ('city', 'city', 'C')]
    """
    ref, hyp = list(ref_words), list(hyp_words)
    n, m = len(ref), len(hyp)
    # One edit must outweigh every possible number of matches: minimising
    # edits * edit_cost - matches minimises edits first, then maximises matches.
    edit_cost = min(n, m) + 1
    # cost[i][j]: best cost of aligning the suffixes ref[i:] and hyp[j:], so that the walk
    # below can settle ties left to right.
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    last = cost[n]
    for j in range(m - 1, -1, -1):
        last[j] = last[j + 1] + edit_cost
    for i in range(n - 1, -1, -1):
        row, below, word = cost[i], cost[i + 1], ref[i]
        row[m] = below[m] + edit_cost
        for j in range(m - 1, -1, -1):
            diagonal = below[j + 1] + (-1 if word == hyp[j] else edit_cost)
            row[j] = min(diagonal, below[j] + edit_cost, row[j + 1] + edit_cost)

    pairs: list[AlignedPair] = []
    i = j = 0
    while i < n or j < m:
        here = cost[i][j]
        if i < n and j < m:
            same = ref[i] == hyp[j]
            if here == cost[i + 1][j + 1] + (-1 if same else edit_cost):
                pairs.append((ref[i], hyp[j], "C" if same else "S"))
                i, j = i + 1, j + 1
                continue
        if i < n and here == cost[i + 1][j] + edit_cost:
            pairs.append((ref[i], None, "D"))
            i += 1
        else:
            pairs.append((None, hyp[j], "I"))
            j += 1
    return pairs


@dataclass(frozen=True)
class EntityOccurrence:
    """One entity occurrence in an utterance, for error analysis.

    Spans are half-open ``(start, end)`` word positions in the score's ``ref_words`` and
    ``hyp_words``. For a reference occurrence (found or missed) ``hyp_span`` covers the
    hypothesis words aligned to it (insertions inside the span included, insertions just
    before or after it not; empty where every word was deleted); for a false alarm
    ``ref_span`` covers the reference words aligned to it the same way.
    """

    entity: str  # the listed spelling, as given to score_utterance
    outcome: Outcome  # "found", "missed" (in the reference only) or "false_alarm"
    ref_span: tuple[int, int]  # reference word positions [start, end)
    hyp_span: tuple[int, int]  # hypothesis word positions [start, end)


@dataclass(frozen=True)
class UtteranceScore:
    """Error counts for one reference/hypothesis pair (see :func:`score_utterance`)."""

    ref_words: tuple[str, ...]  # normalised reference words (N = len)
    hyp_words: tuple[str, ...]  # normalised hypothesis words
    alignment: tuple[AlignedPair, ...]  # the word alignment from align()
    substitutions: int  # S
    deletions: int  # D
    insertions: int  # I
    biased_words: int  # reference words in the biasing set: the B-WER denominator
    biased_errors: int  # S + D on those words + insertions of biasing words: B-WER numerator
    unbiased_words: int  # the other reference words: the U-WER denominator
    unbiased_errors: int  # S + D on those words + other insertions: the U-WER numerator
    entity_tp: int  # reference entity occurrences found in the hypothesis at the aligned place
    entity_fn: int  # reference entity occurrences missed (partly right counts as missed)
    entity_fp: int  # false alarms: hypothesis entity occurrences not in the reference there
    entities: tuple[EntityOccurrence, ...]  # every occurrence above, in alignment order

    @property
    def errors(self) -> int:
        """S + D + I."""
        return self.substitutions + self.deletions + self.insertions


@dataclass(frozen=True)
class CorpusScore:
    """Summed counts and rates over utterances (see :func:`aggregate`); rates in 0..1."""

    utterances: int  # number of utterances scored
    ref_words: int  # N, normalised reference words
    substitutions: int  # S
    deletions: int  # D
    insertions: int  # I
    biased_words: int  # B-WER denominator
    biased_errors: int  # B-WER numerator
    unbiased_words: int  # U-WER denominator
    unbiased_errors: int  # U-WER numerator
    entity_tp: int  # reference entity occurrences found
    entity_fn: int  # reference entity occurrences missed
    entity_fp: int  # entity false alarms
    wer: float  # (S + D + I) / N
    b_wer: float | None  # biased_errors / biased_words; None when biased_words == 0
    u_wer: float | None  # unbiased_errors / unbiased_words; None when unbiased_words == 0
    entity_precision: float | None  # tp / (tp + fp); None when the hypotheses hold no entity
    entity_recall: float | None  # tp / (tp + fn); None when the references hold no entity
    entity_f1: float | None  # 2tp / (2tp + fp + fn) = 2PR / (P + R); None when tp+fp+fn == 0


@lru_cache(maxsize=1 << 16)
def _entity_words(entity: str) -> tuple[str, ...]:
    return tuple(normalize_text(entity))


@dataclass(frozen=True)
class _CompiledEntities:
    by_first_word: dict[str, list[tuple[tuple[str, ...], str]]]  # first word -> (words, spelling)
    biasing_words: frozenset[str]  # every word of every listed entity


@lru_cache(maxsize=8)
def _compile_entities(entities: tuple[str, ...]) -> _CompiledEntities:
    # Cached so that scoring 10k utterances against one global list normalises it once.
    by_first_word: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    seen: set[tuple[str, ...]] = set()
    for entity in entities:
        if not isinstance(entity, str):
            raise TypeError(f"entity {entity!r} is a {type(entity).__name__}, expected str")
        words = _entity_words(entity)
        if not words:
            raise ValueError(f"entity {entity!r} has no words after normalisation")
        if words not in seen:  # spellings that normalise alike count once, as the first
            seen.add(words)
            by_first_word.setdefault(words[0], []).append((words, entity))
    biasing = frozenset(w for words in seen for w in words)
    return _CompiledEntities(by_first_word, biasing)


def _occurrences(words: Sequence[str], compiled: _CompiledEntities,
                 ) -> list[tuple[int, int, str]]:
    """Every ``(start, end, spelling)`` where a listed entity occurs, overlaps included."""
    found = []
    for start, word in enumerate(words):
        for entity_words, spelling in compiled.by_first_word.get(word, ()):
            end = start + len(entity_words)
            if tuple(words[start:end]) == entity_words:
                found.append((start, end, spelling))
    return found


def score_utterance(ref: str, hyp: str, entities: Sequence[str]) -> UtteranceScore:
    """Align one reference with its hypothesis and count word and entity errors.

    Args:
        ref: the reference transcript, raw (normalised here with :func:`normalize_text`).
        hyp: the recognised text, raw.
        entities: the utterance's biasing list as listed (original spellings, possibly
            multi-word, distractors included), normalised here the same way. Its words form
            the biasing set of B-WER/U-WER, so common words in a name ("the" of "The
            Hague") count as biasing words, as in Le et al. Pass ``[]`` for none.

    Entity counting: every occurrence of a listed entity in the reference, as an n-gram of
    normalised words, counts (overlapping occurrences too). It is *found* when its aligned
    stretch is all ``"C"`` with no insertion inside, i.e. the hypothesis holds the same
    n-gram at that place; otherwise, even when some of its words are right, it is *missed*.
    Every occurrence in the hypothesis that is not found this way is a *false alarm*: a
    name said in the reference but recognised elsewhere counts once missed and once as a
    false alarm.

    B-WER/U-WER: a substitution or deletion is charged to its reference word (B when that
    word is in the biasing set, U otherwise); an insertion to B when the inserted word is in
    the biasing set, to U otherwise.

    Raises:
        TypeError: ``entities`` is a single string or holds a non-string.
        ValueError: an entity has no words after normalisation (e.g. ``"!!"``).
    """
    if isinstance(entities, str):
        raise TypeError(f"entities must be a sequence of strings, got the string {entities!r}")
    compiled = _compile_entities(tuple(entities))
    ref_words, hyp_words = normalize_text(ref), normalize_text(hyp)
    pairs = align(ref_words, hyp_words)

    ops = [op for _, _, op in pairs]
    ref_at: list[int] = []  # alignment index of each reference word
    hyp_at: list[int] = []  # alignment index of each hypothesis word
    ref_before = [0]  # reference words before each alignment index
    hyp_before = [0]  # hypothesis words before each alignment index
    counts = {"C": 0, "S": 0, "D": 0, "I": 0}
    biased_words = biased_errors = unbiased_words = unbiased_errors = 0
    biasing = compiled.biasing_words
    for index, (r, h, op) in enumerate(pairs):
        counts[op] += 1
        if r is not None:
            ref_at.append(index)
            if r in biasing:
                biased_words += 1
                biased_errors += op != "C"
            else:
                unbiased_words += 1
                unbiased_errors += op != "C"
        elif h in biasing:  # an insertion
            biased_errors += 1
        else:
            unbiased_errors += 1
        if h is not None:
            hyp_at.append(index)
        ref_before.append(len(ref_at))
        hyp_before.append(len(hyp_at))

    def exact(first: int, last: int) -> bool:
        return all(op == "C" for op in ops[first:last + 1])

    details: list[tuple[int, EntityOccurrence]] = []
    tp = fn = fp = 0
    for start, end, spelling in _occurrences(ref_words, compiled):
        first, last = ref_at[start], ref_at[end - 1]
        hit = exact(first, last)
        tp, fn = tp + hit, fn + (not hit)
        span = (hyp_before[first], hyp_before[last + 1])
        details.append((first, EntityOccurrence(spelling, "found" if hit else "missed",
                                                (start, end), span)))
    for start, end, spelling in _occurrences(hyp_words, compiled):
        first, last = hyp_at[start], hyp_at[end - 1]
        if not exact(first, last):  # exact ones were counted found from the reference side
            fp += 1
            span = (ref_before[first], ref_before[last + 1])
            details.append((first, EntityOccurrence(spelling, "false_alarm", span,
                                                    (start, end))))
    details.sort(key=lambda item: item[0])  # stable: reference occurrences first at a tie

    return UtteranceScore(
        ref_words=tuple(ref_words), hyp_words=tuple(hyp_words), alignment=tuple(pairs),
        substitutions=counts["S"], deletions=counts["D"], insertions=counts["I"],
        biased_words=biased_words, biased_errors=biased_errors,
        unbiased_words=unbiased_words, unbiased_errors=unbiased_errors,
        entity_tp=tp, entity_fn=fn, entity_fp=fp,
        entities=tuple(occurrence for _, occurrence in details),
    )


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def aggregate(scores: Iterable[UtteranceScore]) -> CorpusScore:
    """Sum utterance scores into corpus counts and rates (micro-averaged over occurrences).

    Undefined rates are None rather than 0.0, so that "nothing to measure" is never read as
    "all wrong": ``b_wer`` / ``u_wer`` when the references hold no biasing / other words,
    ``entity_recall`` when the references hold no entity (e.g. general speech measured for
    false alarms: read ``entity_fp`` there), ``entity_precision`` when the hypotheses hold
    no entity. ``entity_f1`` is ``2tp / (2tp + fp + fn)``, which equals ``2PR / (P + R)``
    where both are defined and is 0.0 when ``tp == 0`` but anything was missed or falsely
    recognised; it is None only when there is no entity in references or hypotheses.

    Raises:
        ValueError: no scores, or the references hold no words (WER undefined).
    """
    utterances = words = s = d = i = bw = be = uw = ue = tp = fn = fp = 0
    for score in scores:
        utterances += 1
        words += len(score.ref_words)
        s, d, i = s + score.substitutions, d + score.deletions, i + score.insertions
        bw, be = bw + score.biased_words, be + score.biased_errors
        uw, ue = uw + score.unbiased_words, ue + score.unbiased_errors
        tp, fn, fp = tp + score.entity_tp, fn + score.entity_fn, fp + score.entity_fp
    if utterances == 0:
        raise ValueError("no utterance scores to aggregate")
    if words == 0:
        raise ValueError(f"the references of {utterances} utterances hold no words")
    return CorpusScore(
        utterances=utterances, ref_words=words, substitutions=s, deletions=d, insertions=i,
        biased_words=bw, biased_errors=be, unbiased_words=uw, unbiased_errors=ue,
        entity_tp=tp, entity_fn=fn, entity_fp=fp,
        wer=(s + d + i) / words, b_wer=_ratio(be, bw), u_wer=_ratio(ue, uw),
        entity_precision=_ratio(tp, tp + fp), entity_recall=_ratio(tp, tp + fn),
        entity_f1=_ratio(2 * tp, 2 * tp + fp + fn),
    )
