"""Acoustic models: the protocol every CTC model implements, a loader, and chunked inference.

Importing this package is cheap: torch (and transformers for ``hf:``) are imported only by
``load_model`` and the model modules it loads.

Example::

    from biasing.audio import load_audio
    from biasing.models import load_model, forward_long

    model = load_model("quartznet:../shared/models/quartznet15x5")
    wave = load_audio("talk.wav", model.sample_rate)
    out = forward_long(model, wave, layers=(5, 11))
    out.logprobs.shape  # (frames, 29), frames 20 ms apart
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

# oneDNN (torch's CPU convolutions) keeps up to 1,024 compiled kernels, one set per input
# shape: with recordings of every length that is about 1 GB of a long-running process's
# memory (a server, a corpus job). 64 keeps what one forward pass reuses at the same speed
# (benchmarks/forward_speed.py) and the memory flat. Set before torch is imported; a value
# the user set wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")

if TYPE_CHECKING:
    import torch

__all__ = ["MODEL_KINDS", "AcousticModel", "BiasableModel", "ModelOutput", "available_cores",
           "default_model_dir", "files_fingerprint", "forward_long", "free_cores",
           "greedy_labels", "load_model", "set_threads"]

# Spec prefixes understood by ``load_model``, with what follows the colon.
MODEL_KINDS: dict[str, str] = {
    "quartznet": "folder with config.json and weights.npz (QuartzNet 15x5 style)",
    "hf": "local Hugging Face Wav2Vec2ForCTC folder (config.json, weights, vocab.json)",
}
DEFAULT_MODEL = "default"  # the spec of the bundled model (no colon, no folder)


def default_model_dir() -> Path:
    """Folder of the bundled default model, in an installed wheel or a source checkout.

    Raises:
        FileNotFoundError: neither place holds it (e.g. a source checkout without
            ``data/models/default``).
    """
    package = Path(__file__).resolve().parents[1]
    places = (package / "default_model", package.parent / "data" / "models" / "default")
    for place in places:
        if (place / "config.json").is_file():
            return place
    raise FileNotFoundError(
        "the bundled default model is missing (looked in "
        f"{', '.join(str(p) for p in places)}); reinstall ctc-biasing or pass a model spec"
    )


@dataclass(frozen=True)
class ModelOutput:
    """What a model returns for one waveform, trimmed to that waveform's own length."""

    logprobs: np.ndarray  # (frames, len(labels)) float32 natural-log probabilities (log_softmax)
    hidden: dict[int, np.ndarray] = field(default_factory=dict)  # layer -> (frames, dim) float32
    # auxiliary CTC head name -> (frames, classes) float32 log-probabilities, e.g. "phones"
    heads: dict[str, np.ndarray] = field(default_factory=dict)
    # (frames, representation_size) float32: what the output layer reads, when asked for
    # (``forward(..., representation=True)``); ``output_layer`` of it gives the logits
    representation: np.ndarray | None = None


class AcousticModel(Protocol):
    """A CTC acoustic model as the decoder and the adapters see it.

    ``labels`` follows pyctcdecode: ``""`` is the CTC blank, ``" "`` the space of character
    vocabularies, and word-start pieces of sentencepiece vocabularies begin with ``"▁"``.
    """

    labels: list[str]  # one entry per output class, pyctcdecode convention
    sample_rate: int  # rate in Hz the waveforms passed to ``forward`` must have
    frame_shift_s: float  # seconds between consecutive output frames
    # Optional, not part of the protocol's required surface: ``fingerprint`` (str), which
    # changes whenever the outputs could (weights, config); caches of model outputs are
    # keyed by it, and a model without one is not cached. ``head_labels`` (name -> labels)
    # for models with auxiliary CTC heads.

    def forward(
        self, waves: Sequence[np.ndarray], layers: Sequence[int] = ()
    ) -> list[ModelOutput]:
        """Run a padded batch under ``torch.inference_mode()``.

        Args:
            waves: float32 mono waveforms in [-1, 1] at ``sample_rate``, each (samples,).
            layers: intermediate layer indices whose outputs go into ``ModelOutput.hidden``
                (meaning of an index is model specific; see the model's docstring).

        Returns:
            one ``ModelOutput`` per input, in order.
        """
        ...


