"""The CTC prefix beam search: frames in, scored word sequences out.

One frame at a time, every beam is extended by every candidate unit (the units at or above
``token_min_logp`` and the frame's best unit), beams that spell the same prefix are merged
(their acoustic probabilities summed), each is scored (acoustics + word-level LM at word
ends + partial-word LM + hotwords + biasing bonus), and the best ``beam_width`` within
``beam_prune_logp`` of the best are kept. At the end every beam closes its last word.

With no LM, hotwords or biasing this gives pyctcdecode 0.5.0's beams exactly (text, word
frames, scores); ``tests/decoders/golden`` holds its recorded output. It is faster because
a beam's words are interned ids (no string building, LM scores cached per word sequence),
word frames are a linked list, candidate units are found for all frames at once, and
history pruning compares precomputed word tuples.

Character vocabularies separate words with ``" "``; BPE vocabularies start one with
``"▁"`` (a piece ending in ``"▁"``, like ``"▁⁇▁"``, also ends it, and, as in pyctcdecode,
that break carries over to the next unit any beam emits).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from . import native
from .alphabet import BPE_TOKEN
from .bias import BiasScorer, BiasState
from .hotwords import HotwordScorer
from .language_model import ScoringModel

__all__ = ["Beam", "SearchParams", "SearchResult", "Words", "reference_search", "search"]

NULL_FRAMES = (-1, -1)
_new = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (hot loop)
Frames = tuple[int, int]
# completed words' frames as a linked list: (earlier words, (start, end)), None when empty
FrameList = tuple[Any, Frames] | None


class Beam(NamedTuple):
    """One hypothesis prefix during the search."""

    text: int  # id of its completed words (see Words)
    part: str  # the word being spelled
    last: str | None  # label emitted at the previous frame ("" blank); None before any
    frames: FrameList  # (start, end) frames of the completed words
    part_frames: Frames  # frames of the word being spelled, NULL_FRAMES when none
    logit: float  # acoustic log score (log-sum over the merged alignments)
    bias: BiasState | None  # context-graph state; None without biasing
    bonus: float  # biasing bonus collected


@dataclass(frozen=True)
class SearchParams:
    """How wide and how deep to search."""

    beam_width: int = 100  # beams kept per frame
    beam_prune_logp: float = -10.0  # beams scoring this far below the best are dropped
    token_min_logp: float = -5.0  # units below this log-probability are not tried ...
    prune_history: bool = False  # keep one beam per (LM history, word part, last unit)
    force_window: float = 0.0  # ... except units continuing an entity, down to this far
    # below the frame's best (biasing only)


class SearchResult(NamedTuple):
    """One output beam, best first."""

    text: str  # words joined by single spaces
    lm_state: Any  # the LM state after the last word (None without an LM)
    words: list[tuple[str, Frames]]  # (word, (start frame, end frame)), end exclusive
    logit_score: float  # acoustic log score
    score: float  # ranking score: acoustics + LM + hotwords + biasing


class Words:
    """Interned word sequences: id 0 is the empty sequence; ``add`` appends a word.

    ``tail[node]`` holds the last ``history`` words (what an n-gram LM still sees).
    """

    def __init__(self, history: int = 1) -> None:
        self.parent = [0]
        self.word = [""]
        self.tail: list[tuple[str, ...]] = [()]
        self._history = history
        self._ids: dict[tuple[int, str], int] = {}
        self._text: dict[int, str] = {0: ""}

    def add(self, node: int, word: str) -> int:
        """The sequence ``node`` followed by ``word`` (``node`` itself for ``""``)."""
        if not word:
            return node
        key = (node, word)
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = len(self.parent)
            self.parent.append(node)
            self.word.append(word)
            self.tail.append((*self.tail[node], word)[-self._history:])
        return found

    def text(self, node: int) -> str:
        """The words joined by spaces."""
        missing = []
        while node not in self._text:  # iterative: sequences can be longer than the stack
            missing.append(node)
            node = self.parent[node]
        text = self._text[node]
        for node in reversed(missing):
            text = self._text[node] = f"{text} {self.word[node]}" if text else self.word[node]
        return text


def search(logprobs: np.ndarray, labels: Sequence[str], is_bpe: bool, params: SearchParams,
           language_model: ScoringModel | None = None, hotwords: HotwordScorer | None = None,
           bias: BiasScorer | None = None, lm_start_state: Any = None) -> list[SearchResult]:
    """Decode (frames, labels) natural-log probabilities; the best beams, best first.

    Runs on the compiled core (:mod:`~biasing.decoders.native`) when it is built, on
    :func:`reference_search` otherwise and for pyctcdecode's hotwords; both give the same
    beams."""
    if hotwords or not native.enabled():
        return reference_search(logprobs, labels, is_bpe, params, language_model, hotwords,
                                bias, lm_start_state)
    lm_order = 1 if language_model is None else language_model.order
    candidates = _Frames(logprobs, params.token_min_logp, params.force_window)
    found = native.run_native(logprobs, labels, is_bpe, candidates, params.beam_width,
                              params.beam_prune_logp, params.prune_history, language_model,
                              bias, lm_start_state, max(1, lm_order - 1))
    return [SearchResult(text, lm_state, list(zip(text.split(), frames)), logit, score)
            for text, lm_state, frames, logit, score in found]


def reference_search(logprobs: np.ndarray, labels: Sequence[str], is_bpe: bool,
                     params: SearchParams, language_model: ScoringModel | None = None,
                     hotwords: HotwordScorer | None = None, bias: BiasScorer | None = None,
                     lm_start_state: Any = None) -> list[SearchResult]:
    """:func:`search` in Python: the reference the compiled core is tested against."""
    lm_order = 1 if language_model is None else language_model.order
    words = Words(history=max(1, lm_order - 1))
    scorer = _Scorer(words, language_model, hotwords, lm_start_state)
    start_bias = None if bias is None else bias.start
    beams = [Beam(0, "", None, None, NULL_FRAMES, 0.0, start_bias, 0.0)]
    force_break = False
    candidates = _Frames(logprobs, params.token_min_logp, params.force_window)
    for t in range(len(logprobs)):
        if candidates.single[t] and len(beams) == 1 and not candidates.forcible[t]:
            # one beam, one unit to try: nothing to merge, score or prune
            unit = candidates.best_unit[t]
            beam, force_break = _extend(beams[0], unit, labels[unit], candidates.best[t], 0.0, t,
                                        force_break, is_bpe, words, bias)
            beams = [beam]
            continue
        units, values = candidates.units(t)
        merged, force_break = _extend_frame(beams, t, units, values, candidates.best[t], labels,
                                            is_bpe, words, bias, logprobs,
                                            candidates.forcible[t], force_break)
        scored = scorer.score_all(merged)
        beams = _prune(scored, params, words.tail)
    return _finalise(beams, words, scorer, bias, params)


class _Frames:
    """Which units each frame tries: those at or above ``token_min_logp`` and the best
    one, in the order pyctcdecode's set gives them; found for all frames at once."""

    def __init__(self, logprobs: np.ndarray, token_min_logp: float,
                 force_window: float = 0.0) -> None:
        above = logprobs >= token_min_logp
        counts = np.count_nonzero(above, axis=1)
        best_unit = logprobs.argmax(axis=1)
        best = np.take_along_axis(logprobs, best_unit[:, None], axis=1)[:, 0]
        self.best_unit = best_unit.tolist()
        self.best = best.astype(np.float64).tolist()
        # at most one unit above the threshold: the best one is the only unit to try
        self.single = (counts <= 1).tolist()
        multi = np.flatnonzero(counts > 1)
        rows, cols = np.nonzero(above[multi])
        rows = multi[rows]
        self._cols = cols.tolist()
        self._values = logprobs[rows, cols].astype(np.float64).tolist()
        self._start = np.searchsorted(rows, np.arange(len(logprobs) + 1)).tolist()
        # units a beam inside an entity may be forced to (within force_window of the best,
        # not tried anyway): usually none
        self.forcible: list[list[int]] = [[] for _ in range(len(logprobs))]
        if force_window > 0:
            forcible = (logprobs >= (best - force_window)[:, None]) & ~above
            forcible[np.arange(len(logprobs)), best_unit] = False
            for t, unit in zip(*np.nonzero(forcible)):
                self.forcible[int(t)].append(int(unit))

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every frame's units (in :meth:`units`' order) and log-probabilities, flat:
        ``(offsets, units, values)``, frame ``t`` at ``offsets[t]:offsets[t + 1]``."""
        units: list[int] = []
        values: list[float] = []
        offsets = [0]
        for t, single in enumerate(self.single):
            if single:
                units.append(self.best_unit[t])
                values.append(self.best[t])
            else:
                found, p = self.units(t)
                units += found
                values += p
            offsets.append(len(units))
        return (np.asarray(offsets, dtype=np.int64), np.asarray(units, dtype=np.int32),
                np.asarray(values, dtype=np.float64))

    def units(self, t: int) -> tuple[list[int], list[float]]:
        """Frame ``t``'s units and their log-probabilities."""
        if self.single[t]:
            return [self.best_unit[t]], [self.best[t]]
        lo, hi = self._start[t], self._start[t + 1]
        value_of = dict(zip(self._cols[lo:hi], self._values[lo:hi]))
        order = list(set(self._cols[lo:hi]) | {self.best_unit[t]})  # pyctcdecode's order
        return order, [value_of[u] for u in order]


