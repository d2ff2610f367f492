"""The unit-spot rule: listed spellings spotted in the model's own output units replace the
words over their frames when the audio supports them.

The spotter (:mod:`.spotting`) finds each listed spelling's best path on the output
posteriors; a spot replaces the words it covers (:mod:`.lookup`) when its CTC score over
their frames, plus ``spot_bonus`` per unit (times the decoder's and the entity's weight), is
within ``spot_margin`` of the frame-wise best path there, and every unit of it is heard: on
its best frame within ``spot_unheard`` nats of that frame's best unit. Words that already
are an entity keep it. Works on any CTC model's output (no phone head needed): it is both
``decoder.spot`` (:func:`spot_greedy`: greedy words, no beam search, as NeMo's CTC word
spotter) and the last stage of the beam search (``merge_spots``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .ctc_score import ctc_viterbi
from .hypothesis import EntityMatch, Hypothesis, WordFrames
from .lists import Spelled
from .lookup import MAX_SPOTS, apply_placements, greedy_words, place_spots
from .options import BiasingOptions, Spotting
from .respell import respell
from .spotting import Spot, SpotOptions, spot
from .support import UnitEvidence, verify_on_units

__all__ = ["merge_unit_spots", "spot_greedy"]


def spot_greedy(logprobs: np.ndarray, labels: Sequence[str], is_bpe: bool, blank: int,
                spelled: Spelled | None, options: BiasingOptions) -> Hypothesis:
    """Greedy decoding of (frames, labels) log-probabilities plus the unit-spot rule for
    the list ``spelled`` (None: greedy words only). Entities the greedy words already spell
    are respelled as listed (technique ``"greedy"``)."""
    plain = greedy_words(logprobs, labels, is_bpe)
    logit_score = float(logprobs.max(axis=1).sum()) if len(logprobs) else 0.0
    if spelled is None:
        return Hypothesis(" ".join(w for w, _ in plain), plain, [], logit_score, logit_score)
    words, matches = respell(plain, spelled.compiled.spelling, spelled.compiled.max_words)
    matches = [replace(m, technique="greedy") for m in matches]
    words, matches = merge_unit_spots(words, matches, logprobs, blank, spelled,
                                      options.weight, options.spotting)
    found = Hypothesis(" ".join(w for w, _ in words), words, matches, logit_score,
                       logit_score)
    if not options.verification.verify_units:
        return found
    return verify_on_units(found, UnitEvidence.of(logprobs, labels, is_bpe, blank), spelled,
                           plain, options.verification)


def merge_unit_spots(words: list[WordFrames], matches: list[EntityMatch],
                     logprobs: np.ndarray, blank: int, spelled: Spelled, weight: float,
                     options: Spotting) -> tuple[list[WordFrames], list[EntityMatch]]:
    """``words`` (with their entity ``matches``) with the spotted entities placed that the
    rule above accepts; ``logprobs`` are the (frames, labels) output log-probabilities."""
    spots = spot(logprobs, blank, spelled.trie,
                 SpotOptions(options.spot_bonus, options.spot_max_cost,
                             options.spot_blank_gate))
    if not spots:
        return words, matches
    rel = logprobs - logprobs.max(axis=1, keepdims=True)
    entities = spelled.compiled.entities

    def gain(found: Spot, covered: Sequence[str], start: int, end: int) -> float:
        # relative to the frame-wise best path (the greedy words: score 0)
        score, spans = ctc_viterbi(rel[start:end], found.units, blank)
        if score == -np.inf:
            return score
        # every unit must be heard somewhere in its frames: the bonus rewards length,
        # not a unit the audio lacks ("Reports" where "report" was said)
        heard = [rel[start + a:start + b, u].max() for (a, b), u in zip(spans, found.units)]
        if min(heard) < -options.spot_unheard:
            return -np.inf
        scale = weight * entities[found.key].weight
        return score + options.spot_bonus * scale * len(found.units)

    def taken(found: Spot, first: int, last: int) -> bool:
        return any(first <= m.last_word and m.first_word <= max(first, last - 1)
                   for m in matches)

    placements = place_spots(words, spots[:MAX_SPOTS], gain, options.spot_margin, skip=taken)
    return apply_placements(words, matches, placements, spelled.texts, "spot")
