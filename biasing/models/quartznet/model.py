"""``QuartzNetModel``: a QuartzNet folder as an ``AcousticModel`` (front-end + network).

>>> model = load_quartznet("../shared/models/quartznet15x5")          # doctest: +SKIP
>>> model.forward([wave], layers=(5, 11))[0].hidden[5].shape          # doctest: +SKIP
(frames, 256)

The folder format is described in :mod:`.folder`, the network in :mod:`.network`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from biasing.models import (
    ModelOutput,
    _check_layer,
    _check_waves,
    _pad_batch,
    _torch_device,
    files_fingerprint,
)
from biasing.models.frontend import LogMelFrontend
from biasing.models.quartznet.folder import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    build_network,
    frontend_config,
    read_folder,
)
from biasing.models.quartznet.network import CTCHead, QuartzNet

__all__ = ["QuartzNetModel", "load_quartznet"]


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
        fingerprint: str | None = None,
        folder: Path | None = None,
        head_tokenizer_path: Path | None = None,
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
        self.folder = folder  # the model folder it was loaded from (None: built in memory)
        # sentencepiece model of the auxiliary heads' pieces, if any
        self.head_tokenizer_path = head_tokenizer_path
        # identifies the weights and configuration (caches of model outputs are keyed by it)
        self.fingerprint = fingerprint or _network_fingerprint(network, self.labels)

    @property
    def representation_size(self) -> int:
        """Channels of the epilog output, which the output layer (``head``) reads."""
        return int(self.network.head.in_channels)

    def layer_size(self, layer: int) -> int:
        """Channels of block ``layer``'s output (``hidden[layer]``)."""
        self._check_layer(layer)
        return int(self.network.blocks[layer].residual.out_channels)  # type: ignore[union-attr,arg-type]

    def output_layer(self, representation: torch.Tensor) -> torch.Tensor:
        """The output layer (``head``, a pointwise convolution) on (..., channels) input:
        (..., len(labels)) raw logits."""
        head = self.network.head
        weight = head.weight.reshape(head.out_channels, head.in_channels)
        return torch.nn.functional.linear(representation, weight, head.bias)

    def head_posteriors(self, waves: Sequence[np.ndarray], head: str) -> list[np.ndarray]:
        """(frames, classes) log-probabilities of the auxiliary head ``head`` for a batch of
        waveforms, running the network only up to the block the head reads.

        Raises:
            ValueError: the model has no head ``head`` (the message lists its heads).
        """
        if head not in self.network.heads:
            raise ValueError(f"model {self.fingerprint} has no {head!r} head; it has "
                             f"{sorted(self.network.heads) or 'none'}")
        found = self.network.heads[head]
        assert isinstance(found, CTCHead)
        checked = _check_waves(waves)
        if not checked:
            return []
        with torch.inference_mode():
            feats, feat_lengths = self._features(checked)
            out = self.network(feats, feat_lengths, until=found.spec.layer)
            logprobs = torch.log_softmax(out.heads[head].float(), dim=1).transpose(1, 2)
            logprobs_np = logprobs.cpu().numpy()
        return [np.ascontiguousarray(logprobs_np[i, :frames])
                for i, frames in enumerate(out.lengths.tolist())]

    def _features(self, waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """The padded batch's features and their lengths, on the model's device."""
        batch, lengths = _pad_batch(waves)
        x = torch.from_numpy(batch).to(self.device)
        n = torch.from_numpy(lengths).to(self.device)
        return self.frontend(x, n)

    def _check_layer(self, layer: object) -> None:
        _check_layer(layer, self.num_layers, "QuartzNet exposes blocks")

    def forward(self, waves: Sequence[np.ndarray], layers: Sequence[int] = (),
                representation: bool = False) -> list[ModelOutput]:
        """Log-probabilities (and block outputs) for a batch of waveforms.

        Args:
            waves: float32 mono waveforms in [-1, 1] at ``sample_rate``, each (samples,).
            layers: block indices in ``0..num_layers - 1``.
            representation: also return the epilog output the output layer reads.

        Returns:
            per input, ``ModelOutput`` with logprobs (frames, len(labels)) and hidden
            (frames, channels) per layer, frames = ceil(ceil(samples / hop) / stride).
        """
        checked = _check_waves(waves)
        for layer in layers:
            self._check_layer(layer)
        if not checked:
            return []
        with torch.inference_mode():
            feats, feat_lengths = self._features(checked)
            logits, out_lengths, hidden, heads, rep = self.network(feats, feat_lengths, layers)
            rep_np = rep.squeeze(2).transpose(1, 2).float().cpu().numpy() if representation \
                else None
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
                    representation=None if rep_np is None
                    else np.ascontiguousarray(rep_np[i, :frames]),
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
    """Load a QuartzNet folder (``config.json`` + ``weights.npz``, see :mod:`.folder`).

    Raises:
        FileNotFoundError: ``directory`` does not exist.
        ValueError: a file is missing, or config and weights disagree (names, shapes).
    """
    folder = read_folder(directory)
    config = folder.config
    network = build_network(config, folder.weights, source=str(folder.path / WEIGHTS_FILE))
    labels = _pyctcdecode_labels(
        config["labels"], int(config.get("blank_index", len(config["labels"]))),
        network.head.out_channels,
    )
    head_labels = {name: list(labels) for name, labels in config.get("head_labels", {}).items()}
    files = [folder.path / CONFIG_FILE, folder.path / WEIGHTS_FILE]
    head_tokenizer = folder.path / str(config["head_tokenizer"]) \
        if config.get("head_tokenizer") else None
    if head_tokenizer is not None and not head_tokenizer.is_file():
        raise ValueError(f"{folder.path / CONFIG_FILE} names head_tokenizer "
                         f"{head_tokenizer.name!r}, which is not in {str(folder.path)!r}")
    if folder.tokenizer_path is not None:
        files.append(folder.tokenizer_path)
    return QuartzNetModel(LogMelFrontend(frontend_config(config)), network, labels,
                          device=device, head_labels=head_labels,
                          tokenizer_path=folder.tokenizer_path,
                          fingerprint=files_fingerprint("quartznet", files),
                          folder=folder.path, head_tokenizer_path=head_tokenizer)


def _network_fingerprint(network: QuartzNet, labels: Sequence[str]) -> str:
    """SHA-1 of the parameters and labels of a network built in memory."""
    digest = hashlib.sha1("\n".join(labels).encode())
    for name, tensor in network.state_dict().items():
        digest.update(name.encode() + tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:20]