def _extend_frame(beams: list[Beam], t: int, units: list[int], values: list[float],
                  best: float, labels: Sequence[str], is_bpe: bool, words: Words,
                  bias: BiasScorer | None, logprobs: np.ndarray, forcible: list[int],
                  force_break: bool) -> tuple[list[Beam], bool]:
    """Every beam extended by every candidate unit, equal prefixes merged; and the BPE
    break carried to the next frame."""
    extended: list[Beam] = []
    for unit, p in zip(units, values):
        label = labels[unit]
        if not label:  # the blank, the commonest unit: the same prefix one frame later
            extended += [_new(Beam, (b[0], b[1], "", b[3], b[4], b[5] + p, b[6], b[7]))
                         for b in beams]
            continue
        gap = best - p
        for beam in beams:
            new, force_break = _extend(beam, unit, label, p, gap, t, force_break, is_bpe,
                                       words, bias)
            extended.append(new)
    if bias is not None and forcible:  # continue started entities below the threshold
        for beam in beams:
            if beam.bias is None or not bias.inside(beam.bias):
                continue
            continuations = bias.continuations(beam.bias)
            for unit in forcible:
                if unit in continuations:
                    p = float(logprobs[t, unit])
                    new, _ = _extend(beam, unit, labels[unit], p, best - p, t, False, is_bpe,
                                     words, bias)
                    extended.append(new)
    return _merge(extended), force_break


