"""The QuartzNet model folder: read it, write it, and build the network it describes.

A folder holds:

- ``config.json``: ``sample_rate``, ``labels`` (NeMo style: the blank is not listed, or
  listed at ``blank_index``), ``features`` (the log-mel front-end), ``convolutions`` (one
  entry per convolution in forward order: ``name``, ``out_channels``, ``kernel_size``,
  ``stride``, ``padding``, ``dilation``, ``groups``, ``bias``), and optionally ``heads``
  (auxiliary CTC heads: ``name``, ``layer``, ``classes``, ``feedback``, ``kernel``,
  ``hidden``), ``head_labels`` (their labels, blank ``""`` included) and ``tokenizer`` (the
  sentencepiece model behind ``labels``, a file in the folder);
- ``weights.npz``: ``<name>.weight`` (out, in/groups, kernel) and ``<name>.bias`` of every
  convolution (batch norm already folded in) and ``heads.<head>.<part>.weight|bias``;
  float32, or int8 with one float32 scale per output channel (``<name>.weight.int8`` +
  ``<name>.weight.scale``), dequantised on reading.

Array names are the network's module names (see :mod:`.network`), so
``build_network(config, weights)`` and ``network_arrays(network)`` are inverses.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from biasing.models.frontend import FrontendConfig, frontend_config_from_json
from biasing.models.quartznet.network import ConvSpec, HeadSpec, QuartzNet
from biasing.paths import atomic_write, copy_atomic, write_text_atomic
from biasing.readers import check_file, read_text

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "QuartzNetFolder", "build_network", "conv_specs",
           "frontend_config", "head_specs", "network_arrays", "quantize_int8", "read_folder",
           "read_weights", "write_folder"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.npz"
_CONFIG_KEYS = ("sample_rate", "labels", "features", "convolutions")


@dataclass(frozen=True)
class QuartzNetFolder:
    """A model folder as read from disk."""

    path: Path  # the folder
    config: dict[str, Any]  # config.json
    weights: dict[str, np.ndarray]  # weights.npz, int8 arrays dequantised to float32

    @property
    def tokenizer_path(self) -> Path | None:
        """The sentencepiece model the config names for ``labels``, if any."""
        name = self.config.get("tokenizer")
        return self.path / str(name) if name else None


def read_folder(directory: str | Path) -> QuartzNetFolder:
    """Read and check a model folder (files present, JSON valid, required keys).

    Raises:
        FileNotFoundError: ``directory`` does not exist.
        ValueError: a file is missing or unreadable, or the config lacks a required key or
            names a tokenizer that is not in the folder.
    """
    folder = Path(directory)
    expected = f"expected {CONFIG_FILE}, {WEIGHTS_FILE}"
    if not folder.is_dir():
        raise FileNotFoundError(f"QuartzNet folder {str(folder)!r} does not exist ({expected})")
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE) if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"QuartzNet folder {str(folder)!r} lacks {', '.join(missing)} "
                         f"({expected})")
    config_path = folder / CONFIG_FILE
    try:
        config = json.loads(read_text(config_path, "model config"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_path}:{err.lineno}: not valid JSON: {err.msg}") from None
    if not isinstance(config, dict):  # the file's content is wrong, not an argument's type
        raise ValueError(f"{config_path} must hold a JSON object")  # noqa: TRY004
    absent = [key for key in _CONFIG_KEYS if key not in config]
    if absent:
        raise ValueError(f"{config_path} lacks {', '.join(absent)}")
    result = QuartzNetFolder(folder, config, read_weights(folder / WEIGHTS_FILE))
    tokenizer = result.tokenizer_path
    if tokenizer is not None and not tokenizer.is_file():
        raise ValueError(f"{config_path} names tokenizer {tokenizer.name!r}, which is not in "
                         f"{str(folder)!r}")
    return result


def write_folder(directory: str | Path, config: Mapping[str, Any],
                 weights: Mapping[str, np.ndarray], *, int8: bool = True,
                 files: Mapping[str, Path] | None = None) -> Path:
    """Write a model folder that :func:`read_folder` reads back.

    Args:
        directory: the folder (created).
        config: config.json content.
        weights: float arrays by name (Conv1d shapes); stored int8 with per-channel scales
            when ``int8`` (see :func:`quantize_int8`), else float32.
        files: extra files to copy in, by their name in the folder (``tokenizer.model``).
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    stored = quantize_int8(weights) if int8 else {
        k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
    with atomic_write(folder / WEIGHTS_FILE) as stream:
        np.savez_compressed(stream, **stored)
    write_text_atomic(folder / CONFIG_FILE, json.dumps(config, indent=1) + "\n")
    for name, source in (files or {}).items():
        copy_atomic(source, folder / name)
    return folder


def read_weights(path: str | Path) -> dict[str, np.ndarray]:
    """Arrays of a ``weights.npz``, int8 ones (``X.int8`` + ``X.scale``) dequantised to ``X``.

    Raises:
        ValueError: the file is not a readable ``.npz``, or an int8 array has no scale.
    """
    check_file(path, "model weights")
    try:
        with np.load(path) as archive:
            weights = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"cannot read {path}: {err}") from err
    for name in [n for n in weights if n.endswith(".int8")]:
        base = name[: -len(".int8")]
        scale = weights.pop(base + ".scale", None)
        if scale is None:
            raise ValueError(f"{path}: {name!r} has no {base + '.scale'!r}")
        values = weights.pop(name)
        weights[base] = values.astype(np.float32) * scale.reshape(-1, *([1] * (values.ndim - 1)))
    return weights


