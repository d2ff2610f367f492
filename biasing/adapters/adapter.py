"""A trained contextual adapter bound to its model: file format, checks, and inference.

>>> model = load_model("default")                                   # doctest: +SKIP
>>> adapter = load_adapter(default_adapter_path(), model)           # doctest: +SKIP
>>> out = model.forward([wave], layers=adapter.layers)[0]           # doctest: +SKIP
>>> biased = adapter.bias(out, ["Zelenskyy", "Fremont"])            # doctest: +SKIP
>>> biased.logprobs.shape, biased.attention.shape  # (T, V), (T, 1 + 2)  # doctest: +SKIP

The file (``adapter.npz``) holds ``config.json`` (an :class:`AdapterConfig` as UTF-8 JSON
bytes), the weights (int8 with a float32 scale per row for matrices, as the model folder
stores them, or float32) and, for ``pieces`` units, the sentencepiece model. Because a CTC
output layer is affine, the adapter never needs the representation itself: it adds
``output_layer(shift) - output_layer(0)`` to the model's log-probabilities and normalises
again, which is exactly the output for ``representation + shift``.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..decoders.lists import ListCache
from ..decoders.spotting import SpotOptions, UnitTrie, spot
from ..entities import EntityInput, EntityList, as_entity_list
from ..models import ModelOutput
from ..paths import atomic_write
from ..readers import check_file
from .network import AdapterConfig, ContextualAdapter
from .units import UnitSpeller

__all__ = ["ADAPTER_FILE", "Adapter", "AdapterOutput", "default_adapter_path",
           "folder_adapter_path", "head_unit_map",
           "head_units", "labels_sha1", "load_adapter", "read_adapter", "save_adapter"]

ADAPTER_FILE = "adapter.npz"  # its name inside a model folder
OUTPUT = "output"  # ``AdapterConfig.spot_head`` for the model's own output
_CONFIG = "config.json"
_PIECES = "sentencepiece.model"
_ENCODE_CHUNK = 4096  # entities encoded at once
# the spotter behind the attention gate: generous, since the adapter learns how much to
# trust a spot from its score (a name misheard in one or two units still counts)
SPOT_OPTIONS = SpotOptions(unit_bonus=1.0, max_cost=8.0, blank_gate=0.95, floor=6.0)


def default_adapter_path() -> Path | None:
    """The bundled model's adapter, or None when the bundled model has none."""
    from ..models import default_model_dir

    path = default_model_dir() / ADAPTER_FILE
    return path if path.is_file() else None


def folder_adapter_path(model: Any) -> Path | None:
    """The ``adapter.npz`` in the folder ``model`` was loaded from, or None (no folder, or
    no adapter in it)."""
    folder = getattr(model, "folder", None)
    path = None if folder is None else Path(folder) / ADAPTER_FILE
    return path if path is not None and path.is_file() else None


def labels_sha1(labels: Sequence[str]) -> str:
    """What an adapter file records of the labels of the model it was trained on."""
    return hashlib.sha1("\n".join(labels).encode()).hexdigest()


def head_unit_map(labels: Sequence[str], speller: UnitSpeller) -> np.ndarray:
    """(classes,) int64: the unit id of each of a CTC head's labels, -1 for its blank."""
    return np.array([-1 if label == "" else speller.unit_of_label(label) for label in labels],
                    dtype=np.int64)