class BiasableModel(AcousticModel, Protocol):
    """An ``AcousticModel`` that the contextual adapter (``biasing.adapters``) can bias: it
    exposes its intermediate layers' sizes, the representation its output layer reads, and
    that output layer, so a changed representation can be put through it.

    ``forward(waves, layers, representation=True)`` fills ``ModelOutput.representation``.
    The output layer must be affine (a linear layer or pointwise convolution), as CTC output
    layers are: then ``log_softmax(logprobs + output_layer(d) - output_layer(0))`` is the
    output for ``representation + d``, and the adapter needs no representation at all.
    """

    representation_size: int  # channels of the representation the output layer reads
    num_layers: int  # valid ``layers`` indices are ``0..num_layers - 1``

    def layer_size(self, layer: int) -> int:
        """Channels of ``hidden[layer]``."""
        ...

    def output_layer(self, representation: torch.Tensor) -> torch.Tensor:
        """(..., representation_size) float32 -> (..., len(labels)) raw logits, on the
        model's device (``self.device``)."""
        ...


def load_model(spec: str, device: str = "cpu") -> AcousticModel:
    """Load an acoustic model from ``KIND:DIR``, or the bundled one from ``"default"``.

    Args:
        spec: ``"default"`` (the bundled model), ``quartznet:DIR`` (config.json +
            weights.npz) or ``hf:DIR`` (a local Hugging Face ``Wav2Vec2ForCTC`` folder); see
            ``MODEL_KINDS``.
        device: ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"``; CUDA must be available.

    Raises:
        ValueError: unknown kind, bad device, or a folder without the expected files.
        FileNotFoundError: the folder does not exist.
    """
    if spec == DEFAULT_MODEL:
        from biasing.models.quartznet import load_quartznet

        return load_quartznet(default_model_dir(), device=device)
    kind, sep, location = spec.partition(":")
    if not sep or kind not in MODEL_KINDS or not location:
        known = ", ".join(f"{name}:DIR ({what})" for name, what in MODEL_KINDS.items())
        raise ValueError(f"unknown model spec {spec!r}; expected {DEFAULT_MODEL!r} (the "
                         f"bundled model) or one of: {known}")
    if kind == "quartznet":
        from biasing.models.quartznet import load_quartznet

        return load_quartznet(location, device=device)
    from biasing.models.hf import load_hf_ctc

    return load_hf_ctc(location, device=device)


