"""The phonetic companion: a model with a phone head, run beside any acoustic model on the
same audio, so that models without a phone head get the phonetic techniques too.

:class:`WithCompanion` is an acoustic model made of two: the user's model gives the
log-probabilities (and its own layers and heads), the companion (by default the bundled
model, 17.5 MB) gives phone posteriors. The companion runs only up to the block its phone
head reads (``head_posteriors``), and its posteriors are mapped onto the user's model's
frames by time (:func:`map_frames`): frame shifts may differ (20 ms for QuartzNet and
wav2vec2, 40 ms for Conformers, 80 ms for Citrinet), and the phone head fires a little
ahead of a character output (``lead_s``; the phonetic techniques also align each
utterance's words on the phones, so what is left is absorbed there).

>>> model = attach_companion(load_model("quartznet:DIR"), "default")  # doctest: +SKIP
>>> model.forward([wave])[0].heads["phones"].shape    # (model frames, 40)        # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from . import AcousticModel, ModelOutput

__all__ = ["DEFAULT_COMPANION", "PHONE_HEAD", "Companion", "WithCompanion",
           "attach_companion", "load_companion", "map_frames", "phones_source"]

PHONE_HEAD = "phones"  # the auxiliary head the phonetic techniques read
DEFAULT_COMPANION = "default"  # the bundled model


class Companion:
    """A model's phone head, to be run beside another model.

    Args:
        model: a model with ``head_posteriors(waves, head)`` and ``head_labels[head]`` (a
            QuartzNet folder with a phone head, such as the bundled model).
        source: what it was loaded from, for messages and reports.
        head: the phone head's name.
        lead_s: seconds by which its phone head fires ahead of the outputs it is mapped
            onto (subtracted when mapping).

    Raises:
        ValueError: the model has no such head (the message lists the heads it has).
    """

    def __init__(self, model: Any, source: str = DEFAULT_COMPANION, head: str = PHONE_HEAD,
                 lead_s: float = 0.0) -> None:
        heads = getattr(model, "head_labels", {}) or {}
        if head not in heads or not hasattr(model, "head_posteriors"):
            raise ValueError(f"companion {source!r} has no {head!r} head to run beside the "
                             f"model (its heads: {sorted(heads) or 'none'}); a companion "
                             f"must be a model with a phone head, such as 'default'")
        self.model = model
        self.source = source
        self.head = head
        self.labels = list(heads[head])
        self.sample_rate = int(model.sample_rate)
        self.frame_shift_s = float(model.frame_shift_s)
        self.lead_s = float(lead_s)
        self._model_fingerprint = f"{getattr(model, 'fingerprint', source)}-{head}"

    @property
    def fingerprint(self) -> str:
        """Changes with the model and the lead: mapped outputs are cached under it."""
        lead = f"-lead{self.lead_s:g}" if self.lead_s else ""
        return f"{self._model_fingerprint}{lead}"

    def posteriors(self, waves: Sequence[np.ndarray], rate: int) -> list[np.ndarray]:
        """(companion frames, phones) log-probabilities of waveforms at ``rate`` Hz."""
        from ..audio import to_model_rate

        if rate != self.sample_rate:
            waves = [to_model_rate(w, rate, self.sample_rate) for w in waves]
        return self.model.head_posteriors(list(waves), self.head)


def load_companion(spec: str = DEFAULT_COMPANION, device: str = "cpu") -> Companion:
    """The companion ``spec`` names: ``"default"`` (the bundled model) or a model spec
    (``quartznet:DIR``) whose model has a phone head.

    Raises:
        ValueError: the spec does not load, or its model has no phone head (both named).
    """
    from . import load_model

    try:
        model = load_model(spec, device=device)
    except (OSError, ValueError) as err:
        raise ValueError(f"companion {spec!r} does not load: {err}") from None
    return Companion(model, source=spec)


class WithCompanion:
    """``model`` with ``companion``'s phone posteriors as its ``phones`` head, on its own
    frames. Everything else (labels, layers, adapter hooks) is ``model``'s."""

    def __init__(self, model: AcousticModel, companion: Companion) -> None:
        self.model = model
        self.companion = companion
        self.labels = model.labels
        self.sample_rate = model.sample_rate
        self.frame_shift_s = model.frame_shift_s
        self.head_labels = {**(getattr(model, "head_labels", {}) or {}),
                            PHONE_HEAD: companion.labels}


    @property
    def fingerprint(self) -> str | None:
        """The pair's (None when the model has none: its outputs are not cached)."""
        own = getattr(self.model, "fingerprint", None)
        return None if own is None else f"{own}+{self.companion.fingerprint}"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)  # layer_size, output_layer, tokenizer_path, ...

    def forward(self, waves: Sequence[np.ndarray], layers: Sequence[int] = (),
                **options: Any) -> list[ModelOutput]:
        """The model's outputs, each with the companion's phones on its frames."""
        outputs = self.model.forward(waves, layers, **options)
        phones = self.companion.posteriors(waves, self.sample_rate)
        return [replace(out, heads={**out.heads, PHONE_HEAD: map_frames(
                    p, self.companion.frame_shift_s, len(out.logprobs), self.frame_shift_s,
                    self.companion.lead_s)})
                for out, p in zip(outputs, phones)]


