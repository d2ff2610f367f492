"""QuartzNet (Jasper family) CTC model: our own torch forward pass over a weights.npz.

A model folder holds ``config.json`` (labels, blank index, front-end, and one entry per
convolution in forward order with its stride/padding/dilation/groups) and ``weights.npz``
(``<conv name>.weight`` and, for convolutions with bias, ``<conv name>.bias``; batch norm
already folded in). Convolution names give the structure:

- ``prolog.dw`` -> ``prolog.pw`` -> ReLU (``prolog.dw`` may be strided);
- ``blocks.B.sub.S.dw`` -> ``blocks.B.sub.S.pw`` for S = 0..n-1, ReLU after all but the last
  sub-block, then ``+ blocks.B.residual(block input)`` and ReLU;
- ``epilog.E.dw`` (optional) -> ``epilog.E.pw`` -> ReLU;
- ``head``: pointwise conv to the output classes (raw logits).

Intermediate layers: layer index ``i`` is the output of ``blocks.i`` (after its final
ReLU), shape (frames, channels), at the same frame rate as the log-probabilities. For
QuartzNet 15x5 the valid indices are 0..14.

Auxiliary CTC heads (optional, ``"heads"`` in config.json): a projection of one block's
output to its own classes (``heads.NAME.proj`` weight + bias), optionally after a depthwise
convolution (``"kernel"``, ``heads.NAME.dw``) and a pointwise ReLU layer (``"hidden"``,
``heads.NAME.hidden`` weight + bias). A head with
``"feedback": true`` is self-conditioned (Nozaki & Komatsu, 2021): the softmax of its
logits goes back through ``heads.NAME.back`` (classes -> channels, no bias) and is added to
the block output the next block reads, so later layers see an estimate of earlier outputs.
The bundled default model has self-conditioned CTC heads over 256 sentencepiece units on
blocks 5 and 11 (``ctc_5``, ``ctc_11``) and a phone head on block 11 (``phones``). Their
log-probabilities come back in ``ModelOutput.heads``.

Weights may be stored as int8 with one float32 scale per output channel
(``NAME.weight.int8`` + ``NAME.weight.scale``); they are dequantised on load.

Like NeMo's masked convolutions, frames past an input's length are zeroed before every
convolution with a kernel wider than one, so a padded batch gives the same result as each
input alone.

Speed: each Conv1d runs as a (1, kernel) Conv2d on a channels-last (batch, channels, 1,
frames) tensor. oneDNN's depthwise kernels vectorise across channels in that layout and are
about 40x faster on CPU than a plain depthwise Conv1d with these 33-87 tap kernels, with
identical results.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("QuartzNet models need PyTorch: pip install 'ctc-biasing[torch]'") from err

from biasing.models import ModelOutput, _check_waves, _pad_batch, _torch_device
from biasing.models.frontend import FrontendConfig, LogMelFrontend, frontend_config_from_json

__all__ = [
    "CTCHead",
    "ConvSpec",
    "HeadSpec",
    "NetworkOutput",
    "QuartzNet",
    "QuartzNetModel",
    "load_quartznet",
    "quantize_int8",
]

_EXPECTED_FILES = ("config.json", "weights.npz")
_CONFIG_KEYS = ("sample_rate", "labels", "features", "convolutions")
_NAME = re.compile(
    r"^(?:(prolog)\.(dw|pw)|blocks\.(\d+)\.sub\.(\d+)\.(dw|pw)|blocks\.(\d+)\.(residual)"
    r"|epilog\.(\d+)\.(dw|pw)|(head))$"
)


@dataclass(frozen=True)
class ConvSpec:
    """One Conv1d of the network, as listed in ``config.json``."""

    name: str  # structured name, e.g. "blocks.3.sub.1.dw"
    in_channels: int  # input channels (from the weight shape times groups)
    out_channels: int  # output channels
    kernel_size: int  # taps along time
    stride: int  # time stride
    padding: int  # zeros added on both sides of time
    dilation: int  # spacing between taps
    groups: int  # in_channels for depthwise, 1 for pointwise
    bias: bool  # whether the convolution adds a bias

    def output_length(self, length: int) -> int:
        """Output frames for ``length`` input frames (PyTorch Conv1d arithmetic)."""
        span = self.dilation * (self.kernel_size - 1) + 1
        return (length + 2 * self.padding - span) // self.stride + 1


@dataclass(frozen=True)
class HeadSpec:
    """One auxiliary CTC head, as listed under ``"heads"`` in ``config.json``."""

    name: str  # e.g. "ctc_5" or "phones"; its labels are config["head_labels"][name]
    layer: int  # block whose output the head reads
    classes: int  # output classes, CTC blank included
    feedback: bool  # self-conditioned: its posteriors are added back into the block output
    kernel: int = 1  # > 1: a depthwise convolution over this many frames reads the block first
    hidden: int = 0  # > 0: a pointwise layer of this many ReLU units before the projection


class CTCHead(nn.Module):
    """CTC logits from one block's output, optionally fed back (self-conditioned CTC).

    ``[dw (depthwise, spec.kernel frames)] -> [hidden (pointwise) -> ReLU] -> proj``: the
    bracketed parts exist when ``spec.kernel > 1`` and ``spec.hidden > 0``; the plain head is
    a pointwise projection.
    """

    dw: nn.Conv2d | None
    hidden: nn.Conv2d | None
    back: nn.Conv2d | None

    def __init__(self, channels: int, spec: HeadSpec) -> None:
        super().__init__()
        if spec.kernel < 1 or spec.kernel % 2 == 0 or spec.hidden < 0:
            raise ValueError(f"head {spec.name!r}: kernel {spec.kernel} must be odd and "
                             f"positive, hidden {spec.hidden} not negative")
        self.spec = spec
        self.dw = (nn.Conv2d(channels, channels, (1, spec.kernel), padding=(0, spec.kernel // 2),
                             groups=channels, bias=False) if spec.kernel > 1 else None)
        self.hidden = nn.Conv2d(channels, spec.hidden, 1) if spec.hidden else None
        # A new head's projection starts at zero: uniform posteriors (CTC loss at its chance
        # level rather than confidently wrong) and no feedback, so the network is unchanged.
        self.proj = nn.Conv2d(spec.hidden or channels, spec.classes, 1)
        for param in self.proj.parameters():
            nn.init.zeros_(param)
        self.back = nn.Conv2d(spec.classes, channels, 1, bias=False) if spec.feedback else None
        if self.back is not None:
            nn.init.zeros_(self.back.weight)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, classes, 1, T) for a (B, channels, 1, T) block output.

        ``mask`` (B, 1, 1, T) zeroes padded frames before the depthwise convolution.
        """
        if self.dw is not None:
            x = self.dw(x if mask is None else x * mask)
        if self.hidden is not None:
            x = torch.relu(self.hidden(x))
        return self.proj(x)

    def feedback(self, logits: torch.Tensor) -> torch.Tensor:
        """What self-conditioning adds to the block output: back(softmax(logits))."""
        assert self.back is not None
        return self.back(torch.softmax(logits, dim=1))


