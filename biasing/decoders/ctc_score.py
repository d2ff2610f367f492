"""CTC scores of a given unit sequence over a span of a posteriorgram (numpy, log space).

The units are any CTC head's label indices (phones, characters, subwords); the blank is
one of them. Scores are natural-log probabilities of the span's frames:

- :func:`ctc_log_likelihood`: the CTC forward score, log of the sum over every alignment;
- :func:`ctc_viterbi`: the best single alignment's score and, by backtracking, the frames
  each unit occupies;
- :func:`align_words`: a Viterbi forced alignment of consecutive words, giving each word
  its frame span (blanks between words belong to neither).

Every recursion runs over the extended sequence ``blank u1 blank u2 ... un blank`` at once
(vectorised over states, a Python loop over frames). A span too short for the units (each
unit needs a frame, and repeated units a blank between them) scores ``-inf``.

>>> import numpy as np
>>> lp = np.log(np.array([[0.1, 0.9], [0.8, 0.2]]))   # (frames, classes), blank = 0
>>> round(ctc_log_likelihood(lp, [1], blank=0), 4)     # "1 _", "1 1", "_ 1"
-0.0943
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import native

__all__ = ["align_words", "ctc_best_score", "ctc_log_likelihood", "ctc_viterbi"]

NEG_INF = -np.inf


def _extended(units: Sequence[int], blank: int) -> tuple[np.ndarray, np.ndarray]:
    """The extended label sequence and, per state, whether it may skip the state two back
    (a unit that differs from the previous unit)."""
    ext = np.full(2 * len(units) + 1, blank, dtype=np.int64)
    ext[1::2] = units
    skip = np.zeros(len(ext), dtype=bool)
    if len(units) > 1:
        skip[3::2] = ext[3::2] != ext[1:-2:2]
    return ext, skip


def _check(logprobs: np.ndarray, units: Sequence[int], blank: int) -> np.ndarray:
    logprobs = np.asarray(logprobs, dtype=np.float64)
    if logprobs.ndim != 2:
        raise ValueError(f"logprobs must be (frames, classes), got shape {logprobs.shape}")
    classes = logprobs.shape[1]
    if not 0 <= blank < classes:
        raise ValueError(f"blank index {blank} is outside the {classes} classes")
    bad = [u for u in units if not 0 <= u < classes or u == blank]
    if bad:
        raise ValueError(f"units {bad[:5]} are not non-blank classes of {classes}")
    return logprobs


def ctc_log_likelihood(logprobs: np.ndarray, units: Sequence[int], blank: int) -> float:
    """log P(units | frames): the CTC forward score of (frames, classes) log-probabilities."""
    logprobs = _check(logprobs, units, blank)
    if len(logprobs) == 0:
        return 0.0 if not units else NEG_INF
    ext, skip = _extended(units, blank)
    emit = logprobs[:, ext]  # (frames, states)
    if native.enabled():
        return native.ctc_forward(emit, skip)
    alpha = np.full(len(ext), NEG_INF)
    alpha[0] = emit[0, 0]
    if len(ext) > 1:
        alpha[1] = emit[0, 1]
    shifted1 = np.empty_like(alpha)
    shifted2 = np.empty_like(alpha)
    with np.errstate(invalid="ignore"):
        for t in range(1, len(emit)):
            shifted1[0] = NEG_INF
            shifted1[1:] = alpha[:-1]
            shifted2[:2] = NEG_INF
            shifted2[2:] = alpha[:-2]
            shifted2[~skip] = NEG_INF
            alpha = np.logaddexp(np.logaddexp(alpha, shifted1), shifted2) + emit[t]
    return float(np.logaddexp(alpha[-1], alpha[-2]) if len(ext) > 1 else alpha[-1])


def ctc_best_score(logprobs: np.ndarray, units: Sequence[int], blank: int,
                   deletion: float | None = None) -> float:
    """The best alignment's log score, as :func:`ctc_viterbi` gives it, without the
    backtracking (the fast path for comparisons).

    ``deletion``: if given, inner units (not the first or last, not two in a row) may be
    left out at that cost in nats each: a tolerance for pronunciations with spurious
    phones.
    """
    logprobs = _check(logprobs, units, blank)
    if len(logprobs) == 0:
        return 0.0 if not units else NEG_INF
    ext, skip = _extended(units, blank)
    emit = logprobs[:, ext]
    score = np.full(len(ext), NEG_INF)
    score[0] = emit[0, 0]
    if len(ext) > 1:
        score[1] = emit[0, 1]
    no_skip = ~skip
    jump = np.zeros(len(ext), dtype=bool)  # states reachable by leaving one unit out
    from_unit = np.zeros(len(ext), dtype=bool)  # ... straight from the unit before it
    if deletion is not None and len(units) > 2:
        jump[5:len(ext) - 1:2] = True
        from_unit[5:len(ext) - 1:2] = ext[5:len(ext) - 1:2] != ext[1:len(ext) - 5:2]
    use_jump = bool(jump.any())
    if native.enabled():
        return native.ctc_best(emit, skip, jump, from_unit, deletion or 0.0, use_jump)
    shifted = np.empty_like(score)
    for t in range(1, len(emit)):
        shifted[0] = NEG_INF
        shifted[1:] = score[:-1]
        best = np.maximum(score, shifted)
        shifted[2:] = score[:-2]
        shifted[:2] = NEG_INF
        shifted[no_skip] = NEG_INF
        np.maximum(best, shifted, out=best)
        if use_jump:  # from unit i-2 or the blank after it, straight to unit i
            shifted[4:] = np.maximum(np.where(from_unit[4:], score[:-4], NEG_INF),
                                     score[1:-3]) - deletion
            shifted[:4] = NEG_INF
            shifted[~jump] = NEG_INF
            np.maximum(best, shifted, out=best)
        score = best + emit[t]
    return float(max(score[-1], score[-2]) if len(ext) > 1 else score[-1])


def ctc_viterbi(logprobs: np.ndarray, units: Sequence[int], blank: int,
                ) -> tuple[float, np.ndarray]:
    """The best alignment of ``units`` to all frames: its log score and, per unit, its
    ``(first frame, last frame + 1)`` as an (n, 2) int array (``-inf`` and an empty array
    when the frames cannot hold the units)."""
    logprobs = _check(logprobs, units, blank)
    n = len(units)
    if len(logprobs) == 0:
        return (0.0, np.zeros((0, 2), dtype=np.int64)) if n == 0 else \
            (NEG_INF, np.zeros((0, 2), dtype=np.int64))
    ext, skip = _extended(units, blank)
    emit = logprobs[:, ext]
    if native.enabled():
        best, found = native.viterbi(emit, skip)
        if found is None:
            return NEG_INF, np.zeros((0, 2), dtype=np.int64)
        return best, found
    states = len(ext)
    back = np.zeros((len(emit), states), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    score = np.full(states, NEG_INF)
    score[0] = emit[0, 0]
    if states > 1:
        score[1] = emit[0, 1]
    candidates = np.empty((3, states))
    for t in range(1, len(emit)):
        candidates[0] = score
        candidates[1, 0] = NEG_INF
        candidates[1, 1:] = score[:-1]
        candidates[2, :2] = NEG_INF
        candidates[2, 2:] = score[:-2]
        candidates[2, ~skip] = NEG_INF
        choice = candidates.argmax(axis=0)
        back[t] = choice
        score = candidates[choice, np.arange(states)] + emit[t]
    last = states - 1 if states == 1 or score[-1] >= score[-2] else states - 2
    best = float(score[last])
    if best == NEG_INF:
        return NEG_INF, np.zeros((0, 2), dtype=np.int64)
    spans = np.full((n, 2), -1, dtype=np.int64)
    state = last
    for t in range(len(emit) - 1, -1, -1):
        if state % 2 == 1:
            unit = state // 2
            if spans[unit, 1] < 0:
                spans[unit, 1] = t + 1
            spans[unit, 0] = t
        state -= int(back[t, state])
    return best, spans


def align_words(logprobs: np.ndarray, words: Sequence[Sequence[int]], blank: int,
                ) -> tuple[float, list[tuple[int, int]]]:
    """Viterbi forced alignment of consecutive words (each a unit sequence) to all frames:
    the score and each word's ``(first frame, last frame + 1)``. A word without units gets
    the empty span at the frame where it falls."""
    flat = [u for word in words for u in word]
    score, spans = ctc_viterbi(logprobs, flat, blank)
    if score == NEG_INF:
        return NEG_INF, []
    out: list[tuple[int, int]] = []
    index = 0
    for word in words:
        if not word:
            at = int(spans[index - 1, 1]) if index else 0
            out.append((at, at))
            continue
        out.append((int(spans[index, 0]), int(spans[index + len(word) - 1, 1])))
        index += len(word)
    return score, out
