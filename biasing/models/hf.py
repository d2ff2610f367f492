"""Adapter for local Hugging Face CTC models (``Wav2Vec2ForCTC`` and its relatives).

The folder is what ``save_pretrained`` writes for a model and its processor:
``config.json``, the weights (``model.safetensors`` or ``pytorch_model.bin``),
``preprocessor_config.json`` and the tokenizer files (``vocab.json``,
``tokenizer_config.json``, ...). Nothing is downloaded.

Labels follow pyctcdecode: the pad token (the CTC blank of these models) becomes ``""``,
the word delimiter ``"|"`` becomes ``" "``, ``<unk>`` becomes ``"⁇"``; other tokens keep
their spelling (and case).

Intermediate layers: index ``0`` is the input of the first transformer layer (projected
CNN features plus positional embedding), index ``i >= 1`` the output of transformer layer
``i`` (``hidden_states[i]`` in transformers); valid indices are ``0..num_layers - 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from biasing.models import (
    ModelOutput,
    _check_layer,
    _check_waves,
    _pad_batch,
    _torch_device,
    files_fingerprint,
)

__all__ = ["HuggingFaceCTCModel", "hf_labels", "load_hf_ctc"]

_INSTALL_HINT = "pip install 'ctc-biasing[hf]'"
_EXPECTED = "config.json, model weights, preprocessor_config.json and vocab.json"
_UNK = "⁇"  # pyctcdecode's unknown-token label for character vocabularies


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as err:
        raise ImportError(
            f"Hugging Face models need the transformers package: {_INSTALL_HINT}"
        ) from err
    return transformers


def hf_labels(vocab: dict[str, int], num_classes: int, blank_id: int,
              word_delimiter: str | None = "|", unk_token: str | None = "<unk>") -> list[str]:
    """Map a tokenizer vocabulary to pyctcdecode labels, one per output class.

    Args:
        vocab: token -> id, as ``tokenizer.get_vocab()``.
        num_classes: output classes of the CTC head.
        blank_id: id of the CTC blank (``config.pad_token_id`` for Wav2Vec2ForCTC).
        word_delimiter: token that separates words, mapped to ``" "``.
        unk_token: unknown token, mapped to ``"⁇"``.

    Returns:
        labels: ``num_classes`` strings; ids the vocabulary lacks get ``"<unused_ID>"``.
    """
    if not 0 <= blank_id < num_classes:
        raise ValueError(f"blank id {blank_id} outside the {num_classes} output classes")
    labels = [f"<unused_{i}>" for i in range(num_classes)]
    for token, index in vocab.items():
        if 0 <= index < num_classes:
            labels[index] = token
    for index, token in enumerate(labels):
        if index == blank_id:
            labels[index] = ""
        elif word_delimiter is not None and token == word_delimiter:
            labels[index] = " "
        elif unk_token is not None and token == unk_token:
            labels[index] = _UNK
    if len(set(labels)) != len(labels):
        raise ValueError(f"vocabulary maps two classes to the same label: {labels}")
    return labels


class HuggingFaceCTCModel:
    """A transformers CTC model as an ``AcousticModel``.

    Inputs are normalised by the folder's feature extractor. Models whose feature extractor
    does not return an attention mask (``feat_extract_norm == "group"``, e.g. wav2vec2-base)
    change their output when zero padding is added, so their batches run one input at a time.
    """

    def __init__(self, model: Any, feature_extractor: Any, labels: list[str],
                 device: str = "cpu", fingerprint: str | None = None,
                 folder: Path | None = None) -> None:
        try:
            import torch
        except ImportError as err:
            raise ImportError(f"Hugging Face models need PyTorch: {_INSTALL_HINT}") from err

        self._torch = torch
        self.device = _torch_device(device)
        self.model = model.to(self.device).eval()
        self.feature_extractor = feature_extractor
        config = model.config
        num_classes = int(model.lm_head.out_features)
        if len(labels) != num_classes:
            raise ValueError(f"{len(labels)} labels for a CTC head with {num_classes} classes")
        self.labels = list(labels)
        self.fingerprint = fingerprint  # of the folder's files; None for a model in memory
        self.folder = folder  # the folder it was loaded from (None: made in memory)
        self.sample_rate = int(feature_extractor.sampling_rate)
        self._kernels = [int(k) for k in config.conv_kernel]
        self._strides = [int(s) for s in config.conv_stride]
        self.frame_shift_s = float(np.prod(self._strides)) / self.sample_rate
        self.num_layers = int(config.num_hidden_layers) + 1
        self._batchable = bool(getattr(feature_extractor, "return_attention_mask", False))
        receptive = 1
        hop = 1
        for kernel, stride in zip(self._kernels, self._strides):
            receptive += (kernel - 1) * hop
            hop *= stride
        self.min_samples = receptive  # shortest input giving one output frame

    def output_frames(self, samples: int) -> int:
        """Output frames of the CNN feature encoder for ``samples`` input samples."""
        frames = samples
        for kernel, stride in zip(self._kernels, self._strides):
            frames = (frames - kernel) // stride + 1
        return max(frames, 0)

    @property
    def representation_size(self) -> int:
        """Size of the last hidden state, which ``lm_head`` (the output layer) reads."""
        return int(self.model.lm_head.in_features)

    def layer_size(self, layer: int) -> int:
        """Size of ``hidden[layer]`` (every hidden state has ``hidden_size`` channels)."""
        self._check_layer(layer)
        return int(self.model.config.hidden_size)

    def output_layer(self, representation: Any) -> Any:
        """``lm_head`` on (..., hidden_size) input: (..., len(labels)) raw logits."""
        return self.model.lm_head(representation)

    def _check_layer(self, layer: object) -> None:
        _check_layer(layer, self.num_layers, "valid hidden states are")

    def forward(self, waves: Sequence[np.ndarray], layers: Sequence[int] = (),
                representation: bool = False) -> list[ModelOutput]:
        """Log-probabilities (and hidden states) for a batch of waveforms.

        Args:
            waves: float32 mono waveforms at ``sample_rate``, each (samples,) with at least
                ``min_samples`` samples (400 = 25 ms for wav2vec2).
            layers: hidden-state indices in ``0..num_layers - 1`` (see the module docstring).
            representation: also return the last hidden state, which ``lm_head`` reads.

        Returns:
            per input, ``ModelOutput`` with logprobs (frames, len(labels)) and hidden
            (frames, hidden_size) per layer.
        """
        checked = _check_waves(waves, min_samples=self.min_samples)
        for layer in layers:
            self._check_layer(layer)
        groups = [checked] if self._batchable else [[wave] for wave in checked]
        outputs: list[ModelOutput] = []
        for group in groups:
            if group:
                outputs.extend(self._forward_group(group, sorted({int(k) for k in layers}),
                                                   representation))
        return outputs

    def _forward_group(self, waves: list[np.ndarray], layers: list[int],
                       representation: bool = False) -> list[ModelOutput]:
        torch = self._torch
        inputs = self.feature_extractor(
            waves,
            sampling_rate=self.sample_rate,
            padding=True,
            return_attention_mask=self._batchable,
            return_tensors="np",
        )
        values = torch.from_numpy(np.asarray(inputs["input_values"], dtype=np.float32))
        kwargs: dict[str, Any] = {"output_hidden_states": bool(layers)}
        if self._batchable:
            mask = np.asarray(inputs["attention_mask"], dtype=np.int64)
            kwargs["attention_mask"] = torch.from_numpy(mask).to(self.device)
        with torch.inference_mode():
            # the base model, then lm_head (dropout is off in eval mode): Wav2Vec2ForCTC's
            # own forward, with the representation between the two kept
            out = self.model.base_model(values.to(self.device), **kwargs)
            last = out.last_hidden_state
            logits = self.model.lm_head(last)
            logprobs = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
            hidden = {k: out.hidden_states[k].float().cpu().numpy() for k in layers}
            rep = last.float().cpu().numpy() if representation else None
        _, lengths = _pad_batch(waves)
        results = []
        for i, samples in enumerate(lengths.tolist()):
            frames = self.output_frames(int(samples))
            results.append(
                ModelOutput(
                    logprobs=np.ascontiguousarray(logprobs[i, :frames]),
                    hidden={k: np.ascontiguousarray(v[i, :frames]) for k, v in hidden.items()},
                    representation=None if rep is None else np.ascontiguousarray(rep[i, :frames]),
                )
            )
        return results


def load_hf_ctc(directory: str | Path, device: str = "cpu") -> HuggingFaceCTCModel:
    """Load a local Hugging Face CTC folder without touching the network.

    Raises:
        ImportError: transformers is not installed (``pip install 'ctc-biasing[hf]'``).
        FileNotFoundError: ``directory`` does not exist.
        ValueError: the folder lacks the model, feature extractor or tokenizer files.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Hugging Face model folder {str(folder)!r} does not exist (expected {_EXPECTED})"
        )
    if not (folder / "config.json").is_file():
        raise ValueError(f"{str(folder)!r} has no config.json (expected {_EXPECTED})")
    transformers = _import_transformers()
    # transformers logs (and can warn) while loading; keep the library silent.
    hf_logging = transformers.utils.logging
    previous = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        try:
            model = transformers.AutoModelForCTC.from_pretrained(folder, local_files_only=True)
            extractor = transformers.AutoFeatureExtractor.from_pretrained(
                folder, local_files_only=True
            )
            tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(
                f"cannot load a CTC model from {str(folder)!r} (expected {_EXPECTED}): {err}"
            ) from err
    finally:
        hf_logging.set_verbosity(previous)
        if bars:
            hf_logging.enable_progress_bar()
    if tokenizer is None or not hasattr(tokenizer, "get_vocab"):
        raise ValueError(f"{str(folder)!r} has no usable tokenizer (expected {_EXPECTED})")
    blank = model.config.pad_token_id
    if blank is None:
        blank = tokenizer.pad_token_id
    if blank is None:
        raise ValueError(f"{str(folder)!r}: neither config nor tokenizer names a pad (blank) token")
    labels = hf_labels(
        tokenizer.get_vocab(),
        int(model.lm_head.out_features),
        int(blank),
        word_delimiter=getattr(tokenizer, "word_delimiter_token", "|"),
        unk_token=tokenizer.unk_token,
    )
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != "adapter.npz")
    return HuggingFaceCTCModel(model, extractor, labels, device=device,
                               fingerprint=files_fingerprint("hf", files), folder=folder)