class NetworkOutput(NamedTuple):
    """What ``QuartzNet.forward`` returns."""

    logits: torch.Tensor  # (batch, classes, frames) raw logits of the main head
    lengths: torch.Tensor  # (batch,) int64 valid output frames
    hidden: dict[int, torch.Tensor]  # block index -> (batch, channels, frames)
    heads: dict[str, torch.Tensor]  # auxiliary head name -> (batch, classes, frames) logits


class _DwPw(nn.Module):
    """Optional depthwise conv followed by a pointwise conv (one "sub-block")."""

    dw: nn.Conv2d | None
    pw: nn.Conv2d

    def __init__(self, dw: ConvSpec | None, pw: ConvSpec) -> None:
        super().__init__()
        self.dw_spec = dw
        self.dw = _conv(dw) if dw is not None else None
        self.pw = _conv(pw)


class _Block(nn.Module):
    residual: nn.Conv2d

    def __init__(self, subs: list[_DwPw], residual: ConvSpec) -> None:
        super().__init__()
        self.subs = nn.ModuleList(subs)
        self.residual = _conv(residual)

    def sub_blocks(self) -> list[_DwPw]:
        return [sub for sub in self.subs if isinstance(sub, _DwPw)]


def _conv(spec: ConvSpec) -> nn.Conv2d:
    """The Conv1d of ``spec`` as a (1, kernel) Conv2d over (batch, channels, 1, frames)."""
    return nn.Conv2d(
        spec.in_channels,
        spec.out_channels,
        (1, spec.kernel_size),
        stride=(1, spec.stride),
        padding=(0, spec.padding),
        dilation=(1, spec.dilation),
        groups=spec.groups,
        bias=spec.bias,
    )


