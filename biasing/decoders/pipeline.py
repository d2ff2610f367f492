"""The decoder's stages, in order, over typed hypotheses.

1. **search**: the CTC prefix beam search (:mod:`.search`) with the context graph's bonuses
   (:mod:`.bias`, bolder by ``verified_boost`` when the phonetic stage will check them) and
   the LM with the BOOST class for listed words it does not know (:mod:`.language_model`);
2. **respell**: decoded words that spell an entity get its listed spelling
   (:mod:`.respell`);
3. **phonetic** (phone posteriors and a list): the best hypotheses are verified, looked up
   and rescored on the phone head (:mod:`.phonetic`);
4. **unit spots** (``merge_spots``): entities spotted in the model's own units are placed
   into the best hypothesis (:mod:`.unit_spots`);
5. **support** (no phone evidence, ``verify_units``): every boosted or spotted name must be
   supported by the model's own output over its frames, else the unbiased words stand
   there (:mod:`.support`).

With no list (or weight 0) only stage 1 runs and the output is the unbiased search's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .bias import BiasScorer
from .hotwords import HotwordScorer
from .hypothesis import Hypothesis
from .language_model import BoostedLanguageModel, LanguageModel, ScoringModel
from .lists import Spelled
from .lookup import greedy_words
from .options import MAX_BONUS, BiasingOptions
from .phonetic import PhoneEvidence, phonetic_rescore
from .pronunciations import ListPronunciations, PhoneSet
from .respell import respell
from .search import SearchParams, SearchResult, search
from .spotting import SpotOptions
from .support import UnitEvidence, verify_on_units
from .unit_spots import merge_unit_spots

__all__ = ["Phones", "Stages", "run_stages"]


@dataclass(frozen=True)
class Phones:
    """The phone head's evidence for the phonetic stage."""

    logprobs: np.ndarray  # (frames, phone labels) log-probabilities on the output's frames
    phone_set: PhoneSet  # the head's labels and the lexicon
    pronunciations: ListPronunciations  # the list's pronunciations on those labels


@dataclass(frozen=True)
class Stages:
    """What one decode call runs."""

    labels: Sequence[str]  # the decoder's labels
    is_bpe: bool  # sentencepiece labels ("▁" starts a word)
    blank: int  # index of the CTC blank
    params: SearchParams  # beam width, pruning, and how far to force entity units
    options: BiasingOptions  # biasing settings
    language_model: ScoringModel | None = None
    hotwords: HotwordScorer | None = None  # pyctcdecode's hotwords, if asked for
    lm_start_state: Any = None
    spelled: Spelled | None = None  # the compiled list; None: no biasing
    phones: Phones | None = None  # None: no phonetic stage


def run_stages(logprobs: np.ndarray, stages: Stages, n_best: int | None = None,
               ) -> list[Hypothesis]:
    """The ``n_best`` best hypotheses (all when None) of (frames, labels) log-probabilities,
    best first (module docs)."""
    results = _search(logprobs, stages)  # 1
    if stages.phones is None or stages.spelled is None:
        out = [_respelled(r, stages.spelled) for r in results[:n_best]]  # 2
    else:
        out = _phonetic(results, logprobs, stages, n_best)  # 2, 3
    if out and stages.spelled is not None:
        out[0] = _unit_spots(out[0], logprobs, stages)  # 4
        out = _supported(out, logprobs, stages)  # 5
    return out


def _search(logprobs: np.ndarray, stages: Stages) -> list[SearchResult]:
    """Stage 1: the beam search, biased when there is a list."""
    bias, language_model = None, stages.language_model
    spelled, options = stages.spelled, stages.options
    if spelled is not None:
        weight = options.weight
        if stages.phones is not None:
            weight *= options.phonetic.verified_boost
        bias = BiasScorer(spelled.compiled, weight, options.boosting)
        boost_logp = options.boosting.lm_boost_logp
        if spelled.boost and isinstance(language_model, LanguageModel) \
                and boost_logp is not None:
            language_model = BoostedLanguageModel(language_model, spelled.boost, boost_logp)
    return search(logprobs, stages.labels, stages.is_bpe, stages.params, language_model,
                  stages.hotwords, bias, stages.lm_start_state)


def _respelled(result: SearchResult, spelled: Spelled | None) -> Hypothesis:
    """Stage 2: a search result as a hypothesis, entities in their listed spelling."""
    if spelled is None:
        return Hypothesis(result.text, result.words, [], result.logit_score, result.score,
                          lm_state=result.lm_state)
    compiled = spelled.compiled
    words, matches = respell(result.words, compiled.spelling, compiled.max_words)
    return Hypothesis(" ".join(w for w, _ in words), words, matches, result.logit_score,
                      result.score, lm_state=result.lm_state)


def _unit_spots(best: Hypothesis, logprobs: np.ndarray, stages: Stages) -> Hypothesis:
    """Stage 4: entities spotted in the output units placed into the best hypothesis."""
    assert stages.spelled is not None
    if not stages.options.spotting.merge_spots:
        return best
    words, matches = merge_unit_spots(list(best.words), list(best.entities), logprobs,
                                      stages.blank, stages.spelled, stages.options.weight,
                                      stages.options.spotting)
    return best if words == best.words else best.with_words(words, matches)


def _supported(out: list[Hypothesis], logprobs: np.ndarray, stages: Stages,
               ) -> list[Hypothesis]:
    """Stage 5: without phone evidence, names the output does not support give way."""
    assert stages.spelled is not None
    if stages.phones is not None or not stages.options.verification.verify_units:
        return out
    evidence = UnitEvidence.of(logprobs, stages.labels, stages.is_bpe, stages.blank)
    plain = greedy_words(logprobs, stages.labels, stages.is_bpe)
    return [verify_on_units(h, evidence, stages.spelled, plain, stages.options.verification)
            for h in out]


def _phonetic(results: list[SearchResult], logprobs: np.ndarray, stages: Stages,
              n_best: int | None) -> list[Hypothesis]:
    """Stage 3: the best ``rescore_n_best`` beams verified, looked up and rescored (they
    come first); the other beams follow unchanged."""
    assert stages.phones is not None and stages.spelled is not None
    options, phones = stages.options, stages.phones
    settings = options.phonetic
    rescored = max(1, settings.rescore_n_best)
    entities = stages.spelled.compiled.entities
    evidence = PhoneEvidence(phones.logprobs, phones.phone_set, settings.phone_floor,
                             settings.phone_deletion)
    spotter = SpotOptions(settings.lookup_bonus, options.spotting.spot_max_cost,
                          options.spotting.spot_blank_gate, floor=settings.phone_floor)
    on_units = None
    if settings.lookup_unit_margin < MAX_BONUS:
        units = UnitEvidence.of(logprobs, stages.labels, stages.is_bpe, stages.blank)
        spellings = stages.spelled.alternatives

        def on_units(entity: int, start: int, end: int) -> bool:
            span = units.span(start, end)
            return units.deficit(spellings[entity], *span) <= settings.lookup_unit_margin

    out = phonetic_rescore(
        [_respelled(r, stages.spelled) for r in results[:rescored]], evidence,
        phones.pronunciations, stages.spelled.texts,
        greedy_words(logprobs, stages.labels, stages.is_bpe), settings, spotter,
        options.boosting.full_bonus_chars, [options.weight * e.weight for e in entities],
        on_units)
    if n_best is None or n_best > len(out):
        rest = results[rescored:None if n_best is None else rescored + n_best]
        out.extend(_respelled(r, stages.spelled) for r in rest)
    return out[:n_best]