def forward_long(
    model: AcousticModel,
    wave: np.ndarray,
    layers: Sequence[int] = (),
    chunk_s: float = 30.0,
    overlap_s: float = 10.0,
    representation: bool = False,
) -> ModelOutput:
    """Run ``model`` on a recording of any length in overlapping chunks.

    Chunks are ``chunk_s`` long and start every ``chunk_s - overlap_s`` seconds, aligned to
    output frames. Of each chunk only the middle is kept: half of the overlap is dropped at
    every border shared with a neighbour, so each kept frame has at least ``overlap_s / 2``
    of context on both sides and memory does not grow with the recording. Recordings no
    longer than one chunk go through ``model.forward`` unchanged.

    Away from chunk borders the result matches ``model.forward`` up to the model's
    sensitivity to distant context: exactly for models whose receptive field is shorter than
    ``overlap_s / 2``; for QuartzNet 15x5 (receptive field of tens of seconds) 30 s chunks
    with 10 s overlap agree with a single pass on about 99.8 % of frames' best label.

    Args:
        model: any ``AcousticModel``.
        wave: (samples,) float32 mono waveform at ``model.sample_rate``.
        layers: intermediate layers to return, stitched like the log-probabilities.
        chunk_s: chunk length in seconds.
        overlap_s: overlap between consecutive chunks in seconds, ``0 <= overlap_s < chunk_s``.
        representation: also return what the output layer reads (a ``BiasableModel``).

    Returns:
        the ``ModelOutput`` of the whole recording; (frames, vocab) log-probabilities.
    """
    if not chunk_s > 0 or not 0 <= overlap_s < chunk_s:
        raise ValueError(
            f"need chunk_s > 0 and 0 <= overlap_s < chunk_s, got chunk_s={chunk_s}, "
            f"overlap_s={overlap_s}"
        )
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise ValueError(f"wave must be 1-D (samples,), got shape {wave.shape}")
    hop = round(model.frame_shift_s * model.sample_rate)  # samples per output frame
    chunk_frames = max(1, round(chunk_s / model.frame_shift_s))
    overlap_frames = round(overlap_s / model.frame_shift_s)
    if overlap_frames >= chunk_frames:
        raise ValueError(f"overlap_s={overlap_s} leaves no step between chunks of {chunk_s} s")
    extra = {"representation": True} if representation else {}
    if len(wave) <= chunk_frames * hop:
        return model.forward([wave], layers, **extra)[0]

    step = chunk_frames - overlap_frames
    drop_left = overlap_frames // 2
    drop_right = overlap_frames - drop_left
    pieces: list[ModelOutput] = []
    start = 0  # first output frame of the chunk, in frames of the whole recording
    while True:
        begin = start * hop
        last = begin + chunk_frames * hop >= len(wave)
        out = model.forward([wave[begin : begin + chunk_frames * hop]], layers, **extra)[0]
        keep_from = 0 if start == 0 else drop_left
        keep_to = len(out.logprobs) if last else chunk_frames - drop_right
        if keep_to > len(out.logprobs):
            raise ValueError(
                f"overlap_s={overlap_s} is too small: a {chunk_s} s chunk gives "
                f"{len(out.logprobs)} frames but {keep_to} are needed"
            )
        pieces.append(
            ModelOutput(
                logprobs=out.logprobs[keep_from:keep_to],
                hidden={k: v[keep_from:keep_to] for k, v in out.hidden.items()},
                heads={k: v[keep_from:keep_to] for k, v in out.heads.items()},
                representation=None if out.representation is None
                else out.representation[keep_from:keep_to],
            )
        )
        if last:
            break
        start += step
    return ModelOutput(
        logprobs=np.concatenate([p.logprobs for p in pieces]),
        hidden={k: np.concatenate([p.hidden[k] for p in pieces]) for k in pieces[0].hidden},
        heads={k: np.concatenate([p.heads[k] for p in pieces]) for k in pieces[0].heads},
        representation=None if pieces[0].representation is None
        else np.concatenate([p.representation for p in pieces]),
    )


def available_cores() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota (a
    container limited to 1.5 CPUs gets 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota)))
    return max(1, cores)


def free_cores(sample_s: float = 0.1) -> int:
    """Cores free for this process now: :func:`available_cores` less what other work keeps
    busy on them, read from ``/proc/stat`` over ``sample_s`` seconds (the load average lags
    by a minute); at least 1. Where ``/proc/stat`` cannot be read, the cores available.

    On a machine other processes keep busy, asking torch for every core makes its threads
    wait on each other: ``benchmarks/threads_under_load.py`` measures it.
    """
    cores = available_cores()
    mine = _affinity()
    before = _cpu_times(mine)
    if before is None:
        return cores
    time.sleep(sample_s)
    after = _cpu_times(mine)
    if after is None:
        return cores
    busy = after[0] - before[0]
    total = after[1] - before[1]
    if total <= 0:
        return cores
    busy_cores = len(mine) * busy / total
    return max(1, min(cores, math.floor(len(mine) - busy_cores + 0.5)))


def _affinity() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return set(range(os.cpu_count() or 1))


def _cpu_times(cpus: set[int]) -> tuple[float, float] | None:
    """(busy, total) jiffies summed over ``cpus`` from ``/proc/stat``; None where unreadable."""
    try:
        with open("/proc/stat") as stream:
            lines = stream.read().splitlines()
    except OSError:
        return None
    busy = total = 0.0
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or int(name[3:] or -1) not in cpus:
            continue
        values = [float(v) for v in rest.split()]
        idle = values[3] + (values[4] if len(values) > 4 else 0.0)  # idle + iowait
        spent = sum(values[:8])  # guest time is already inside user and nice
        busy += spent - idle
        total += spent
    return (busy, total) if total > 0 else None