class QuartzNet(nn.Module):
    """The convolutional network, features in, raw logits (and block outputs) out."""

    prolog: _DwPw
    head: nn.Conv2d

    def __init__(self, specs: Sequence[ConvSpec], heads: Sequence[HeadSpec] = ()) -> None:
        super().__init__()
        by_name = {spec.name: spec for spec in specs}
        if len(by_name) != len(specs):
            raise ValueError("config.json lists a convolution name twice")
        for name in by_name:
            if not _NAME.match(name):
                raise ValueError(f"unexpected convolution name {name!r} in config.json")
        for required in ("prolog.pw", "head"):
            if required not in by_name:
                raise ValueError(f"config.json has no {required!r} convolution")
        self.prolog = _DwPw(by_name.get("prolog.dw"), by_name["prolog.pw"])
        blocks = []
        for b in range(_count(by_name, "blocks.{}.residual")):
            subs = [
                _DwPw(by_name.get(f"blocks.{b}.sub.{s}.dw"), by_name[f"blocks.{b}.sub.{s}.pw"])
                for s in range(_count(by_name, f"blocks.{b}.sub.{{}}.pw"))
            ]
            if not subs:
                raise ValueError(f"blocks.{b} has no sub-blocks in config.json")
            blocks.append(_Block(subs, by_name[f"blocks.{b}.residual"]))
        self.blocks = nn.ModuleList(blocks)
        self.epilog = nn.ModuleList(
            _DwPw(by_name.get(f"epilog.{e}.dw"), by_name[f"epilog.{e}.pw"])
            for e in range(_count(by_name, "epilog.{}.pw"))
        )
        self.head = _conv(by_name["head"])
        unreachable = sorted(set(by_name) - _module_names(self))
        self.heads = nn.ModuleDict()
        for spec in heads:
            if not 0 <= spec.layer < len(blocks) or spec.name in self.heads:
                raise ValueError(f"head {spec.name!r}: layer {spec.layer} is not a block of "
                                 f"0..{len(blocks) - 1}, or the name is used twice")
            self.heads[spec.name] = CTCHead(blocks[spec.layer].residual.out_channels, spec)
        if unreachable:
            raise ValueError(f"convolutions outside the QuartzNet structure: {unreachable}")

    @property
    def num_layers(self) -> int:
        """Number of blocks, i.e. valid layer indices are ``0..num_layers - 1``."""
        return len(self.blocks)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output frames for ``lengths`` feature frames (only ``prolog.dw`` may stride)."""
        spec = self.prolog.dw_spec
        if spec is None:
            return lengths
        span = spec.dilation * (spec.kernel_size - 1) + 1
        return torch.div(lengths + 2 * spec.padding - span, spec.stride, rounding_mode="floor") + 1

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor, layers: Sequence[int] = ()
    ) -> NetworkOutput:
        """Run the network on (batch, n_mels, frames) normalised log-mel features.

        ``lengths`` are the valid feature frames per input; ``layers`` the block indices
        whose outputs (after any self-conditioning feedback) go into ``hidden``. Every
        auxiliary head's logits are returned.
        """
        wanted = set(layers)
        padded = bool((lengths < features.shape[-1]).any())
        x = features.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        x = self._sub(self.prolog, x, _frame_mask(x, lengths) if padded else None)
        out_lengths = self.output_lengths(lengths)
        mask = _frame_mask(x, out_lengths) if padded else None
        x = torch.relu(x)
        hidden: dict[int, torch.Tensor] = {}
        heads: dict[str, torch.Tensor] = {}
        by_layer: dict[int, list[CTCHead]] = {}
        for head in self.heads.values():
            assert isinstance(head, CTCHead)
            by_layer.setdefault(head.spec.layer, []).append(head)
        for index, block in enumerate(self._blocks()):
            x = self.run_block(block, x, mask)
            # heads read the block output; fed-back posteriors reach the following blocks
            block_output = x
            for head in by_layer.get(index, ()):
                logits = head(block_output, mask)
                heads[head.spec.name] = logits.squeeze(2)
                if head.back is not None:
                    x = x + head.feedback(logits)
            if index in wanted:
                hidden[index] = x.squeeze(2)
        for unit in self.epilog:
            assert isinstance(unit, _DwPw)
            x = torch.relu(self._sub(unit, x, mask))
        return NetworkOutput(self.head(x).squeeze(2), out_lengths, hidden, heads)

    def _blocks(self) -> list[_Block]:
        return [block for block in self.blocks if isinstance(block, _Block)]

    @classmethod
    def run_block(cls, block: _Block, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """One block on a (B, channels, 1, T) input: sub-blocks + residual, then ReLU."""
        residual = block.residual(x)
        subs = block.sub_blocks()
        for s, sub in enumerate(subs):
            x = cls._sub(sub, x, mask)
            if s < len(subs) - 1:
                x = torch.relu(x)
        return torch.relu(x + residual)

    @staticmethod
    def _sub(unit: _DwPw, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if unit.dw is not None:
            if mask is not None:
                x = x * mask
            x = unit.dw(x)
        return unit.pw(x)


def _frame_mask(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(batch, 1, 1, frames) 1.0 for frames before each length, 0.0 after."""
    frames = torch.arange(x.shape[-1], device=x.device)
    return (frames[None, :] < lengths[:, None])[:, None, None, :].to(x.dtype)


