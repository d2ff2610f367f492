"""Put spotted entities into a hypothesis: the replace-if-better rule.

A :class:`~biasing.decoders.spotting.Spot` covers frames; the hypothesis words it would
replace are those it overlaps by at least ``JITTER`` frames or half their length (a word
it only touches keeps its place; a spot over a pause replaces nothing and inserts). The comparison runs over the union ``U`` of the spot's and
those words' frames: a caller-given ``gain(spot, words, U)`` says how much better the
entity explains ``U`` than the words do (e.g. the difference of their CTC scores on the
phone head). Spots whose gain exceeds ``margin`` are placed best first; a spot that
overlaps one already placed (in frames or words) is dropped, so overlapping candidates are
resolved by their gain.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import NamedTuple

import numpy as np

from .respell import EntityMatch, WordFrames
from .spotting import Spot

__all__ = ["MAX_SPOTS", "Placement", "apply_placements", "covered_words", "greedy_words",
           "place_spots", "replace_matches"]


class Placement(NamedTuple):
    """A spotted entity chosen to replace ``words[first:last]``."""

    spot: Spot  # what was spotted
    first: int  # first word replaced
    last: int  # one past the last word replaced (== first: an insertion)
    start: int  # first frame of U
    end: int  # frame after U
    gain: float  # how much better the entity explains U than the words (nats)


GainFn = Callable[[Spot, Sequence[str], int, int], float]


JITTER = 3  # frames by which heads and spotters may disagree about a boundary
MAX_SPOTS = 200  # spots compared per hypothesis, best first (a cost cap)


def covered_words(words: Sequence[WordFrames], start: int, end: int) -> tuple[int, int]:
    """The run of words that ``[start, end)`` overlaps by at least ``JITTER`` frames or
    half their length, as ``(first, last)``; an empty run sits where the span falls."""
    inside = [i for i, (_, (s, e)) in enumerate(words)
              if min(e, end) - max(s, start) >= min(JITTER, max(1, e - s) / 2)]
    if inside:
        return inside[0], inside[-1] + 1
    position = sum(1 for _, (s, _) in words if s < start)
    return position, position


class WordIndex:
    """:func:`covered_words` for many spans over one word sequence: when the words' starts
    and ends both run in order (as a hypothesis's do), only the words a span can overlap
    are looked at (found by bisection); otherwise every word, as :func:`covered_words`."""

    def __init__(self, words: Sequence[WordFrames]) -> None:
        self.words = words
        self.starts = [s for _, (s, _) in words]
        self.ends = [e for _, (_, e) in words]
        self.ordered = all(a <= b for a, b in zip(self.starts, self.starts[1:])) and \
            all(a <= b for a, b in zip(self.ends, self.ends[1:]))

    def covered(self, start: int, end: int) -> tuple[int, int]:
        if not self.ordered:
            return covered_words(self.words, start, end)
        # a word that ends by ``start`` or starts at ``end`` or later overlaps by <= 0 frames
        lo, hi = bisect.bisect_right(self.ends, start), bisect.bisect_left(self.starts, end)
        inside = [i for i in range(lo, hi)
                  if min(self.ends[i], end) - max(self.starts[i], start)
                  >= min(JITTER, max(1, self.ends[i] - self.starts[i]) / 2)]
        if inside:
            return inside[0], inside[-1] + 1
        position = bisect.bisect_left(self.starts, start)
        return position, position


def place_spots(words: Sequence[WordFrames], spots: Sequence[Spot], gain: GainFn,
                margin: float, skip: Callable[[Spot, int, int], bool] | None = None,
                ) -> list[Placement]:
    """The spots to place in ``words``, in word order (see the module docs).

    ``skip(spot, first, last)`` may veto a spot before it is scored (e.g. the words already
    are that entity).
    """
    scored: list[Placement] = []
    index = WordIndex(words)
    for spot in spots:
        first, last = index.covered(spot.start, spot.end)
        if skip is not None and skip(spot, first, last):
            continue
        start = min([spot.start] + [words[i][1][0] for i in range(first, last)])
        end = max([spot.end] + [words[i][1][1] for i in range(first, last)])
        value = gain(spot, [w for w, _ in words[first:last]], start, end)
        if value > margin:
            scored.append(Placement(spot, first, last, start, end, value))
    scored.sort(key=lambda p: -p.gain)
    chosen: list[Placement] = []
    for placement in scored:
        if all(placement.end <= c.start or placement.start >= c.end for c in chosen) and \
                all(placement.last <= c.first or placement.first >= c.last for c in chosen):
            chosen.append(placement)
    chosen.sort(key=lambda p: (p.first, p.start))
    return chosen


def apply_placements(words: Sequence[WordFrames], matches: Sequence[EntityMatch],
                     placements: Sequence[Placement], texts: Sequence[str],
                     technique: str, scores: Sequence[float | None] | None = None,
                     ) -> tuple[list[WordFrames], list[EntityMatch]]:
    """The words with each placement's entity (``texts[spot.key]``) in place of the words
    it covers, and the entity matches: the old ones that survive (re-indexed) plus the
    placed ones (tagged ``technique``, with ``scores[i]`` as their phone score)."""
    out: list[WordFrames] = []
    new_index: dict[int, int] = {}
    placed: list[EntityMatch] = []
    position = 0
    for n, placement in enumerate(placements):
        for i in range(position, placement.first):
            new_index[i] = len(out)
            out.append(words[i])
        text = texts[placement.spot.key]
        parts = text.split(" ")
        first_out = len(out)
        bounds = np.linspace(placement.start, placement.end, len(parts) + 1).round().astype(int)
        for k, part in enumerate(parts):
            out.append((part, (int(bounds[k]), int(bounds[k + 1]))))
        placed.append(EntityMatch(text, first_out, len(out) - 1, placement.start,
                                  placement.end, technique,
                                  None if scores is None else scores[n]))
        position = placement.last
    for i in range(position, len(words)):
        new_index[i] = len(out)
        out.append(words[i])
    kept = [replace(match, first_word=new_index[match.first_word],
                    last_word=new_index[match.last_word])
            for match in matches
            if match.first_word in new_index and match.last_word in new_index]
    return out, sorted(kept + placed, key=lambda m: m.first_word)


def replace_matches(words: Sequence[WordFrames], matches: Sequence[EntityMatch],
                    removed: Sequence[tuple[EntityMatch, list[WordFrames]]],
                    ) -> tuple[list[WordFrames], list[EntityMatch]]:
    """The words with each removed match's words replaced by the words given for it, and
    the other matches re-indexed."""
    by_first = {match.first_word: (match, others) for match, others in removed}
    gone = {id(match) for match, _ in removed}
    out: list[WordFrames] = []
    new_index: dict[int, int] = {}
    i = 0
    while i < len(words):
        if i in by_first:
            match, others = by_first[i]
            out.extend(others)
            i = match.last_word + 1
            continue
        new_index[i] = len(out)
        out.append(words[i])
        i += 1
    kept = [replace(m, first_word=new_index[m.first_word], last_word=new_index[m.last_word])
            for m in matches if id(m) not in gone]
    return out, kept


def greedy_words(logprobs: np.ndarray, labels: Sequence[str], is_bpe: bool,
                 ) -> list[WordFrames]:
    """Greedy CTC words with their frames ``(first unit frame, last unit frame + 1)``:
    best label per frame, repeats merged, blanks dropped; words break at the space label
    (characters) or before a ``▁`` piece (subwords)."""
    best = np.asarray(logprobs).argmax(axis=1)
    words: list[WordFrames] = []
    current: list[str] = []
    start = end = 0
    previous = -1
    for t, unit in enumerate(best.tolist()):
        if unit == previous:
            if current:
                end = t + 1
            continue
        previous = unit
        label = labels[unit]
        if label == "":
            continue
        breaks = label == " " if not is_bpe else label.startswith("▁")
        if breaks and current:
            words.append(("".join(current), (start, end)))
            current = []
        piece = label.lstrip("▁") if is_bpe else ("" if label == " " else label)
        if piece:
            if not current:
                start = t
            current.append(piece)
            end = t + 1
    if current:
        words.append(("".join(current), (start, end)))
    return words