def head_units(logprobs: torch.Tensor, index: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """A head's (..., classes) log-probabilities as (..., vocab_size) probabilities of the
    adapter's units (blank left out; labels on one unit added)."""
    keep = index >= 0
    probs = logprobs[..., keep].float().exp()
    out = torch.zeros(*probs.shape[:-1], vocab_size, dtype=probs.dtype, device=probs.device)
    return out.index_add_(out.dim() - 1, index[keep], probs)


def label_bags(texts: Sequence[str], labels: Sequence[str], tokenizer: Any = None,
               ) -> np.ndarray:
    """(N, len(labels)) float32: how often each output label spells each text, as a
    fraction (blank and word separators left out; all zero when the labels cannot spell
    it)."""
    from ..entities import normalize_entity
    from ..tokenizer import make_tokenizer

    spell = make_tokenizer(list(labels), tokenizer)
    skip = [i for i, label in enumerate(labels) if label in ("", " ")]
    out = np.zeros((len(texts), len(labels)), np.float32)
    for row, text in zip(out, texts):
        norm, offending = normalize_entity(text, spell.inventory)
        spelt = spell.segmentations(norm) if norm and not offending else []
        if spelt:
            np.add.at(row, spelt[0], 1.0)
            row[skip] = 0.0
            row /= max(row.sum(), 1.0)
    return out


def spot_sequences(texts: Sequence[str], speller: UnitSpeller,
                   head_labels: Sequence[str]) -> UnitTrie:
    """A trie of ``texts`` spelt with the units and written in the head's classes (keys:
    the text's index); units the head lacks are left out of the spelling."""
    to_class = {int(u): c for c, u in enumerate(head_unit_map(head_labels, speller)) if u > 1}
    sequences = []
    for key, text in enumerate(texts):
        classes = [to_class[u] for u in speller.spell(text) if u in to_class]
        if classes:
            sequences.append((key, classes))
    return UnitTrie(sequences)


def output_sequences(texts: Sequence[str], labels: Sequence[str], tokenizer: Any = None,
                     ) -> UnitTrie:
    """A trie of ``texts`` spelt with the model's output labels (keys: the text's index);
    texts the labels cannot spell are left out."""
    from ..entities import normalize_entity
    from ..tokenizer import make_tokenizer

    spell = make_tokenizer(list(labels), tokenizer)
    sequences = []
    for key, text in enumerate(texts):
        norm, offending = normalize_entity(text, spell.inventory)
        spelt = spell.segmentations(norm) if norm and not offending else []
        if spelt:
            sequences.append((key, spelt[0]))
    return UnitTrie(sequences)


def spot_scores(logprobs: np.ndarray, blank: int, trie: UnitTrie, entities: int,
                margin: int) -> np.ndarray:
    """(frames, entities) float32: the best spot score per unit of each entity over the
    frames of its spots widened by ``margin`` each side; -inf where it was not spotted."""
    frames = len(logprobs)
    out = np.full((frames, entities), -np.inf, np.float32)
    for found in spot(logprobs, blank, trie, SPOT_OPTIONS):
        first, last = max(0, found.start - margin), min(frames, found.end + margin)
        column = out[first:last, found.key]
        np.maximum(column, found.score / max(1, len(found.units)), out=column)
    return out


@dataclass(frozen=True)
class AdapterOutput:
    """The model output biased toward a list."""

    logprobs: np.ndarray  # (frames, len(labels)) float32 log-probabilities, biased
    attention: np.ndarray | None  # (frames, 1 + N): column 0 <no-bias>, then the entities;
    # None for an empty list (the adapter did not run)
    entities: tuple[str, ...]  # the entities of columns 1..N, as listed


def save_adapter(path: str | Path, module: ContextualAdapter,
                 sentencepiece_model: bytes | None = None, *, int8: bool = True) -> Path:
    """Write ``module`` (and the sentencepiece model its ``pieces`` units need) to ``path``,
    atomically: an interrupted write never leaves a half-written file."""
    from ..models.quartznet.folder import quantize_int8

    weights = {k: v.detach().float().cpu().numpy() for k, v in module.state_dict().items()}
    stored = quantize_int8(weights) if int8 else weights
    stored[_CONFIG] = np.frombuffer(json.dumps(module.config.to_json()).encode(), np.uint8)
    if sentencepiece_model:
        stored[_PIECES] = np.frombuffer(sentencepiece_model, np.uint8)
    path = Path(path)
    with atomic_write(path) as stream:
        np.savez_compressed(stream, **stored)
    return path


def read_adapter(path: str | Path) -> tuple[ContextualAdapter, bytes | None]:
    """The module stored at ``path`` and its sentencepiece model (None for characters).

    Raises:
        FileNotFoundError / ValueError: the file is missing, not an adapter file, or its
            weights do not fit its config.
    """
    from ..models.quartznet.folder import read_weights

    check_file(path, "adapter file")
    try:
        with np.load(path) as archive:
            raw = archive[_CONFIG].tobytes() if _CONFIG in archive.files else None
            pieces = archive[_PIECES].tobytes() if _PIECES in archive.files else None
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"cannot read adapter file {path}: {err}") from err
    if raw is None:
        raise ValueError(f"{path} is not an adapter file (it has no {_CONFIG})")
    try:
        config = AdapterConfig.from_json(json.loads(raw))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"adapter file {path} has a bad {_CONFIG}: {err}") from err
    weights = {k: v for k, v in read_weights(path).items() if k not in (_CONFIG, _PIECES)}
    module = ContextualAdapter(config)
    state = module.state_dict()
    missing = sorted(set(state) - set(weights))
    extra = sorted(set(weights) - set(state))
    if missing or extra:
        raise ValueError(f"adapter file {path} does not fit its config: missing {missing[:3]}, "
                         f"unexpected {extra[:3]}")
    for name, tensor in state.items():
        if tuple(weights[name].shape) != tuple(tensor.shape):
            raise ValueError(f"adapter file {path}: {name!r} has shape {weights[name].shape}, "
                             f"its config needs {tuple(tensor.shape)}")
        state[name] = torch.from_numpy(np.asarray(weights[name], dtype=np.float32))
    module.load_state_dict(state)
    return module.eval(), pieces