def quantize_int8(weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Store every convolution weight as int8 with one float32 scale per output channel.

    Symmetric rounding to 127 levels of each channel's largest magnitude; biases and other
    1-D arrays stay float32. :func:`read_weights` reads the result back.
    """
    out: dict[str, np.ndarray] = {}
    for name, array in weights.items():
        array = np.asarray(array, dtype=np.float32)
        if array.ndim < 2:
            out[name] = array
            continue
        peak = np.abs(array).reshape(len(array), -1).max(axis=1)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        shape = (-1,) + (1,) * (array.ndim - 1)
        out[name + ".int8"] = np.clip(np.rint(array / scale.reshape(shape)), -127, 127
                                      ).astype(np.int8)
        out[name + ".scale"] = scale
    return out


def frontend_config(config: Mapping[str, Any]) -> FrontendConfig:
    """The log-mel front-end a config describes."""
    return frontend_config_from_json(config["features"], int(config["sample_rate"]))


def conv_specs(config: Mapping[str, Any], weights: Mapping[str, np.ndarray]) -> list[ConvSpec]:
    """The convolutions of a config, input channels taken from the weight shapes.

    Raises:
        ValueError: a convolution without its weight, a weight of the wrong shape, a bad
            entry, or no convolutions at all.
    """
    specs = []
    for entry in config.get("convolutions", []):
        try:
            name = str(entry["name"])
            kernel, groups = int(entry["kernel_size"]), int(entry["groups"])
            weight = weights.get(f"{name}.weight")
            if weight is None:
                raise ValueError(f"weights.npz has no {name}.weight for convolution {name!r}")
            if weight.ndim != 3 or weight.shape[2] != kernel:
                raise ValueError(f"{name}.weight has shape {weight.shape}, expected (out, "
                                 f"in/groups, {kernel})")
            spec = ConvSpec(
                name=name, in_channels=int(weight.shape[1]) * groups,
                out_channels=int(entry["out_channels"]), kernel_size=kernel,
                stride=int(entry["stride"]), padding=int(entry["padding"]),
                dilation=int(entry["dilation"]), groups=groups, bias=bool(entry["bias"]))
            if min(spec.out_channels, spec.kernel_size, spec.stride, spec.dilation,
                   spec.groups) < 1 or spec.padding < 0 or spec.out_channels % groups:
                raise ValueError(f"config.json: convolution {name!r}: out_channels, "
                                 "kernel_size, stride, dilation and groups must be >= 1, "
                                 "padding >= 0, and groups must divide out_channels; got "
                                 f"{entry!r}")
            specs.append(spec)
        except (KeyError, TypeError) as err:
            raise ValueError(f"config.json: bad convolution entry {entry!r}: missing or "
                             f"malformed {err}") from err
    if not specs:
        raise ValueError("config.json lists no convolutions")
    return specs


def head_specs(config: Mapping[str, Any]) -> list[HeadSpec]:
    """The auxiliary CTC heads of a config (``"heads"``; none when absent)."""
    heads = []
    for entry in config.get("heads", []):
        try:
            heads.append(HeadSpec(str(entry["name"]), int(entry["layer"]), int(entry["classes"]),
                                  bool(entry.get("feedback", False)),
                                  int(entry.get("kernel", 1)), int(entry.get("hidden", 0))))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"config.json: bad head entry {entry!r}; expected name, layer, "
                             "classes and optional feedback, kernel, hidden") from err
    return heads


def build_network(config: Mapping[str, Any], weights: Mapping[str, np.ndarray], *,
                  heads: bool = True, strict: bool = True, source: str = WEIGHTS_FILE,
                  ) -> QuartzNet:
    """The network a config describes, with ``weights`` loaded.

    Args:
        config: config.json content.
        weights: arrays by name (as :func:`read_weights` returns them).
        heads: build the config's auxiliary heads too.
        strict: every parameter must be in ``weights`` and every array used; with False,
            parameters without an array keep their initial values (new heads start at zero)
            and arrays the network has no place for are ignored.
        source: what ``weights`` came from, for error messages.

    Raises:
        ValueError: the config and the weights disagree (names, shapes).
    """
    try:
        network = QuartzNet(conv_specs(config, weights), head_specs(config) if heads else ())
    except RuntimeError as err:  # shapes torch cannot build
        raise ValueError(f"config.json describes a network torch cannot build: {err}") \
            from None
    state = network.state_dict()
    for name, param in state.items():
        if name not in weights:
            if strict:
                raise ValueError(f"{source} has no array {name!r}")
            continue
        # Conv1d weights (out, in/groups, kernel) become (out, in/groups, 1, kernel).
        expected = tuple(param.shape) if param.ndim == 1 else (
            *param.shape[:2], param.shape[3])
        if tuple(weights[name].shape) != expected:
            raise ValueError(f"{source}: {name!r} has shape {weights[name].shape}, "
                             f"expected {expected}")
        state[name] = torch.from_numpy(
            np.asarray(weights[name], dtype=np.float32).reshape(param.shape))
    unused = sorted(set(weights) - set(state))
    if strict and unused:
        raise ValueError(f"{source} holds arrays the config does not use: {unused[:5]}")
    network.load_state_dict(state)
    return network


def network_arrays(source: torch.nn.Module | Mapping[str, torch.Tensor], prefix: str = "",
                   ) -> dict[str, np.ndarray]:
    """Parameters of a module (or the tensors of a ``state_dict``) as float32 arrays under
    their ``weights.npz`` names.

    Conv2d weights (out, in, 1, kernel) become Conv1d shapes (out, in, kernel). ``prefix``
    is put before every name (``"blocks.6."`` for a block taken out of its network).
    """
    tensors = (dict(source.named_parameters()) if isinstance(source, torch.nn.Module)
               else source)
    out = {}
    for name, tensor in tensors.items():
        array = tensor.detach().float().cpu().numpy()
        out[prefix + name] = array[:, :, 0, :] if array.ndim == 4 else array
    return out