def _count(by_name: dict[str, ConvSpec], pattern: str) -> int:
    """How many consecutive indices 0, 1, ... have ``pattern.format(i)`` in ``by_name``."""
    n = 0
    while pattern.format(n) in by_name:
        n += 1
    return n


def _module_names(network: QuartzNet) -> set[str]:
    """Structured names of the convolutions ``network`` holds (config.json naming)."""
    names = set()
    for name, module in network.named_modules():
        if isinstance(module, nn.Conv2d):
            names.add(name.replace("subs.", "sub."))
    return names


class QuartzNetModel:
    """QuartzNet as an ``AcousticModel``: front-end + network + labels on one device.

    ``forward(..., layers=(i, ...))`` returns the output of ``blocks.i`` for each ``i``
    (0-based, ``0 <= i < num_layers``) as (frames, channels) float32 arrays.
    """

    def __init__(
        self,
        frontend: LogMelFrontend,
        network: QuartzNet,
        labels: list[str],
        device: str = "cpu",
        head_labels: dict[str, list[str]] | None = None,
        tokenizer_path: Path | None = None,
    ) -> None:
        head_classes = network.head.out_channels
        if len(labels) != head_classes:
            raise ValueError(f"{len(labels)} labels for a head with {head_classes} classes")
        self.device = _torch_device(device)
        self.frontend = frontend.to(self.device).eval()
        # Module.to accepts memory_format at run time; torch's stubs omit it.
        network = network.to(self.device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.network = network.eval()
        self.labels = list(labels)
        self.sample_rate = frontend.config.sample_rate
        stride = network.prolog.dw_spec.stride if network.prolog.dw_spec is not None else 1
        self.frame_shift_s = frontend.config.hop_length * stride / self.sample_rate
        self.num_layers = network.num_layers
        self.head_labels = dict(head_labels or {})  # auxiliary head name -> its labels
        for name, head in network.heads.items():
            assert isinstance(head, CTCHead)
            if len(self.head_labels.get(name, ())) != head.spec.classes:
                raise ValueError(f"head {name!r} has {head.spec.classes} classes but "
                                 f"{len(self.head_labels.get(name, ()))} labels")
        self.tokenizer_path = tokenizer_path  # sentencepiece model behind ``labels``, if any

    def forward(self, waves: Sequence[np.ndarray], layers: Sequence[int] = ()) -> list[ModelOutput]:
        """Log-probabilities (and block outputs) for a batch of waveforms.

        Args:
            waves: float32 mono waveforms in [-1, 1] at ``sample_rate``, each (samples,).
            layers: block indices in ``0..num_layers - 1``.

        Returns:
            per input, ``ModelOutput`` with logprobs (frames, len(labels)) and hidden
            (frames, channels) per layer, frames = ceil(ceil(samples / hop) / stride).
        """
        checked = _check_waves(waves)
        for layer in layers:
            if not isinstance(layer, (int, np.integer)) or not 0 <= layer < self.num_layers:
                raise ValueError(
                    f"layer {layer!r} out of range: QuartzNet exposes blocks 0..{self.num_layers - 1}"
                )
        if not checked:
            return []
        batch, lengths = _pad_batch(checked)
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device)
            n = torch.from_numpy(lengths).to(self.device)
            feats, feat_lengths = self.frontend(x, n)
            logits, out_lengths, hidden, heads = self.network(feats, feat_lengths, layers)
            logprobs = torch.log_softmax(logits.float(), dim=1).transpose(1, 2).cpu().numpy()
            hidden_np = {k: v.transpose(1, 2).float().cpu().numpy() for k, v in hidden.items()}
            heads_np = {k: torch.log_softmax(v.float(), dim=1).transpose(1, 2).cpu().numpy()
                        for k, v in heads.items()}
        outputs = []
        for i, frames in enumerate(out_lengths.tolist()):
            outputs.append(
                ModelOutput(
                    logprobs=np.ascontiguousarray(logprobs[i, :frames]),
                    hidden={int(k): np.ascontiguousarray(v[i, :frames]) for k, v in hidden_np.items()},
                    heads={k: np.ascontiguousarray(v[i, :frames]) for k, v in heads_np.items()},
                )
            )
        return outputs