def attach_companion(model: AcousticModel, companion: Any = DEFAULT_COMPANION,
                     device: str = "cpu") -> AcousticModel:
    """``model`` with the companion ``companion`` names when it has no phone head of its
    own: ``"default"`` (the bundled model), a model spec, a :class:`Companion`; None or
    ``"none"`` for none.

    Raises:
        ValueError: the companion does not load or has no phone head.
    """
    if PHONE_HEAD in (getattr(model, "head_labels", {}) or {}) or companion in (None, "none"):
        return model
    if not isinstance(companion, Companion):
        if not isinstance(companion, str):
            raise TypeError(f"companion must be 'default', 'none', a model spec or a "
                            f"Companion, got {type(companion).__name__}")
        companion = load_companion(companion, device)
    return WithCompanion(model, companion)


def phones_source(model: AcousticModel) -> str | None:
    """Where ``model``'s phone posteriors come from, for reports: ``"model"`` (its own
    head), ``"companion:SPEC"``, or None (none)."""
    if isinstance(model, WithCompanion):
        return f"companion:{model.companion.source}"
    return "model" if PHONE_HEAD in (getattr(model, "head_labels", {}) or {}) else None


def map_frames(logprobs: np.ndarray, source_shift_s: float, frames: int,
               target_shift_s: float, lead_s: float = 0.0) -> np.ndarray:
    """(source frames, classes) log-probabilities on ``frames`` frames ``target_shift_s``
    apart: each target frame gets the mean probability of the source frames its time span
    overlaps (weighted by the overlap), ``lead_s`` later; the same shift and no lead is an
    exact copy. A source that ends before or after the target gets its last frame repeated
    or cut.

    Raises:
        ValueError: the source's duration, mapped onto the target's frames, differs from
            ``frames`` by more than one frame (they are not the same audio): the message
            names both.
    """
    logprobs = np.asarray(logprobs)
    source = len(logprobs)
    mapped = round(source * source_shift_s / target_shift_s)
    if abs(mapped - frames) > 1:
        raise ValueError(f"phone posteriors of {source} frames x {source_shift_s * 1000:g} ms "
                         f"({source * source_shift_s:.2f} s) cannot be the same audio as "
                         f"model output of {frames} frames x {target_shift_s * 1000:g} ms "
                         f"({frames * target_shift_s:.2f} s)")
    if source == 0 or frames == 0:
        return np.zeros((frames, logprobs.shape[1]), dtype=np.float32)
    if math.isclose(source_shift_s, target_shift_s) and lead_s == 0.0:
        index = np.minimum(np.arange(frames), source - 1)
        return np.ascontiguousarray(logprobs[index])
    probs = np.exp(logprobs.astype(np.float64))
    duration = source * source_shift_s
    starts = np.arange(frames) * target_shift_s - lead_s
    starts = np.clip(starts, 0.0, max(0.0, duration - target_shift_s))
    ends = np.minimum(starts + target_shift_s, duration)
    first = np.minimum((starts / source_shift_s).astype(np.int64), source - 1)
    total = np.zeros((frames, probs.shape[1]))
    # each target frame overlaps at most this many source frames; weight each by its overlap
    for k in range(math.ceil(target_shift_s / source_shift_s) + 1):
        index = np.minimum(first + k, source - 1)
        overlap = np.minimum(ends, (first + k + 1) * source_shift_s) \
            - np.maximum(starts, (first + k) * source_shift_s)
        overlap = np.where(first + k < source, np.maximum(overlap, 0.0), 0.0)
        total += overlap[:, None] * probs[index]
    mean = total / total.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.log(mean).astype(np.float32)