def _extend(beam: Beam, unit: int, label: str, p: float, gap: float, t: int,
            force_break: bool, is_bpe: bool, words: Words, bias: BiasScorer | None,
            ) -> tuple[Beam, bool]:
    """``beam`` after emitting ``label`` at frame ``t``; and whether the next BPE unit any
    beam emits must start a word (pyctcdecode's carried-over break)."""
    text, part, last, frames, part_frames, logit, state, bonus = beam
    if label == "" or label == last:  # a blank, or the same unit again: nothing new
        if label:
            part_frames = (part_frames[0], t + 1)
        beam = _new(Beam, (text, part, label, frames, part_frames, logit + p, state, bonus))
        return beam, force_break
    if is_bpe and (label[:1] == BPE_TOKEN or force_break):  # a piece that starts a word
        force_break = False
        clean = label[1:] if label[:1] == BPE_TOKEN else label
        if label[-1:] == BPE_TOKEN:
            clean = clean[:-1]
            force_break = True
        if part:
            frames = (frames, part_frames)
        if state is not None and bias is not None:
            delta, state = bias.advance(state, bias.boundary, 0.0)
            bonus += delta
            delta, state = bias.advance(state, unit, gap)
            bonus += delta
        beam = _new(Beam, (words.add(text, part), clean, label, frames, (t, t + 1),
                           logit + p, state, bonus))
        return beam, force_break
    if not is_bpe and label == " ":  # a space ends the word
        if part:
            frames = (frames, part_frames)
        if state is not None and bias is not None:
            delta, state = bias.advance(state, unit, 0.0)
            bonus += delta
        beam = _new(Beam, (words.add(text, part), "", label, frames, NULL_FRAMES, logit + p,
                           state, bonus))
        return beam, force_break
    part_frames = (t, t + 1) if part_frames[0] < 0 else (part_frames[0], t + 1)
    if state is not None and bias is not None:
        delta, state = bias.advance(state, unit, gap)
        bonus += delta
    beam = _new(Beam, (text, part + label, label, frames, part_frames, logit + p, state, bonus))
    return beam, force_break