def _pyctcdecode_labels(labels: Sequence[str], blank_index: int, num_classes: int) -> list[str]:
    """Map a NeMo-style label list (blank not listed) to pyctcdecode's (blank is ``""``)."""
    labels = list(labels)
    if len(labels) == num_classes - 1:
        if blank_index != num_classes - 1 and blank_index != 0:
            raise ValueError(
                f"blank_index {blank_index} must be first or last when labels omit the blank"
            )
        labels.insert(blank_index, "")
    elif len(labels) == num_classes:
        labels[blank_index] = ""
    else:
        raise ValueError(f"{len(labels)} labels do not fit a head with {num_classes} classes")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels contain duplicates: {labels}")
    return labels


def load_quartznet(directory: str | Path, device: str = "cpu") -> QuartzNetModel:
    """Load a QuartzNet folder (``config.json`` + ``weights.npz``).

    Raises:
        FileNotFoundError: ``directory`` does not exist.
        ValueError: a file is missing, or config and weights disagree (names, shapes).
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"QuartzNet folder {str(folder)!r} does not exist (expected {', '.join(_EXPECTED_FILES)})"
        )
    missing = [name for name in _EXPECTED_FILES if not (folder / name).is_file()]
    if missing:
        raise ValueError(
            f"QuartzNet folder {str(folder)!r} lacks {', '.join(missing)} "
            f"(expected {', '.join(_EXPECTED_FILES)})"
        )
    try:
        config = json.loads((folder / "config.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{folder / 'config.json'} is not valid JSON: {err}") from err
    absent = [key for key in _CONFIG_KEYS if key not in config]
    if absent:
        raise ValueError(f"{folder / 'config.json'} lacks {', '.join(absent)}")
    weights = _read_weights(folder / "weights.npz")
    specs = _conv_specs(config, weights)
    network = QuartzNet(specs, _head_specs(config, folder))
    _load_weights(network, weights, folder / "weights.npz")
    frontend = LogMelFrontend(_frontend_config(config))
    labels = _pyctcdecode_labels(
        config["labels"], int(config.get("blank_index", len(config["labels"]))),
        network.head.out_channels,
    )
    tokenizer = None
    if config.get("tokenizer"):
        tokenizer = folder / str(config["tokenizer"])
        if not tokenizer.is_file():
            raise ValueError(f"{folder / 'config.json'} names tokenizer {tokenizer.name!r}, "
                             f"which is not in {str(folder)!r}")
    head_labels = {name: list(labels) for name, labels in config.get("head_labels", {}).items()}
    return QuartzNetModel(frontend, network, labels, device=device, head_labels=head_labels,
                          tokenizer_path=tokenizer)


def _read_weights(path: Path) -> dict[str, np.ndarray]:
    """Arrays of ``weights.npz``, int8 ones (``X.int8`` + ``X.scale``) dequantised to ``X``."""
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


def quantize_int8(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Store every convolution weight as int8 with one float32 scale per output channel.

    Symmetric rounding to 127 levels of each channel's largest magnitude; biases and other
    1-D arrays stay float32. ``load_quartznet`` reads the result back.
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


def _head_specs(config: dict[str, Any], folder: Path) -> list[HeadSpec]:
    heads = []
    for entry in config.get("heads", []):
        try:
            heads.append(HeadSpec(str(entry["name"]), int(entry["layer"]), int(entry["classes"]),
                                  bool(entry.get("feedback", False)),
                                  int(entry.get("kernel", 1)), int(entry.get("hidden", 0))))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{folder / 'config.json'}: bad head entry {entry!r}; expected "
                             "name, layer, classes and optional feedback, kernel, hidden") from err
    return heads


def _frontend_config(config: dict[str, Any]) -> FrontendConfig:
    return frontend_config_from_json(config["features"], int(config["sample_rate"]))


def _conv_specs(config: dict[str, Any], weights: dict[str, np.ndarray]) -> list[ConvSpec]:
    specs = []
    for entry in config.get("convolutions", []):
        name = entry["name"]
        weight = weights.get(f"{name}.weight")
        if weight is None:
            raise ValueError(f"weights.npz has no {name}.weight for convolution {name!r}")
        if weight.ndim != 3 or weight.shape[2] != entry["kernel_size"]:
            raise ValueError(
                f"{name}.weight has shape {weight.shape}, expected (out, in/groups, "
                f"{entry['kernel_size']})"
            )
        specs.append(
            ConvSpec(
                name=name,
                in_channels=int(weight.shape[1]) * int(entry["groups"]),
                out_channels=int(entry["out_channels"]),
                kernel_size=int(entry["kernel_size"]),
                stride=int(entry["stride"]),
                padding=int(entry["padding"]),
                dilation=int(entry["dilation"]),
                groups=int(entry["groups"]),
                bias=bool(entry["bias"]),
            )
        )
    if not specs:
        raise ValueError("config.json lists no convolutions")
    return specs


def _load_weights(network: QuartzNet, weights: dict[str, np.ndarray], source: Path) -> None:
    """Copy ``weights`` into ``network``; every parameter must be present with its shape."""
    state = {}
    for name, param in network.named_parameters():
        key = name.replace("subs.", "sub.")
        if key not in weights:
            raise ValueError(f"{source} has no array {key!r}")
        # Conv1d weights (out, in/groups, kernel) become (out, in/groups, 1, kernel).
        expected = tuple(param.shape) if param.ndim == 1 else tuple(param.shape[:2]) + (
            param.shape[3],
        )
        if tuple(weights[key].shape) != expected:
            raise ValueError(f"{source}: {key!r} has shape {weights[key].shape}, expected {expected}")
        array = np.asarray(weights[key], dtype=np.float32).reshape(param.shape)
        state[name] = torch.from_numpy(array)
    unused = sorted(set(weights) - {n.replace("subs.", "sub.") for n in state})
    if unused:
        raise ValueError(f"{source} holds arrays the config does not use: {unused[:5]}")
    network.load_state_dict(state)
