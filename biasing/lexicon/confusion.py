"""Phone substitution costs from broad phonetic classes: a phonetic distance.

A pronunciation from a dictionary or a G2P model often differs from what a speaker (or a
voice) says by a phone or two, and a phone head confuses similar phones. Scoring a
pronunciation against phone posteriors with :func:`soft_posteriors` lets each phone be
"heard" as a similar one at a cost: the score of phone ``p`` on a frame is the best of
``log P(q) - cost(p, q)`` over the phones ``q``. Costs (nats) are by class:

- 0 for the phone itself;
- ``NEAR`` for a close pair: any two vowels, a voicing pair (P/B, T/D, K/G, F/V, S/Z,
  TH/DH, SH/ZH, CH/JH), two nasals, the liquids and glides L/R/W/Y, ER with R, SH/S,
  CH/SH, JH/ZH, TH/F, DH/D, T/CH, D/JH, HH with nothing special;
- ``FAR`` for other pairs of consonants, and between vowels and consonants.

>>> costs = confusion_costs(["AA", "AE", "B", "P", ""])
>>> costs[0, 1], costs[2, 3], costs[0, 2]
(2.5, 2.5, 6.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .arpabet import VOWELS

__all__ = ["FAR", "NEAR", "confusion_costs", "soft_posteriors"]

NEAR = 2.5
FAR = 6.0
_NEAR_PAIRS = [
    ("P", "B"), ("T", "D"), ("K", "G"), ("F", "V"), ("S", "Z"), ("TH", "DH"), ("SH", "ZH"),
    ("CH", "JH"), ("M", "N"), ("N", "NG"), ("M", "NG"), ("L", "R"), ("W", "V"), ("R", "W"),
    ("L", "W"), ("Y", "IY"), ("W", "UW"), ("ER", "R"), ("SH", "S"), ("CH", "SH"),
    ("JH", "ZH"), ("TH", "F"), ("DH", "D"), ("TH", "T"), ("T", "CH"), ("D", "JH"),
    ("HH", "K"), ("ER", "AH"), ("ER", "IH"),
]


def confusion_costs(labels: Sequence[str]) -> np.ndarray:
    """(labels, labels) substitution costs for a phone head's labels (stressless ARPAbet;
    ``""`` is the blank, which only the blank may stand for)."""
    size = len(labels)
    costs = np.full((size, size), FAR)
    near = {frozenset(pair) for pair in _NEAR_PAIRS}
    for i, a in enumerate(labels):
        for j, b in enumerate(labels):
            if i == j:
                costs[i, j] = 0.0
            elif a == "" or b == "":
                costs[i, j] = np.inf
            elif (a in VOWELS and b in VOWELS) or frozenset((a, b)) in near:
                costs[i, j] = NEAR
    return costs


def soft_posteriors(logprobs: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """(frames, labels): per frame and phone ``p``, ``max_q logprobs[q] - costs[p, q]``."""
    logprobs = np.asarray(logprobs, dtype=np.float64)
    from ..decoders import native

    if native.enabled() and logprobs.ndim == 2 and logprobs.shape[1] > 0:
        return native.soft_posteriors(logprobs, costs)
    return (logprobs[:, None, :] - costs[None, :, :]).max(axis=2)