def load_adapter(path: str | Path, model: Any) -> Adapter:
    """Read the adapter at ``path`` and bind it to ``model`` (see :class:`Adapter`)."""
    module, pieces = read_adapter(path)
    return Adapter(module, model, pieces, source=str(path))


class Adapter:
    """A :class:`ContextualAdapter` bound to a model: biases that model's outputs.

    Args:
        module: the adapter (trained or not).
        model: a ``biasing.models.BiasableModel`` with the labels, layers and output
            layer the adapter was made for.
        sentencepiece_model: the units' model, for ``pieces`` units.
        source: where the adapter came from, for messages.

    ``lists`` (attribute) is the :class:`~biasing.decoders.ListCache` where each entity
    list's vectors and spot trie are kept: the adapter's own, or the one of the transcriber
    it serves (shared with its decoder).

    Raises:
        ValueError: the model does not expose what the adapter needs, or does not match it
            (labels, layer sizes, representation size); the message names both.
    """

    def __init__(self, module: ContextualAdapter, model: Any,
                 sentencepiece_model: bytes | None = None, source: str = "adapter") -> None:
        config = module.config
        name = getattr(model, "fingerprint", None) or type(model).__name__
        needs = ("layer_size", "output_layer", "representation_size")
        lacking = [n for n in needs if not hasattr(model, n)]
        if lacking:
            raise ValueError(f"{source} needs a model that exposes its layers and output layer "
                             f"({', '.join(needs)}); model {name} lacks {', '.join(lacking)}")
        problems = []
        if config.num_labels != len(model.labels) or (
                config.labels_sha1 and config.labels_sha1 != labels_sha1(model.labels)):
            problems.append(f"labels: adapter {config.num_labels} (sha1 "
                            f"{config.labels_sha1[:10] or '?'}), model {len(model.labels)} "
                            f"(sha1 {labels_sha1(model.labels)[:10]})")
        if config.representation_size != model.representation_size:
            problems.append(f"representation size: adapter {config.representation_size}, "
                            f"model {model.representation_size}")
        for layer, size in zip(config.layers, config.layer_sizes):
            try:
                actual = model.layer_size(layer)
            except ValueError as err:
                problems.append(f"layer {layer}: {err}")
                continue
            if actual != size:
                problems.append(f"layer {layer} size: adapter {size}, model {actual}")
        head_labels = getattr(model, "head_labels", {}) or {}
        for head in dict.fromkeys((*config.query_heads, *([config.spot_head] if
                                                          config.spot_head not in (None, OUTPUT)
                                                          else []))):
            if head not in head_labels:
                problems.append(f"head {head!r}: the adapter reads it, the model has "
                                f"{sorted(head_labels) or 'no heads'}")
        if problems:
            raise ValueError(f"{source} does not match model {name}: " + "; ".join(problems))
        self.module = module.eval().float().cpu()
        self.config = config
        self.layers = tuple(config.layers)
        self.source = source
        self.speller = UnitSpeller(config.units, sentencepiece_model)
        self.sentencepiece_model = sentencepiece_model
        self.heads = tuple(dict.fromkeys((*config.query_heads, *([config.spot_head] if
                                                              config.spot_head not in
                                                              (None, OUTPUT) else []))))
        self._head_index = {h: torch.from_numpy(head_unit_map(head_labels[h], self.speller))
                            for h in config.query_heads}
        self._spot_labels = [] if not config.spot_head else list(model.labels) \
            if config.spot_head == OUTPUT else list(head_labels[config.spot_head])
        self._labels = list(model.labels)
        self._tokenizer = getattr(model, "tokenizer_path", None)
        self._shift = _output_shift(module.out.weight, model, source)  # (mlp_dim, V)
        self._bag_shift = _output_shift(module.bag_out.weight, model, source) \
            if config.label_bag else None  # (V, V)
        self.lists = ListCache()  # per list: entity vectors and the spotting trie, if any
        self._owner = object()  # marks this adapter's entries in a shared cache

    def vectors(self, entities: EntityInput) -> torch.Tensor:
        """(N, vector_size) vectors of the list's N entities, computed once per list and
        kept in :attr:`lists`."""
        return self._prepared(as_entity_list(entities))[0]

    def _prepared(self, entities: EntityList) -> tuple[torch.Tensor, UnitTrie | None]:
        bundle = self.lists.get(entities)
        found = bundle.adapter
        if found is None or found[0] is not self._owner:
            found = bundle.adapter = (self._owner, *self._encode([e.text for e in entities]))
        return found[1], found[2]

    def _encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, UnitTrie | None]:
        """Entity vectors and the spotting trie of ``texts``."""
        parts = []
        with torch.inference_mode():
            for start in range(0, len(texts), _ENCODE_CHUNK):
                chunk = texts[start:start + _ENCODE_CHUNK]
                ids, lengths = self.speller.batch(chunk)
                bags = torch.from_numpy(label_bags(chunk, self._labels, self._tokenizer)) \
                    if self.config.label_bag else None
                parts.append(self.module.encode(torch.from_numpy(ids),
                                                torch.from_numpy(lengths), bags))
        vectors = torch.cat(parts) if parts else torch.zeros(0, self.module.vector_size)
        trie = None
        if self.config.spot_head == OUTPUT:
            trie = output_sequences(texts, self._labels, self._tokenizer)
        elif self._spot_labels:
            trie = spot_sequences(texts, self.speller, self._spot_labels)
        return vectors, trie

    def bias(self, output: ModelOutput, entities: EntityInput | None) -> AdapterOutput:
        """``output``'s log-probabilities shifted toward ``entities``.

        An empty list returns the log-probabilities unchanged (the adapter does not run).

        Raises:
            ValueError: ``output`` lacks a layer the adapter reads (run the model with
                ``layers=adapter.layers``), or its frames disagree.
        """
        entity_list = as_entity_list(entities)
        texts = tuple(e.text for e in entity_list)
        if not texts:
            return AdapterOutput(output.logprobs, None, ())
        absent = [layer for layer in self.layers if layer not in output.hidden]
        if absent:
            raise ValueError(f"the adapter reads layers {list(self.layers)} but the model "
                             f"output has {sorted(output.hidden) or 'none'}; run the model "
                             f"with layers={self.layers}")
        missing = [h for h in self.heads if h not in output.heads]
        if missing:
            raise ValueError(f"the adapter reads heads {list(self.heads)} but the model "
                             f"output has {sorted(output.heads) or 'none'}")
        frames = len(output.logprobs)
        for layer in self.layers:
            if output.hidden[layer].shape[0] != frames:
                raise ValueError(f"hidden layer {layer} has {output.hidden[layer].shape[0]} "
                                 f"frames, the log-probabilities {frames}")
        vectors, trie = self._prepared(entity_list)
        with torch.inference_mode():
            hidden = [torch.from_numpy(np.asarray(output.hidden[k], np.float32))[None]
                      for k in self.layers]
            heads = [head_units(torch.from_numpy(np.asarray(output.heads[h]))[None],
                                self._head_index[h], self.config.vocab_size)
                     for h in self.config.query_heads]
            spots = None
            if self.config.spot_head:
                assert trie is not None  # made with the vectors when there is a spot head
                source = output.logprobs if self.config.spot_head == OUTPUT \
                    else output.heads[self.config.spot_head]
                scores = spot_scores(source,
                                     self._spot_labels.index(""), trie,
                                     len(texts), self.config.spot_margin)
                spots = torch.from_numpy(scores)[None]
            mixed, label_mix, attention = self.module.attend(hidden, vectors, heads=heads,
                                                             spots=spots)
            shifted = torch.from_numpy(np.asarray(output.logprobs, np.float32)) \
                + mixed[0] @ self._shift
            if label_mix is not None and self._bag_shift is not None:
                shifted = shifted + label_mix[0] @ self._bag_shift
            logprobs = torch.log_softmax(shifted, -1).numpy()
        return AdapterOutput(np.ascontiguousarray(logprobs), attention[0].numpy(), texts)


def _output_shift(projection: torch.Tensor, model: Any, source: str) -> torch.Tensor:
    """(K, V): ``output_layer(x @ projection.T) - output_layer(0)`` for a (D, K)
    projection into the representation, as a matrix, after checking that the model's
    output layer is affine."""
    weight = projection.detach().float()  # (D, K)
    device = getattr(model, "device", torch.device("cpu"))
    with torch.inference_mode():
        zero = model.output_layer(torch.zeros(1, weight.shape[0], device=device)).float().cpu()
        shift = model.output_layer(weight.T.to(device)).float().cpu() - zero
        probe = torch.randn(2, weight.shape[0], generator=torch.Generator().manual_seed(0))
        both = model.output_layer(probe.sum(0, keepdim=True).to(device)).float().cpu()
        parts = model.output_layer(probe.to(device)).float().cpu()
    if not torch.allclose(both, parts.sum(0, keepdim=True) - zero, rtol=1e-3, atol=1e-3):
        raise ValueError(f"{source} needs an affine output layer (linear or pointwise "
                         "convolution); this model's is not")
    return shift

