"""What the decoder accepts: (frames, labels) scores converted as pyctcdecode converts them,
and phone posteriors on the same frames.

Rows that sum to 1 on average are taken as probabilities (``log(clip(p, 1e-15, 1))``);
anything else (log-probabilities, raw logits, integers) goes through ``log_softmax``; either
way values are clipped to ``[log 1e-15, 0]``. Wrong shapes, NaN and +inf are errors naming
the value; so is a frame with no finite value.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

__all__ = ["MIN_TOKEN_CLIP_P", "checked_logprobs", "checked_phones", "log_softmax",
           "to_logprobs"]

MIN_TOKEN_CLIP_P = 1e-15  # log-probabilities are clipped to log(1e-15)


def checked_logprobs(logits: Any, vocab: int, blank: int, appended_blank: bool = False,
                     labels: list[str] | None = None) -> np.ndarray:
    """(frames, vocab) log-probabilities from what the caller gave (a numpy array or a torch
    tensor).

    Args:
        logits: (frames, vocab) probabilities, log-probabilities or raw logits.
        vocab: the number of labels.
        blank: index of the CTC blank (for the misplaced-blank warning).
        appended_blank: the labels had no blank and one was appended (a hint when the
            logits have one column fewer).
        labels: the labels, to name them in the warning.

    Raises:
        TypeError: not an array.
        ValueError: wrong shape or dtype, NaN or +inf, or a frame with no finite value.
    """
    if hasattr(logits, "detach"):  # a torch tensor
        logits = logits.detach().cpu().numpy()
    if not isinstance(logits, np.ndarray):
        raise TypeError(f"logits must be a numpy array of shape (frames, {vocab}), got "
                        f"{type(logits).__name__}")
    if logits.ndim != 2 or logits.shape[1] != vocab:
        hint = ""
        if appended_blank and logits.ndim == 2 and logits.shape[1] == vocab - 1:
            hint = (": the labels had no CTC blank (''), so one was appended; put the "
                    "blank in the labels at the index your model uses")
        raise ValueError(f"logits have shape {logits.shape}, but need (frames, {vocab}): "
                         f"one column per label of the {vocab}-label vocabulary{hint}")
    if not (np.issubdtype(logits.dtype, np.floating)
            or np.issubdtype(logits.dtype, np.integer)):
        raise ValueError(f"logits have dtype {logits.dtype}, expected numbers")
    if len(logits) == 0:
        return logits.astype(np.float64)
    if not np.isfinite(logits).all():  # -inf is fine (probability 0), NaN and +inf not
        bad = np.isnan(logits) | np.isposinf(logits)
        if bad.any():
            frame = int(np.argwhere(bad)[0][0])
            raise ValueError(f"logits contain NaN or +inf (first at frame {frame})")
    logprobs = to_logprobs(logits)
    empty = ~np.isfinite(logprobs).any(axis=1)
    if empty.any():
        raise ValueError(f"frame {int(np.argmax(empty))} has no finite value (every "
                         "entry is -inf)")
    _check_blank(logprobs, blank, labels)
    return logprobs


def _check_blank(logprobs: np.ndarray, blank: int, labels: list[str] | None) -> None:
    """Warn when the blank is rarely the best label but one other label nearly always
    clearly is (by more than a nat): the labels put the blank where the model does not."""
    if len(logprobs) < 50:
        return
    best = logprobs.argmax(axis=1)
    clear = logprobs.max(axis=1) > logprobs[:, blank] + 1.0
    counts = np.bincount(best[clear], minlength=logprobs.shape[1])
    top = int(np.argmax(counts))
    blank_share = float(np.mean(best == blank))
    if blank_share < 0.1 and counts[top] > 0.5 * len(logprobs):
        name = repr(labels[top]) if labels is not None else "a label"
        warnings.warn(f"label {name} (index {top}) is the best label in "
                      f"{counts[top] / len(logprobs):.0%} of frames and the blank (index "
                      f"{blank}) in {blank_share:.0%}: is the blank at the index the "
                      "model gives it?", UserWarning, stacklevel=5)


def checked_phones(phones: Any, classes: int, logprobs: np.ndarray) -> np.ndarray:
    """Phone posteriors as (frames, classes) log-probabilities on the output's frames (one
    frame more or less is padded or cut).

    Raises:
        ValueError: wrong shape (more than a frame off), NaN, +inf or non-numbers.
    """
    if hasattr(phones, "detach"):
        phones = phones.detach().cpu().numpy()
    phones = np.asarray(phones)
    if phones.ndim != 2 or phones.shape[1] != classes or \
            abs(len(phones) - len(logprobs)) > 1:
        raise ValueError(f"phone posteriors have shape {phones.shape}, but need "
                         f"({len(logprobs)} +- 1 frames, {classes} phone labels) for "
                         f"output log-probabilities of shape {logprobs.shape}")
    if not np.issubdtype(phones.dtype, np.number) or np.isnan(phones).any() \
            or np.isposinf(phones).any():
        raise ValueError(f"phone posteriors of shape {phones.shape} contain NaN, +inf "
                         "or non-numbers")
    if len(phones) == 0:
        return phones.astype(np.float64)
    phones = to_logprobs(phones.astype(np.float64))
    if len(phones) < len(logprobs):
        phones = np.concatenate([phones, phones[-1:]])
    return phones[:len(logprobs)]


def to_logprobs(logits: np.ndarray) -> np.ndarray:
    """pyctcdecode's input rule: rows summing to 1 on average are probabilities (their log
    is taken), anything else goes through ``log_softmax``; then clipped to
    ``[log 1e-15, 0]``. Computed in the input's float type, as pyctcdecode 0.5.0 does on
    NumPy 1 (so NumPy 2 gives the same values)."""
    if math.isclose(float(logits.sum(axis=1).mean()), 1):
        return np.log(np.clip(logits, MIN_TOKEN_CLIP_P, 1))
    out = log_softmax(logits)
    floor = np.asarray(np.log(MIN_TOKEN_CLIP_P), dtype=out.dtype)
    return np.clip(out, floor, np.asarray(0, dtype=out.dtype))


def log_softmax(x: np.ndarray) -> np.ndarray:
    """log_softmax over axis 1 of (frames, labels), step by step as scipy (and pyctcdecode)
    compute it, in the input's float type."""
    x_max = np.amax(x, axis=1, keepdims=True)
    x_max[~np.isfinite(x_max)] = 0
    tmp = x - x_max
    with np.errstate(divide="ignore", invalid="ignore"):  # rows of -inf are reported later
        out = np.log(np.sum(np.exp(tmp), axis=1, keepdims=True))
        return tmp - out
