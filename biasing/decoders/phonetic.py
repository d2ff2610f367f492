"""The phonetic techniques: the phone head as an independent witness of what was said.

Given the beam search's n-best (words with frames) and a phone posteriorgram on the same
frames, :func:`phonetic_rescore`

1. **verifies** every entity the boosting put in one of the n-best: over its frames (a
   forced alignment on the phone head), the entity's pronunciation may fall below the
   head's own best path by at most ``verify_margin`` nats per phone, else it gives way to
   the words the model says there unbiased (the greedy words);
2. **looks up**, in the best hypothesis, listed pronunciations by spotting them in the
   phone posteriors (:mod:`.spotting`) and places a spotted entity over the words it
   covers when it explains their frames better by more than ``lookup_margin``
   (:mod:`.lookup`): the entity is credited ``lookup_bonus`` per phone (the list says it may
   be said; times the entity's weight, and less for names under ``full_bonus_chars``
   letters), words outside the lexicon
   are charged ``oov_penalty``; spans may cross word boundaries ("amles ran to glue" ->
   "Anneliese Vanderkloot") but must cover a word (no insertions);
3. **rescores** the n-best and the variants that 1 and 2 made with ``beam score +
   phone_weight * phone score``, where the phone score is the CTC log-likelihood of the
   hypothesis' pronunciation relative to the phone head's best path, over the frames
   where the candidates differ (elsewhere they say the same words). All candidates are
   scored on the same frames, so no length normalisation is needed.

Span comparisons use the best Viterbi alignment of each side's best pronunciation
(entities: every pronunciation the lexicon gives; words: up to 8 combinations of their
alternatives) on soft phone posteriors (a phone may be heard as a similar one at a cost,
:mod:`biasing.lexicon.confusion`), where an inner phone the audio lacks costs
``phone_deletion`` and no frame costs more than ``phone_floor``. Words are placed on the
phone frames by forced alignment: the heads of one network may fire a few frames apart.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..lexicon.confusion import soft_posteriors
from . import native
from .ctc_score import align_words, ctc_best_score, ctc_log_likelihood
from .hypothesis import EntityMatch, Hypothesis, WordFrames
from .lookup import MAX_SPOTS, apply_placements, covered_words, place_spots
from .options import Phonetic
from .pronunciations import ListPronunciations, PhoneSet, PhoneUnits
from .spotting import Spot, SpotOptions, spot

__all__ = ["PhoneEvidence", "phonetic_rescore"]

_MAX_COMBINATIONS = 8
UnitCheck = Callable[[int, int, int], bool]  # (entity index, start, end output frames)
_PAD = 3  # frames added on both sides of a rescored region


class PhoneEvidence:
    """One utterance's phone posteriorgram, with cached span scores.

    Args:
        phones: (frames, phone labels) log-probabilities of the phone head.
        phone_set: the head's labels and pronunciations.
        floor: if given, no frame costs a pronunciation more than this (nats) relative to
            the best phone there.
        deletion: if given, span comparisons may leave out inner pronunciation phones at
            this cost each (see :func:`~.ctc_score.ctc_best_score`).
        soft: hear each phone as a similar one at a cost
            (:func:`~biasing.lexicon.confusion.soft_posteriors`).
    """

    def __init__(self, phones: np.ndarray, phone_set: PhoneSet, floor: float | None = None,
                 deletion: float | None = None, soft: bool = True) -> None:
        logprobs = np.asarray(phones, dtype=np.float64)
        top = logprobs.max(axis=1, keepdims=True)
        rel = logprobs - top
        if soft:
            rel = soft_posteriors(rel, phone_set.confusion)
        if floor is not None:
            rel = np.maximum(rel, -floor)
        self.rel = np.ascontiguousarray(rel)  # what every score reads: 0 = the best phone
        self.logprobs = rel + top  # the same, absolute (the spotter's blank gate reads it)
        self.deletion = deletion
        self.phone_set = phone_set
        self.blank = phone_set.blank
        self._spans: dict[tuple[PhoneUnits, int, int], float] = {}
        self._whole: dict[tuple[PhoneUnits, int, int], float] = {}
        self._aligned: dict[tuple[WordFrames, ...], list[WordFrames]] = {}

    def units_score(self, units: PhoneUnits, start: int, end: int) -> float:
        """Viterbi log score of ``units`` over frames ``[start, end)``, relative to the
        best path there (0 = the frame-wise best phones)."""
        key = (units, start, end)
        found = self._spans.get(key)
        if found is None:
            if native.enabled() and 0 <= start <= len(self.rel):  # the same, without numpy
                found = native.span_best(self.rel, start, end, units, self.blank,
                                         self.deletion)
            else:
                found = ctc_best_score(self.rel[start:end], units, self.blank, self.deletion)
            self._spans[key] = found
        return found

    def best_score(self, alternatives: Sequence[PhoneUnits], start: int, end: int,
                   ) -> tuple[float, PhoneUnits | None]:
        """The best of several pronunciations over ``[start, end)``: (score, which)."""
        best, which = -np.inf, None
        for units in alternatives:
            score = self.units_score(units, start, end)
            if score > best:
                best, which = score, units
        return best, which

    def words_score(self, words: Sequence[str], start: int, end: int) -> float:
        """The words' best pronunciation (up to 8 combinations) over ``[start, end)``; a
        word without a pronunciation adds no phones."""
        per_word = [alts or [()] for alts in self.phone_set.words(list(words))]
        combos = itertools.islice(itertools.product(*per_word), _MAX_COMBINATIONS)
        return self.best_score([tuple(u for part in c for u in part) for c in combos],
                               start, end)[0]

    def on_phones(self, words: Sequence[WordFrames]) -> list[WordFrames]:
        """The words with their frames on the phone posteriors: a Viterbi forced alignment
        of their first pronunciations (the output units' frames when it fails, e.g. more
        phones than frames). The heads of one model may place a sound a few frames apart."""
        key = tuple(words)
        found = self._aligned.get(key)
        if found is None:
            per_word = self.phone_set.words([w for w, _ in words])
            units = [alts[0] if alts else () for alts in per_word]
            score, spans = align_words(self.rel, units, self.blank)
            found = list(words) if score == -np.inf else \
                [(w, span) for (w, _), span in zip(words, spans)]
            self._aligned[key] = found
        return found

    def shift(self, words: Sequence[WordFrames]) -> int:
        """How many frames later the output units place the words than the phone head does
        (the median over the words): heads of one network may fire at different times."""
        aligned = self.on_phones(words)
        gaps = [s - a for (_, (s, e)), (_, (a, b)) in zip(words, aligned) if e > s and b > a]
        return int(np.median(gaps)) if gaps else 0

    def likelihood(self, units: PhoneUnits, start: int, end: int) -> float:
        """CTC log-likelihood of ``units`` over frames ``[start, end)``, relative to the
        best path there."""
        key = (units, start, end)
        found = self._whole.get(key)
        if found is None:
            found = ctc_log_likelihood(self.rel[start:end], units, self.blank)
            self._whole[key] = found
        return found


@dataclass(frozen=True)
class Candidate:
    """A hypothesis as the rescoring sees it."""

    words: list[WordFrames]
    entities: list[EntityMatch]
    source: Hypothesis  # the beam search's hypothesis it came from (scores, LM state)
    phone_units: tuple[PhoneUnits | None, ...]  # per word: a chosen pronunciation, or None


def phonetic_rescore(nbest: Sequence[Hypothesis], evidence: PhoneEvidence,
                     prons: ListPronunciations, texts: Sequence[str],
                     plain: Sequence[WordFrames], options: Phonetic, spotter: SpotOptions,
                     full_bonus_chars: int = 0, weights: Sequence[float] | None = None,
                     on_units: UnitCheck | None = None) -> list[Hypothesis]:
    """Verify, look up and rescore (see the module docs).

    Args:
        nbest: the beam search's best hypotheses (respelled), best first; the first
            ``options.rescore_n_best`` (at least one) are used.
        evidence: the utterance's phone posteriorgram.
        prons: the entity list's pronunciations.
        texts: the entities' texts, by index (as listed).
        plain: the unbiased greedy words of the output units, with frames.
        options: the phonetic settings.
        spotter: the phone spotter's thresholds (its ``unit_bonus`` is the lookup's credit
            per phone).
        full_bonus_chars: entities with fewer letters earn a proportionally smaller credit
            in the lookup (short names are cheap to find anywhere); 0 = no scaling.
        weights: per entity, what multiplies its credit (its weight times the decoder's);
            default 1.
        on_units: ``on_units(entity, start, end)``: whether the output units support the
            entity over output frames ``[start, end)``; a lookup they do not support is not
            placed (None: no such check).

    Returns:
        The candidates as hypotheses with their ``phone_score`` and ``score = beam score +
        phone_weight * phone score``, best first, distinct texts only.
    """
    n_best = max(1, options.rescore_n_best)
    # every word's pronunciation in one batch (one run of the neural G2P for new words)
    evidence.phone_set.words(list({w for h in nbest[:n_best] for w, _ in h.words}
                                  | {w for w, _ in plain}))
    spots = spot(evidence.logprobs, evidence.blank, prons.trie, spotter)[:MAX_SPOTS]
    scales = _credit_scale(texts, full_bonus_chars, weights)
    candidates: list[Candidate] = []
    seen: set[str] = set()
    for origin, hypothesis in enumerate(nbest[:n_best]):
        base = Candidate(list(hypothesis.words), list(hypothesis.entities), hypothesis,
                         tuple(None for _ in hypothesis.words))
        found = spots if origin == 0 else []  # lookup on the best hypothesis only
        for candidate in _variants(base, evidence, prons, texts, plain, found, options,
                                   spotter, scales, on_units):
            text = " ".join(w for w, _ in candidate.words)
            if text not in seen:
                seen.add(text)
                candidates.append(candidate)
    listed = ListTexts.of(texts).listed
    credit = {text: spotter.unit_bonus * scale for text, scale in zip(texts, scales)}
    scores = _region_scores(candidates, evidence, listed, options.oov_penalty, credit)
    out = [Hypothesis(" ".join(w for w, _ in c.words), c.words, c.entities,
                      c.source.logit_score, c.source.score + options.phone_weight * phone,
                      phone, c.source.lm_state)
           for c, phone in zip(candidates, scores)]
    out.sort(key=lambda h: -h.score)
    return out


def _region_scores(candidates: Sequence[Candidate], evidence: PhoneEvidence,
                   listed: frozenset[str], oov_penalty: float, credit: dict[str, float],
                   ) -> list[float]:
    """Each candidate's phone score over the frames where the candidates differ: the words
    between their common prefix and suffix, plus one shared word on each side (which
    absorbs the few frames by which the phone head and the output units may disagree).
    Outside that region every candidate says the same words, so the scores compare as
    whole-utterance scores would. Each region word that is neither in the lexicon nor a
    listed entity's word costs ``oov_penalty``: its guessed pronunciation was written from
    the same audio, so it would otherwise fit too well. An entity the lookup placed earns
    ``credit[text]`` per phone, as in the lookup's own comparison (a boosted one earned its
    bonus in the beam score)."""
    if len(candidates) == 1:
        return [0.0]
    texts = [[w for w, _ in c.words] for c in candidates]
    shortest = min(len(t) for t in texts)
    prefix = 0
    while prefix < shortest and all(t[prefix] == texts[0][prefix] for t in texts):
        prefix += 1
    suffix = 0
    while suffix < shortest - prefix and all(t[-1 - suffix] == texts[0][-1 - suffix]
                                             for t in texts):
        suffix += 1
    first = evidence.on_phones(candidates[0].words)  # the shared words, on phone frames
    lo = max(0, prefix - 1)
    start = first[lo][1][0] if prefix > 0 else 0
    frames = len(evidence.rel)
    end = first[len(first) - suffix][1][1] if suffix > 0 else frames
    start, end = max(0, start - _PAD), min(frames, end + _PAD)
    out = []
    for candidate, words in zip(candidates, texts):
        hi = len(words) - suffix + (1 if suffix > 0 else 0)
        units = _units(candidate, evidence, lo, hi)
        unknown = sum(1 for w in words[lo:hi]
                      if w.casefold() not in listed and not evidence.phone_set.known(w))
        earned = sum(credit.get(m.text, 0.0) * len(candidate.phone_units[m.first_word] or ())
                     for m in candidate.entities
                     if m.technique == "lookup" and lo <= m.first_word < hi)
        out.append(evidence.likelihood(units, start, end) - oov_penalty * unknown + earned)
    return out


def _variants(base: Candidate, evidence: PhoneEvidence, prons: ListPronunciations,
              texts: Sequence[str], plain: Sequence[WordFrames], spots: Sequence[Spot],
              options: Phonetic, spotter: SpotOptions, scales: Sequence[float],
              on_units: UnitCheck | None) -> list[Candidate]:
    """The verified hypothesis and, if the lookup changes it, its looked-up version."""
    verified = _verify(base, evidence, prons, texts, plain, options.verify_margin)
    looked = _lookup(verified, evidence, prons, texts, spots, options, spotter, scales,
                     on_units)
    return [verified] if looked.words == verified.words else [verified, looked]


def _verify(candidate: Candidate, evidence: PhoneEvidence, prons: ListPronunciations,
            texts: Sequence[str], plain: Sequence[WordFrames], margin: float) -> Candidate:
    """Boosted entities the phones do not support give way to the unbiased words there.

    The test is absolute: over the entity's frames on the phone head (forced alignment),
    its best pronunciation may fall below the head's own best path by at most ``margin``
    nats per phone. (Comparing with the unbiased words' guessed pronunciation instead
    would favour the misspelling: it was written from the same audio.)
    """
    if not any(m.technique == "boost" for m in candidate.entities):
        return candidate
    index = ListTexts.of(texts).positions
    words = list(candidate.words)
    units = list(candidate.phone_units)
    aligned = evidence.on_phones(words)
    kept: list[EntityMatch] = []
    removed: list[tuple[EntityMatch, list[WordFrames]]] = []
    for match in candidate.entities:
        entity = index.get(match.text)
        alternatives = prons.units[entity] if entity is not None else ()
        if match.technique != "boost" or not alternatives:
            kept.append(match)
            continue
        start = aligned[match.first_word][1][0]
        end = aligned[match.last_word][1][1]
        own, chosen = evidence.best_score(alternatives, start, end)
        if chosen is None or -own > margin * len(chosen):
            first, last = covered_words(plain, match.start_frame, match.end_frame)
            removed.append((match, list(plain[first:last])))
            continue
        kept.append(replace(match, phone_score=own))
        for i in range(match.first_word, match.last_word + 1):
            units[i] = chosen if i == match.first_word else ()
    if not removed:
        return replace(candidate, entities=kept, phone_units=tuple(units))
    # rebuild the words with each removed entity's span given to the unbiased words
    out_words: list[WordFrames] = []
    out_units: list[PhoneUnits | None] = []
    new_index: dict[int, int] = {}
    removed_at = {m.first_word: (m, others) for m, others in removed}
    i = 0
    while i < len(words):
        if i in removed_at:
            match, others = removed_at[i]
            out_words.extend(others)
            out_units.extend(None for _ in others)
            i = match.last_word + 1
            continue
        new_index[i] = len(out_words)
        out_words.append(words[i])
        out_units.append(units[i])
        i += 1
    kept = [replace(m, first_word=new_index[m.first_word], last_word=new_index[m.last_word])
            for m in kept]
    return replace(candidate, words=out_words, entities=kept, phone_units=tuple(out_units))


def _lookup(candidate: Candidate, evidence: PhoneEvidence, prons: ListPronunciations,
            texts: Sequence[str], spots: Sequence[Spot], options: Phonetic,
            spotter: SpotOptions, scale: Sequence[float],
            on_units: UnitCheck | None = None) -> Candidate:
    """Place spotted entities that explain their span better than the words there by
    ``lookup_margin``, where a listed entity is credited ``lookup_bonus``
    (``spotter.unit_bonus``) per phone (the list says it may be said) and a word outside
    the lexicon is charged ``oov_penalty`` (its guessed pronunciation was written from this
    audio)."""
    if not spots:
        return candidate
    words = candidate.words
    listed = ListTexts.of(texts).listed
    shift = evidence.shift(words)  # the placed words' frames, on the output's time line

    def gain(found: Spot, covered: Sequence[str], start: int, end: int) -> float:
        if not covered:
            return -np.inf  # no insertions: the output units always write something for a name
        if on_units is not None and not on_units(found.key, start + shift, end + shift):
            return -np.inf  # the output units say something else there
        own, chosen = evidence.best_score(prons.units[found.key], start, end)
        credit = spotter.unit_bonus * len(chosen or ()) * scale[found.key]
        unknown = sum(1 for w in covered
                      if w.casefold() not in listed and not evidence.phone_set.known(w))
        rival = evidence.words_score(covered, start, end) - options.oov_penalty * unknown
        return own + credit - rival

    def already(found: Spot, first: int, last: int) -> bool:
        said = " ".join(w for w, _ in words[first:last]).casefold()
        return said == texts[found.key].casefold()

    placements = place_spots(evidence.on_phones(words), spots, gain, options.lookup_margin,
                             skip=already)
    if not placements:
        return candidate
    scores = [evidence.best_score(prons.units[p.spot.key], p.spot.start, p.spot.end)[0]
              for p in placements]
    frames = len(evidence.rel)
    on_output = [p._replace(start=min(frames, max(0, p.start + shift)),
                            end=min(frames, max(0, p.end + shift))) for p in placements]
    new_words, matches = apply_placements(words, candidate.entities, on_output, texts,
                                          "lookup", scores)
    # per word: a placed entity's phones on its first word, the other words unchanged
    units: list[PhoneUnits | None] = []
    position = 0
    for placement in placements:
        units.extend(candidate.phone_units[position:placement.first])
        chosen = evidence.best_score(prons.units[placement.spot.key], placement.start,
                                     placement.end)[1]
        parts = len(texts[placement.spot.key].split(" "))
        units.extend([chosen] + [()] * (parts - 1))
        position = placement.last
    units.extend(candidate.phone_units[position:])
    return replace(candidate, words=new_words, entities=matches, phone_units=tuple(units))


def _credit_scale(texts: Sequence[str], full: int, weights: Sequence[float] | None,
                  ) -> list[float]:
    """Per entity, what multiplies its credit: its weight, times its letters over ``full``
    (at most 1; short names are cheap to find anywhere; no scaling when ``full`` is 0)."""
    out = [1.0] * len(texts) if weights is None else [float(w) for w in weights]
    if full > 0:
        out = [w * min(1.0, letters / full)
               for w, letters in zip(out, ListTexts.of(texts).letters)]
    return out


class ListTexts(tuple[str, ...]):
    """The entities' texts by index, with what the lookup derives from them, computed once
    per list (a compiled list keeps its own: ``lists.Spelled.texts``)."""

    @classmethod
    def of(cls, texts: Sequence[str]) -> ListTexts:
        return texts if isinstance(texts, ListTexts) else cls(texts)

    @functools.cached_property
    def letters(self) -> tuple[int, ...]:
        """Letters per entity."""
        return tuple(sum(c.isalpha() for c in text) for text in self)

    @functools.cached_property
    def positions(self) -> dict[str, int]:
        """Entity text -> its index."""
        return {text: i for i, text in enumerate(self)}

    @functools.cached_property
    def listed(self) -> frozenset[str]:
        """The listed words, case-folded."""
        return frozenset(w.casefold() for text in self for w in text.split())


def _units(candidate: Candidate, evidence: PhoneEvidence, lo: int, hi: int) -> PhoneUnits:
    """The pronunciation of words ``lo:hi``: chosen units where known, else each word's
    first pronunciation."""
    words = candidate.words[lo:hi]
    chosen = candidate.phone_units[lo:hi]
    missing = [w for (w, _), u in zip(words, chosen) if u is None]
    looked_up = iter(evidence.phone_set.words(missing)) if missing else iter(())
    out: list[int] = []
    for units in chosen:
        if units is None:
            alts = next(looked_up)
            units = alts[0] if alts else ()
        out.extend(units)
    return tuple(out)
