"""Phone substitution costs and soft posteriors."""

from __future__ import annotations

import numpy as np

from biasing.lexicon.arpabet import BASE_PHONES
from biasing.lexicon.confusion import FAR, NEAR, confusion_costs, soft_posteriors

LABELS = [*BASE_PHONES, ""]


def test_costs_are_symmetric_by_class_and_the_blank_stands_alone() -> None:
    costs = confusion_costs(LABELS)
    index = {p: i for i, p in enumerate(LABELS)}
    assert np.array_equal(costs, costs.T)
    assert np.all(np.diag(costs) == 0)
    assert costs[index["AA"], index["IY"]] == NEAR  # two vowels
    assert costs[index["P"], index["B"]] == NEAR  # a voicing pair
    assert costs[index["P"], index["S"]] == FAR
    assert costs[index["AA"], index["S"]] == FAR
    blank = index[""]
    assert np.isinf(costs[blank, :blank]).all() and costs[blank, blank] == 0


def test_soft_posteriors_hear_a_phone_as_a_similar_one() -> None:
    costs = confusion_costs(LABELS)
    index = {p: i for i, p in enumerate(LABELS)}
    logprobs = np.full((1, len(LABELS)), np.log(0.001))
    logprobs[0, index["B"]] = np.log(0.9)
    soft = soft_posteriors(logprobs, costs)[0]
    assert soft[index["B"]] == logprobs[0, index["B"]]
    assert soft[index["P"]] == np.log(0.9) - NEAR  # P is heard through B
    assert soft[index["S"]] == max(np.log(0.001), np.log(0.9) - FAR)
    assert soft[index[""]] == logprobs[0, index[""]]  # the blank is never borrowed
