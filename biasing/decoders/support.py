"""Is a placed name supported by the model's own output? The verifier for callers with
log-probabilities alone (no phone head, no companion: ``decoder.decode`` on any model's
output, the ``decode`` CLI, transformers' pipeline).

Boosting makes listed names cheap for the beam search, and unit spotting credits them per
unit; on output that says nothing (silence, noise, flat or random scores) both can write a
name nobody said. A name is kept only where the output supports it over its frames
(padded by ``PAD`` frames on each side, where the heads may disagree by a frame or two):

- **score**: its best CTC alignment (:func:`~.ctc_score.ctc_viterbi`, over every spelling
  the list compiled for it) falls below the frame-wise best path by at most
  ``unit_margin`` nats per unit (``spot_unit_margin`` for unit-spotted names, which the
  spot rule held to its own margin already);
- **confidence**: the model is sure of something there: the frames' best log-probability
  averages at least ``-unit_confidence`` (random or uninformative output is unsure
  everywhere, so no spelling can be "close" to it in a way that means anything).

A name that fails gives way to the words the model says there unbiased (its greedy
words). Names the greedy words already spell (technique ``"greedy"``) are the model's own
output and always kept; names placed from phone evidence are checked by the phonetic
verifier instead (:mod:`.phonetic`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import native
from .ctc_score import ctc_viterbi
from .hypothesis import EntityMatch, Hypothesis, WordFrames
from .lists import Spelled
from .lookup import covered_words, replace_matches
from .options import MAX_BONUS, Verification

__all__ = ["PAD", "UnitEvidence", "verify_on_units"]

PAD = 2  # frames added on each side of a name's span
CHECKED = ("boost", "spot")  # the techniques whose names are checked here


class UnitEvidence:
    """One utterance's output log-probabilities, with cached span measures.

    Args:
        logprobs: (frames, labels) natural-log probabilities.
        blank: index of the CTC blank.
        space: index of the word separator of character vocabularies (None for subwords):
            around a name it is as good as a blank (the padded frames may hold the
            neighbouring word boundaries, which are not part of the name).
    """

    def __init__(self, logprobs: np.ndarray, blank: int, space: int | None = None) -> None:
        top = logprobs.max(axis=1)
        rel = logprobs - top[:, None]  # 0 = the frame's best label
        if space is not None:
            rel = rel.copy()
            rel[:, blank] = np.maximum(rel[:, blank], rel[:, space])
        self.rel = rel
        self.top = top
        self.blank = blank
        self._scores: dict[tuple[tuple[int, ...], int, int], float] = {}
        self._rel64: np.ndarray | None = None  # rel as the compiled core reads it

    @classmethod
    def of(cls, logprobs: np.ndarray, labels: Sequence[str], is_bpe: bool,
           blank: int) -> UnitEvidence:
        """The evidence of a decoder's output: its word separator (characters) counts as
        a blank around a name."""
        return cls(logprobs, blank, None if is_bpe else list(labels).index(" "))

    def span(self, start: int, end: int) -> tuple[int, int]:
        """``[start, end)`` padded by ``PAD`` and clipped to the utterance."""
        return max(0, start - PAD), min(len(self.rel), end + PAD)

    def deficit(self, alternatives: Sequence[tuple[int, ...]], start: int, end: int,
                ) -> float:
        """Nats per unit by which the best of ``alternatives`` falls below the frame-wise
        best path over ``[start, end)`` (inf when none fits)."""
        best = np.inf
        for units in alternatives:
            if not units:
                continue
            key = (units, start, end)
            score = self._scores.get(key)
            if score is None:
                score = self._scores[key] = self._best(units, start, end)
            best = min(best, -score / len(units))
        return float(best)

    def _best(self, units: tuple[int, ...], start: int, end: int) -> float:
        """The best alignment's score of ``units`` over ``[start, end)`` (as
        :func:`~.ctc_score.ctc_viterbi` gives it; the compiled core skips the backtracking
        and the numpy set-up, which cost more than the recursion at these sizes)."""
        if native.enabled() and 0 <= start <= len(self.rel):
            if self._rel64 is None:
                self._rel64 = np.ascontiguousarray(self.rel, dtype=np.float64)
            return native.span_best(self._rel64, start, end, units, self.blank)
        return ctc_viterbi(self.rel[start:end], units, self.blank)[0]

    def confidence(self, start: int, end: int) -> float:
        """Mean best log-probability of the frames ``[start, end)``."""
        return float(self.top[start:end].mean()) if end > start else 0.0

    def supports(self, alternatives: Sequence[tuple[int, ...]], start: int, end: int,
                 options: Verification, margin: float | None = None) -> bool:
        """Whether the output supports a name spelled ``alternatives`` over its frames
        (``margin`` nats per unit, default ``options.unit_margin``)."""
        start, end = self.span(start, end)
        margin = options.unit_margin if margin is None else margin
        return (self.confidence(start, end) >= -options.unit_confidence
                and (margin >= MAX_BONUS
                     or self.deficit(alternatives, start, end) <= margin))


def verify_on_units(hypothesis: Hypothesis, evidence: UnitEvidence, spelled: Spelled,
                    plain: Sequence[WordFrames], options: Verification) -> Hypothesis:
    """``hypothesis`` with every boosted or spotted name the output does not support
    replaced by the unbiased greedy words ``plain`` over its frames (module docs)."""
    checked = [m for m in hypothesis.entities if m.technique in CHECKED]
    if not checked:
        return hypothesis
    alternatives = spelled.alternatives
    index = spelled.index
    removed: list[tuple[EntityMatch, list[WordFrames]]] = []
    for match in checked:
        spellings = alternatives[index[match.text]] if match.text in index else ()
        margin = options.spot_unit_margin if match.technique == "spot" else None
        if evidence.supports(spellings, match.start_frame, match.end_frame, options, margin):
            continue
        first, last = covered_words(plain, match.start_frame, match.end_frame)
        removed.append((match, list(plain[first:last])))
    if not removed:
        return hypothesis
    words, matches = replace_matches(hypothesis.words, hypothesis.entities, removed)
    return hypothesis.with_words(words, matches)
