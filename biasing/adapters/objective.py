"""What the adapter learns from: training examples, batches of cached features, and the
losses (CTC on the biased output with a list; KL to the base with distractors alone).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .adapter import (
    OUTPUT,
    head_unit_map,
    head_units,
    label_bags,
    output_sequences,
    spot_scores,
    spot_sequences,
)
from .data import Features, TrainingUtterance
from .network import ContextualAdapter
from .units import UnitSpeller

__all__ = ["Batch", "Example", "Objective", "build_objective", "examples"]


@dataclass(frozen=True)
class Example:
    """A training or validation utterance whose features are cached."""

    position: int  # of its features in ``Features``
    utterance: TrainingUtterance
    target: list[int]  # its transcript as label ids (the CTC target)


@dataclass(frozen=True)
class Batch:
    """Cached features of a few utterances as tensors, padded to the longest."""

    base: torch.Tensor  # (B, T, V) the frozen model's log-probabilities
    hidden: list[torch.Tensor]  # per query layer, (B, T, C)
    heads: list[torch.Tensor]  # per query head, (B, T, units) probabilities of the units
    lengths: torch.Tensor  # (B,) frames
    targets: torch.Tensor  # (sum of target lengths,) label ids, one target after another
    target_lengths: torch.Tensor  # (B,)
    spot_logprobs: list[np.ndarray] | None  # per utterance, (T, labels) log-probabilities
    # of what is spotted to gate the attention; None without a gate


@dataclass(frozen=True)
class Objective:
    """What the losses are computed from: the adapter, the frozen model's output layer as
    a matrix, and the cached features of every utterance."""

    module: ContextualAdapter
    labels: list[str]  # the model's output labels
    speller: UnitSpeller  # spells list entries in the adapter's units
    features: Features
    device: torch.device
    output_matrix: torch.Tensor  # (D, V): output_layer(x) - output_layer(0) = x @ it
    head_index: list[torch.Tensor]  # per query head, its labels' unit ids (head_unit_map)
    stored: tuple[str, ...]  # the heads cached in ``features.heads``, in their order
    spot_labels: list[str]  # the labels of what is spotted ([] without a gate)

    def batch(self, chosen: Sequence[Example]) -> Batch:
        """The features of ``chosen`` as tensors on the training device."""
        features, config = self.features, self.module.config
        positions = [example.position for example in chosen]
        lengths = torch.tensor([len(features.logprobs[p]) for p in positions])
        width = int(lengths.max())
        hidden = [padded([features.hidden[p][k] for p in positions], width, self.device)
                  for k in range(len(config.layers))]
        heads = [head_units(padded([features.heads[p][k] for p in positions], width,
                                    self.device), index, config.vocab_size)
                 for k, index in enumerate(self.head_index)]
        spot_logprobs = None
        if config.spot_head == OUTPUT:
            spot_logprobs = [features.logprobs[p] for p in positions]
        elif config.spot_head:
            spot_logprobs = [features.heads[p][self.stored.index(config.spot_head)]
                             for p in positions]
        return Batch(
            base=padded([features.logprobs[p] for p in positions], width, self.device),
            hidden=hidden, heads=heads, lengths=lengths,
            targets=torch.tensor([t for example in chosen for t in example.target]),
            target_lengths=torch.tensor([len(example.target) for example in chosen]),
            spot_logprobs=spot_logprobs)

    def biased(self, batch: Batch, words: Sequence[str]) -> torch.Tensor:
        """(B, T, V) log-probabilities of the model's output shifted by the adapter toward
        ``words`` (the base output itself for an empty list)."""
        if not words:
            return batch.base
        module = self.module
        ids, unit_lengths = self.speller.batch(list(words))
        bags = torch.from_numpy(label_bags(words, self.labels)).to(self.device) \
            if module.config.label_bag else None
        vectors = module.encode(torch.from_numpy(ids).to(self.device),
                                torch.from_numpy(unit_lengths), bags)
        shift, _ = module(batch.hidden, vectors, heads=batch.heads,
                          spots=self._spots(batch, words))
        return torch.log_softmax(batch.base + shift @ self.output_matrix, -1)

    def ctc(self, batch: Batch, words: Sequence[str]) -> torch.Tensor:
        """The CTC loss of the biased output (the list ``words``) on the transcripts."""
        logprobs = self.biased(batch, words).transpose(0, 1)
        return torch.nn.functional.ctc_loss(logprobs, batch.targets, batch.lengths,
                                            batch.target_lengths,
                                            blank=self.labels.index(""), zero_infinity=True)

    def kl(self, batch: Batch, words: Sequence[str]) -> torch.Tensor:
        """KL(base || biased) per target unit, as the CTC loss is normalised."""
        base = batch.base
        if not words:
            return base.new_zeros(())
        biased = self.biased(batch, words)
        frames = (torch.arange(base.shape[1], device=base.device)[None, :]
                  < batch.lengths.to(base.device)[:, None]).to(base.dtype)
        per_frame = (base.exp() * (base - biased)).sum(-1) * frames
        return (per_frame.sum(1) / batch.target_lengths.to(base.device).clamp(min=1)).mean()

    def _spots(self, batch: Batch, words: Sequence[str]) -> torch.Tensor | None:
        """(B, T, len(words)) spot scores of ``words`` that gate the attention (-inf past
        an utterance's end); None without a gate."""
        config = self.module.config
        if not config.spot_head or batch.spot_logprobs is None:
            return None
        trie = output_sequences(words, self.labels) if config.spot_head == OUTPUT \
            else spot_sequences(words, self.speller, self.spot_labels)
        out = np.full((len(batch.spot_logprobs), batch.base.shape[1], len(words)), -np.inf,
                      np.float32)
        for row, logprobs in zip(out, batch.spot_logprobs):
            scores = spot_scores(logprobs.astype(np.float32), self.spot_labels.index(""),
                                 trie, len(words), config.spot_margin)
            row[: len(scores)] = scores
        return torch.from_numpy(out).to(self.device)


def padded(arrays: Sequence[np.ndarray], width: int, device: torch.device) -> torch.Tensor:
    """(T_i, C) arrays as one (N, width, C) float32 tensor, zero-padded."""
    out = np.zeros((len(arrays), width, arrays[0].shape[1]), np.float32)
    for row, array in zip(out, arrays):
        row[: len(array)] = array
    return torch.from_numpy(out).to(device)


def build_objective(model: Any, module: ContextualAdapter, pieces: bytes | None,
               features: Features, device: torch.device) -> Objective:
    """The objective of ``module`` on ``model``'s cached ``features``; the module is moved
    to ``device`` (its label bag first set from the output layer) and put in training
    mode."""
    config = module.config
    speller = UnitSpeller(config.units, pieces)
    head_index = [torch.from_numpy(head_unit_map(model.head_labels[h], speller)).to(device)
                  for h in config.query_heads]
    spot_extra = [config.spot_head] if config.spot_head not in (None, OUTPUT) else []
    stored = tuple(dict.fromkeys((*config.query_heads, *spot_extra)))
    spot_labels = [] if not config.spot_head else list(model.labels) \
        if config.spot_head == OUTPUT else list(model.head_labels[config.spot_head])
    matrix = output_matrix(model, config.representation_size).to(device)
    if config.label_bag:
        module.init_label_bag(matrix)
    module.to(device).train()
    return Objective(module, list(model.labels), speller, features, device, matrix,
                      head_index, stored, spot_labels)


def output_matrix(model: Any, size: int) -> torch.Tensor:
    """(size, V) on the CPU: the model's output layer as a matrix, without its bias."""
    with torch.no_grad():
        eye = torch.eye(size)
        device = getattr(model, "device", torch.device("cpu"))
        return (model.output_layer(eye.to(device)) -
                model.output_layer(torch.zeros(1, eye.shape[0], device=device))).float().cpu()


def examples(model: Any, utterances: Sequence[TrainingUtterance], features: Features,
              validation: int) -> tuple[list[Example], list[Example]]:
    """(training, validation) examples: the cached utterances with more frames than
    target labels, ``validation`` of them (a fixed draw) kept for validation."""
    from ..tokenizer import make_tokenizer

    spell = make_tokenizer(list(model.labels), None)
    usable = []
    for position, index in enumerate(features.index):
        utterance = utterances[index]
        target = spell.segmentations(utterance.text)[0]
        if len(target) < len(features.logprobs[position]):
            usable.append(Example(position, utterance, target))
    order = list(range(len(usable)))
    random.Random(1234).shuffle(order)
    held_out = set(order[:validation])
    return ([usable[k] for k in order if k not in held_out],
            [usable[k] for k in sorted(held_out)])