def _merge(beams: list[Beam]) -> list[Beam]:
    """Beams with equal prefixes (words, word part, last unit) merged, their probabilities
    summed; in first-seen order, with the fields of the later alignment unless the earlier
    one scores better with its bonus (the bonus depends on the frames a unit was emitted at,
    so alignments of one prefix differ; without biasing, always the later one, as
    pyctcdecode keeps the later alignment's frames)."""
    merged: dict[tuple[int, str, str | None], Beam] = {}
    for beam in beams:
        key = (beam[0], beam[1], beam[2])
        previous = merged.get(key)
        if previous is None:
            merged[key] = beam
            continue
        keep = _keep(previous, beam)
        merged[key] = _new(Beam, (*keep[:5], _log_add(previous[5], beam[5]), keep[6], keep[7]))
    return list(merged.values())


def _keep(previous: Beam, beam: Beam) -> Beam:
    """Of two alignments of one prefix, whose fields the merged beam keeps: the later one
    unless the earlier scores better with its bonus (indices: 5 logit, 7 bonus)."""
    if beam[7] == previous[7] or beam[5] + beam[7] >= previous[5] + previous[7]:
        return beam
    return previous


def _log_add(a: float, b: float) -> float:
    """log(exp(a) + exp(b)), computed as pyctcdecode does."""
    if a >= b:
        return a + math.log(1 + math.exp(b - a))
    return b + math.log(1 + math.exp(a - b))


class _Scorer:
    """Ranking scores: acoustics + LM (cached per word sequence) + hotwords + bonus."""

    def __init__(self, words: Words, language_model: ScoringModel | None,
                 hotwords: HotwordScorer | None, start_state: Any) -> None:
        self.words = words
        self.lm = language_model
        self.hotwords = hotwords if hotwords else None
        if start_state is None and language_model is not None:
            start_state = language_model.get_start_state()
        # (word sequence, is the utterance's end) -> (LM + hotword score, raw LM, LM state)
        self.cache: dict[tuple[int, bool], tuple[float, float, Any]] = {
            (0, False): (0.0, 0.0, start_state)}
        self.partial: dict[str, float] = {}

    def score_all(self, beams: list[Beam]) -> list[tuple[Beam, float]]:
        """(beam, ranking score) pairs."""
        if self.lm is None and self.hotwords is None:  # acoustics and bonus only
            return [(beam, beam[5] + beam[7]) for beam in beams]
        return [(beam, self.score(beam)) for beam in beams]

    def score(self, beam: Beam) -> float:
        """The ranking score of a beam within the utterance."""
        if self.lm is None:
            score = beam.logit
            if self.hotwords is not None:
                score = (score + self.hotwords.score(self.words.text(beam.text))
                         + self.hotwords.score_partial_token(beam.part))
        else:
            cached = self.cache.get((beam.text, False)) or self._words(beam.text)
            lm_score = cached[0]
            if beam.part:
                lm_score += self._partial(beam.part)
            score = beam.logit + lm_score
        return score + beam.bonus if beam.bias is not None else score

    def final_score(self, beam: Beam, previous: int, word: str) -> float:
        """The score of a closed beam: its last ``word`` is scored after ``previous`` as the
        utterance's end (pyctcdecode scores the empty word too)."""
        if self.lm is None:
            return self.score(beam)
        key = (beam.text, True)
        cached = self.cache.get(key)
        if cached is None:
            self._words(previous)
            cached = self._lm(key, previous, word)
        score = beam.logit + cached[0]
        return score + beam.bonus if beam.bias is not None else score

    def _words(self, node: int) -> tuple[float, float, Any]:
        """The cached score of a word sequence, scoring the words not scored yet (a beam
        that was alone for a while skipped scoring: the scores are the same later)."""
        chain = []
        while (node, False) not in self.cache:
            chain.append(node)
            node = self.words.parent[node]
        for node in reversed(chain):
            self._lm((node, False), self.words.parent[node], self.words.word[node])
        return self.cache[(chain[0] if chain else node, False)]

    def _lm(self, key: tuple[int, bool], previous: int, word: str,
            ) -> tuple[float, float, Any]:
        assert self.lm is not None
        _, raw, state = self.cache[(previous, False)]
        lm_score, end_state = self.lm.score(state, word, is_last_word=key[1])
        raw = raw + lm_score
        hot = raw + (self.hotwords.score(self.words.text(key[0])) if self.hotwords else 0.0)
        self.cache[key] = found = (hot, raw, end_state)
        return found

    def _partial(self, part: str) -> float:
        found = self.partial.get(part)
        if found is None:
            assert self.lm is not None
            if self.hotwords is not None and part in self.hotwords:
                found = self.hotwords.score_partial_token(part)
            else:
                found = self.lm.score_partial_token(part)
            self.partial[part] = found
        return found


