"""The attention plot: frames (seconds) x entities, as the method's paper draws it.

Rows are ``<no-bias>`` and the entities that drew the most attention; the recognised words
are written along the top at their times (thin white lines mark where each starts). Needs matplotlib (``pip install
'ctc-biasing[eval]'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..paths import atomic_write

__all__ = ["NO_BIAS", "plot_attention", "top_entities"]

NO_BIAS = "<no-bias>"


def top_entities(weights: np.ndarray, top: int) -> list[int]:
    """Columns (1-based, into ``weights``) of the ``top`` entities with the largest peak
    attention, in descending order of that peak."""
    if weights.shape[1] <= 1 or top <= 0:
        return []
    peaks = weights[:, 1:].max(axis=0)
    order = np.argsort(-peaks, kind="stable")[:top]
    return [int(i) + 1 for i in order]


def plot_attention(weights: np.ndarray, entities: Sequence[str], frame_shift_s: float,
                   words: Sequence[Any], path: str | Path, top: int = 10,
                   title: str = "") -> Path:
    """Draw the attention of one utterance into ``path`` (PNG).

    Args:
        weights: (frames, 1 + N) attention, column 0 ``<no-bias>``.
        entities: the N entities of columns 1..N.
        frame_shift_s: seconds per frame.
        words: the transcript's words (``WordTiming``: word, start_s, end_s).
        path: the image to write.
        top: how many entities to show besides ``<no-bias>``.
        title: a line above the plot (e.g. the file name).

    Raises:
        ImportError: matplotlib is not installed.
        ValueError: ``weights`` and ``entities`` disagree.
    """
    if weights.ndim != 2 or weights.shape[1] != len(entities) + 1:
        raise ValueError(f"attention of shape {weights.shape} does not fit {len(entities)} "
                         "entities plus <no-bias>")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("the attention plot needs matplotlib: pip install "
                          "'ctc-biasing[eval]'") from None
    columns = [0, *top_entities(weights, top)]
    names = [NO_BIAS] + [entities[c - 1] for c in columns[1:]]
    shown = weights[:, columns].T  # (rows, frames)
    seconds = len(weights) * frame_shift_s
    height = 2.2 + 0.32 * len(columns)
    figure, axes = plt.subplots(figsize=(max(6.0, min(16.0, 1.4 * seconds + 2)), height))
    image = axes.imshow(shown, aspect="auto", origin="upper", cmap="viridis", vmin=0, vmax=1,
                        extent=(0, seconds, len(columns) - 0.5, -0.5), interpolation="nearest")
    axes.set_yticks(range(len(columns)), names, fontsize=8)
    axes.set_xlabel("time (s)")
    for word in words:
        axes.axvline(word.start_s, color="white", linewidth=0.4, alpha=0.6)
    # the recognised words along the top, at their middles
    above = axes.secondary_xaxis("top")
    above.set_xticks([(w.start_s + w.end_s) / 2 for w in words], [w.word for w in words],
                     rotation=55, fontsize=7, ha="left")
    above.tick_params(length=0)
    figure.colorbar(image, ax=axes, fraction=0.03, pad=0.01, label="attention")
    figure.suptitle(title or "adapter attention", fontsize=9)
    figure.tight_layout()
    path = Path(path)
    with atomic_write(path) as stream:  # a failed draw never leaves half a PNG
        figure.savefig(stream, dpi=120, format="png")
    plt.close(figure)
    return path