def _cgroup_cpu_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max`` or v1 ``cfs_quota_us``), None when none."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as stream:
            quota, period = stream.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as stream:
            quota_us = int(stream.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as stream:
            period_us = int(stream.read())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def trim_memory(every_s: float = 1.0) -> None:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``; nothing
    elsewhere), at most once per ``every_s`` seconds. Forward passes over inputs of
    ever-changing shapes leave the heap fragmented, so a long-running process (the server,
    a corpus job) grows by hundreds of MB; trimming after batches keeps it flat."""
    global _LIBC, _TRIMMED
    now = time.monotonic()
    if now - _TRIMMED < every_s:
        return
    _TRIMMED = now
    if _LIBC is None:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("c")
        try:
            _LIBC = ctypes.CDLL(name) if name else False
            if _LIBC and not hasattr(_LIBC, "malloc_trim"):
                _LIBC = False
        except OSError:
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC: Any = None
_TRIMMED = -math.inf  # when trim_memory last ran (time.monotonic)


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads (process wide): ``threads``, or the cores free for this
    process now (:func:`free_cores`: the cores it may use less those other work keeps busy;
    threads that wait for a busy core spin and slow each other). Returns the number set.

    Raises:
        ValueError: ``threads`` is not a positive integer.
    """
    import torch

    if threads is None:
        threads = free_cores()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    torch.set_num_threads(int(threads))
    return int(threads)


def files_fingerprint(kind: str, files: Iterable[Path]) -> str:
    """A short SHA-1 of the names and bytes of the files that define a model."""
    digest = hashlib.sha1(kind.encode())
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:20]


def greedy_labels(logprobs: np.ndarray, labels: Sequence[str]) -> list[str]:
    """Greedy CTC: the best label per frame of (frames, classes) scores, repeats merged and
    blanks (``""``) dropped. Join the result as the labels need (characters, pieces, phones)."""
    best = np.asarray(logprobs).argmax(axis=1)
    keep = np.ones(len(best), dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    return [labels[i] for i in best[keep] if labels[i] != ""]


def _check_layer(layer: object, num_layers: int, what: str) -> None:
    """Raise ValueError unless ``layer`` is an int in ``0..num_layers - 1`` (``what`` names
    the layers in the message: "QuartzNet exposes blocks", "valid hidden states are")."""
    if not isinstance(layer, (int, np.integer)) or isinstance(layer, bool) \
            or not 0 <= layer < num_layers:
        raise ValueError(f"layer {layer!r} out of range: {what} 0..{num_layers - 1}")


def _check_waves(waves: Sequence[np.ndarray], min_samples: int = 1) -> list[np.ndarray]:
    """Validate a batch of mono waveforms and return them as contiguous float32 arrays."""
    if isinstance(waves, np.ndarray) and waves.ndim == 1:
        raise TypeError("waves must be a sequence of 1-D arrays; wrap a single wave in a list")
    checked = []
    for i, wave in enumerate(waves):
        array = np.asarray(wave)
        if array.ndim != 1:
            raise ValueError(f"waves[{i}] must be 1-D (samples,), got shape {array.shape}")
        if len(array) < min_samples:
            raise ValueError(f"waves[{i}] has {len(array)} samples, need at least {min_samples}")
        if not np.issubdtype(array.dtype, np.floating):
            raise TypeError(f"waves[{i}] must hold floats in [-1, 1], got dtype {array.dtype}")
        array = np.ascontiguousarray(array, dtype=np.float32)
        if not np.isfinite(array).all():
            raise ValueError(f"waves[{i}] contains NaN or infinite samples")
        checked.append(array)
    return checked


def _pad_batch(waves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad waveforms with zeros: (batch, max_samples) float32 and (batch,) int64."""
    lengths = np.array([len(w) for w in waves], dtype=np.int64)
    batch = np.zeros((len(waves), int(lengths.max(initial=0))), dtype=np.float32)
    for row, wave in zip(batch, waves):
        row[: len(wave)] = wave
    return batch, lengths


def _torch_device(device: str) -> torch.device:
    """Resolve ``device`` ("cpu", "cuda", "cuda:N") and check that it is usable."""
    import torch

    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}; expected 'cpu', 'cuda' or 'cuda:N'") from err
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}; expected 'cpu', 'cuda' or 'cuda:N'")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} requested but only {torch.cuda.device_count()} GPU(s) exist"
            )
    return resolved