def _prune(scored: list[tuple[Beam, float]], params: SearchParams,
           tail: list[tuple[str, ...]]) -> list[Beam]:
    """The best ``beam_width`` beams within ``beam_prune_logp`` of the best (ties keep
    their order), optionally one per recent history."""
    scored.sort(key=_by_score, reverse=True)  # stable: ties keep their order
    floor = scored[0][1] + params.beam_prune_logp
    kept = []
    for item in scored[:params.beam_width]:
        if item[1] < floor:
            break
        kept.append(item[0])
    if not params.prune_history:
        return kept
    seen = set()
    out = []
    for beam in kept:
        text, part, last, _, _, _, state, _ = beam
        key = (tail[text], part, last, None if state is None else state[0])
        if key not in seen:
            seen.add(key)
            out.append(beam)
    return out


_by_score = operator.itemgetter(1)  # sort key of (beam, score) pairs


def _finalise(beams: list[Beam], words: Words, scorer: _Scorer, bias: BiasScorer | None,
              params: SearchParams) -> list[SearchResult]:
    """Close every beam's last word, merge, score as the utterance's end, keep the best."""
    merged: dict[int, tuple[Beam, int, str]] = {}
    for beam in beams:
        frames = (beam.frames, beam.part_frames) if beam.part else beam.frames
        state, bonus = beam.bias, beam.bonus
        if state is not None and bias is not None:
            bonus += bias.finalize(state)
        closed = Beam(words.add(beam.text, beam.part), "", None, frames, NULL_FRAMES,
                      beam.logit, state, bonus)
        previous = merged.get(closed.text)
        if previous is not None:
            old = previous[0]
            keep = _keep(old, closed)
            closed = keep._replace(logit=_log_add(old.logit, closed.logit))
            origin = (beam.text, beam.part) if keep is not old else previous[1:]
        else:
            origin = (beam.text, beam.part)
        merged[closed.text] = (closed, *origin)
    scored = [(beam, scorer.final_score(beam, previous, word))
              for beam, previous, word in merged.values()]
    scored.sort(key=_by_score, reverse=True)
    floor = scored[0][1] + params.beam_prune_logp
    kept = [item for item in scored[:params.beam_width] if item[1] >= floor]
    out = []
    for beam, score in kept:
        text = words.text(beam.text)
        cached = scorer.cache.get((beam.text, True))
        out.append(SearchResult(text, None if cached is None else cached[2],
                                list(zip(text.split(), _frame_list(beam.frames))),
                                beam.logit, score))
    return out


def _frame_list(frames: FrameList) -> list[Frames]:
    out = []
    while frames is not None:
        frames, last = frames
        out.append(last)
    return out[::-1]
