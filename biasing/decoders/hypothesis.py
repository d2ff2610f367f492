"""What the decoder's stages pass along: hypotheses with word frames and entity matches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["EntityMatch", "Hypothesis", "WordFrames"]

WordFrames = tuple[str, tuple[int, int]]  # (word, (start frame, end frame)), end exclusive


@dataclass(frozen=True)
class EntityMatch:
    """A listed entity found in a hypothesis."""

    text: str  # the entity as listed (original spelling)
    first_word: int  # index of its first word in the respelled word list
    last_word: int  # index of its last word (inclusive)
    start_frame: int  # first frame of the entity
    end_frame: int  # frame after its last unit
    technique: str = "boost"  # what placed it: "boost" (the beam search), "lookup" (phone
    # spotting), "spot" (unit spotting), "greedy" (the greedy words spell it)
    phone_score: float | None = None  # its phones' CTC log score over its frames relative
    # to the phone head's best path (0 = the best); None when not checked


@dataclass(frozen=True)
class Hypothesis:
    """One decoded hypothesis with timing and the entities found in it."""

    text: str  # words joined by spaces, entities in their original spelling
    words: list[WordFrames]  # (word, (start_frame, end_frame)), end exclusive
    entities: list[EntityMatch]  # listed entities in the text, in order
    logit_score: float  # acoustic log score of the path
    score: float  # ranking score: acoustic + LM + biasing bonuses (+ phone_weight *
    # phone_score when the phonetic techniques ran)
    phone_score: float | None = None  # CTC log-likelihood of the hypothesis' pronunciation
    # on the phone posteriors, relative to their best path; None without phone posteriors
    lm_state: Any = field(default=None, repr=False, compare=False)  # the LM state after the
    # last word (pyctcdecode's beams carry it); None without an LM

    def with_words(self, words: list[WordFrames], entities: list[EntityMatch]) -> Hypothesis:
        """This hypothesis with other words (and their entity matches), text to match."""
        return Hypothesis(" ".join(w for w, _ in words), words, entities, self.logit_score,
                          self.score, self.phone_score, self.lm_state)
