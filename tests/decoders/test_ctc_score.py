"""CTC span scores against brute-force enumeration of every frame labelling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from biasing.decoders.ctc_score import (
    align_words,
    ctc_best_score,
    ctc_log_likelihood,
    ctc_viterbi,
)


def _collapse(path: tuple[int, ...], blank: int) -> list[int]:
    out, previous = [], None
    for unit in path:
        if unit != previous and unit != blank:
            out.append(unit)
        previous = unit
    return out


def _brute(logprobs: np.ndarray, units: list[int], blank: int) -> tuple[float, float]:
    """(log of the sum, max) over every labelling that collapses to ``units``."""
    total, best = -np.inf, -np.inf
    frames, classes = logprobs.shape
    for path in itertools.product(range(classes), repeat=frames):
        if _collapse(path, blank) == units:
            score = float(logprobs[np.arange(frames), path].sum())
            total, best = np.logaddexp(total, score), max(best, score)
    return total, best


@pytest.mark.parametrize("seed", range(40))
def test_forward_and_viterbi_equal_enumeration(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frames, classes = int(rng.integers(1, 6)), 3
    logprobs = np.log(rng.dirichlet(np.ones(classes), size=frames))
    units = [int(u) for u in rng.integers(1, classes, size=rng.integers(0, 4))]
    total, best = _brute(logprobs, units, blank=0)
    assert ctc_log_likelihood(logprobs, units, 0) == pytest.approx(total)
    assert ctc_viterbi(logprobs, units, 0)[0] == pytest.approx(best)
    assert ctc_best_score(logprobs, units, 0) == pytest.approx(best)


@pytest.mark.parametrize("seed", range(40))
def test_deletion_leaves_out_inner_units_at_a_cost(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    frames, classes = int(rng.integers(1, 8)), 4
    logprobs = np.log(rng.dirichlet(np.ones(classes), size=frames))
    units = [int(u) for u in rng.integers(1, classes, size=rng.integers(1, 6))]
    expected = -np.inf
    inner = range(1, len(units) - 1)
    for k in range(len(units) + 1):
        for left_out in itertools.combinations(inner, k):
            if any(b - a == 1 for a, b in itertools.pairwise(left_out)):
                continue  # not two in a row
            kept = [u for i, u in enumerate(units) if i not in left_out]
            expected = max(expected, ctc_viterbi(logprobs, kept, 0)[0] - 1.5 * k)
    assert ctc_best_score(logprobs, units, 0, deletion=1.5) == pytest.approx(expected)


def test_too_few_frames_is_impossible() -> None:
    logprobs = np.log(np.full((2, 3), 1 / 3))
    assert ctc_log_likelihood(logprobs, [1, 1], 0) == -np.inf  # needs a blank between
    assert ctc_viterbi(logprobs, [1, 2, 1], 0)[0] == -np.inf
    assert ctc_best_score(logprobs, [], 0) == pytest.approx(2 * np.log(1 / 3))


def test_viterbi_spans_and_word_alignment() -> None:
    # frames: blank, 1, 1, blank, 2, blank, 3, 3 (peaky)
    path = [0, 1, 1, 0, 2, 0, 3, 3]
    logprobs = np.full((len(path), 4), np.log(0.01))
    logprobs[np.arange(len(path)), path] = np.log(0.97)
    score, spans = ctc_viterbi(logprobs, [1, 2, 3], 0)
    assert spans.tolist() == [[1, 3], [4, 5], [6, 8]]
    assert score == pytest.approx(len(path) * np.log(0.97))
    _, words = align_words(logprobs, [[1, 2], [], [3]], 0)
    assert words == [(1, 5), (5, 5), (6, 8)]


def test_bad_units_are_errors() -> None:
    logprobs = np.zeros((3, 3))
    with pytest.raises(ValueError, match="non-blank"):
        ctc_log_likelihood(logprobs, [0], 0)
    with pytest.raises(ValueError, match="outside"):
        ctc_viterbi(logprobs, [1], 5)
