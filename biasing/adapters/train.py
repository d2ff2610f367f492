"""Train a contextual adapter on a frozen CTC model.

Two stages, both resumable, in ``OUTPUT``:

1. **Features** (``features/``): the frozen model runs once over the training audio; its
   log-probabilities and the layers the adapter reads are stored (float16) in shards of
   ``SHARD`` utterances, each written atomically, so an interrupted run keeps what it had.
2. **Training**: the adapter alone learns. Every batch shares one list: the rare words
   of its utterances plus distractors (rare words of other utterances), the size drawn
   from 1 to a largest size that grows from ``first_list`` to ``max_list`` over the first
   half of the budget. The loss is CTC on the biased output
   ``log_softmax(logprobs + output_layer(shift) - output_layer(0))`` with that list, plus
   ``kl_weight`` times the divergence KL(base || biased) with the distractors alone. The
   second term is the method's "sometimes only distractors" made strict: without it the
   adapter learns to correct the base model from the audio alone, whatever the list says
   (on a base that is not trained to convergence on the same data that is the easiest
   gain), and with a list of other names it must leave the output as it was. ``checkpoint.pt`` is written atomically every
   ``checkpoint_every`` steps and at the end; a rerun continues from it until ``minutes``
   of training are spent. The state with the lowest validation loss is written to
   ``adapter.npz`` (atomically) at every validation that improves it.

An utterance's rare words are its line of ``entities_per_utt.tsv`` in the data folder when
there is one, else its words of at least 4 letters that occur at most ``rare_count`` times in
all the training transcripts.

    ctc-biasing train-adapter --model default --data DIR[,DIR] --output OUT --minutes 40
"""

from __future__ import annotations

import math
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..paths import atomic_write, ensure_folder
from .adapter import (
    OUTPUT,
    Adapter,
    head_unit_map,
    head_units,
    label_bags,
    labels_sha1,
    output_sequences,
    save_adapter,
    spot_scores,
    spot_sequences,
)
from .network import AdapterConfig, ContextualAdapter
from .units import UnitSpeller

__all__ = ["TrainOptions", "TrainingUtterance", "default_layers", "read_training_data",
           "train_adapter"]

SHARD = 256  # utterances per feature shard
MAX_SECONDS = 30.0  # longer training utterances are left out
Log = Callable[[str], None]


@dataclass(frozen=True)
class TrainOptions:
    """How to train (the defaults made the bundled adapter)."""

    minutes: float = 40.0  # training time budget (features not included)
    max_steps: int = 100_000
    batch_frames: int = 6000  # output frames per batch
    lr: float = 2e-3
    warmup: int = 150
    weight_decay: float = 1e-2
    max_list: int = 300  # largest training list
    first_list: int = 10  # largest list at the start (see the curriculum in the docs)
    kl_weight: float = 1.0  # of KL(base || biased) with the distractors alone
    rare_count: int = 2  # without entities_per_utt.tsv: rare = at most this many uses
    validation: int = 120  # utterances kept for validation
    validate_every: int = 200
    checkpoint_every: int = 100
    units: str = "auto"  # "chars", "pieces" (the model's sentencepiece model), or "auto":
    # pieces when the model has CTC heads over sentencepiece pieces, else characters
    layers: tuple[int, ...] = ()  # the model's layers the query reads; () = default_layers
    query_heads: tuple[str, ...] | None = None  # heads of the unit match; None = every
    # head over the units
    spot_head: str | None = "output"  # what is spotted to gate the attention: "output"
    # (the model's own output), a head's name, "auto" (the deepest of the query heads),
    # None (no gate)
    seed: int = 0
    threads: int | None = None
    config: dict[str, Any] = field(default_factory=dict)  # AdapterConfig size overrides


@dataclass(frozen=True)
class TrainingUtterance:
    """One utterance of the training data."""

    id: str
    audio: Path
    text: str  # normalised, spelt with the model's labels
    rare: tuple[str, ...]  # the words or names its lists are made from


def piece_heads(model: Any) -> tuple[str, ...]:
    """The model's auxiliary CTC heads over sentencepiece pieces (labels with ``▁``)."""
    return tuple(name for name, labels in sorted((getattr(model, "head_labels", {}) or {}
                                                  ).items())
                 if any(label.startswith("▁") for label in labels))


def default_layers(model: Any) -> tuple[int, ...]:
    """Layers the query reads: those the model's auxiliary CTC heads read (the bundled
    model's blocks 5 and 11), else the layers at half and three quarters of the depth."""
    network = getattr(model, "network", None)
    heads = getattr(network, "heads", None)
    if heads:
        layers = sorted({int(h.spec.layer) for h in heads.values()})
        if layers:
            return tuple(layers)
    n = int(model.num_layers)
    return tuple(sorted({max(0, n // 2), max(0, (3 * n) // 4)}))


def read_training_data(folders: Sequence[str | Path], labels: Sequence[str],
                       tokenizer: Any = None, rare_count: int = 2, log: Log = print,
                       ) -> list[TrainingUtterance]:
    """The transcribed utterances of ``folders`` (split ``train``: ``asr_train.tsv`` or a
    Kaldi ``train/``, ``text`` + ``wav.scp``) with their rare words.

    Raises:
        ValueError: a folder has no transcribed utterances (the message names it and the
            layouts looked for), or none can be spelt with ``labels``.
    """
    from ..datasets import load_dataset, read_entities_per_utt
    from ..entities import normalize_entity
    from ..tokenizer import make_tokenizer

    spell = make_tokenizer(list(labels), tokenizer)
    per_folder = []
    for folder in folders:
        try:
            utterances = load_dataset(folder, split="train", on_missing_audio="skip")
        except (OSError, ValueError) as err:
            raise ValueError(f"training data {str(folder)!r} has no transcribed utterances "
                             f"(expected asr_train.tsv, or Kaldi train/text + wav.scp): "
                             f"{err}") from None
        listed = Path(folder) / "entities_per_utt.tsv"
        rare = read_entities_per_utt(listed) if listed.is_file() else None
        per_folder.append((folder, utterances, rare))
    counts: Counter[str] = Counter(
        w for _, utts, _ in per_folder for u in utts for w in u.normalized_text.split())
    out: list[TrainingUtterance] = []
    skipped = 0
    for folder, utterances, rare in per_folder:
        kept = 0
        for utt in utterances:
            text, offending = normalize_entity(utt.normalized_text, spell.inventory)
            if not text or offending or not spell.segmentations(text):
                skipped += 1
                continue
            words = rare.get(utt.id, []) if rare is not None else [
                w for w in dict.fromkeys(utt.normalized_text.split())
                if len(w) >= 4 and w.isalpha() and counts[w] <= rare_count]
            out.append(TrainingUtterance(utt.id, utt.audio, text, tuple(words)))
            kept += 1
        if kept == 0:
            raise ValueError(f"training data {str(folder)!r}: none of its {len(utterances)} "
                             "utterances has a transcript the model's labels can spell")
        log(f"{folder}: {kept} utterances, rare words from "
            f"{'entities_per_utt.tsv' if rare is not None else 'transcript counts'}")
    if skipped:
        log(f"left out {skipped} utterances whose transcripts the labels cannot spell")
    return out


# ----------------------------------------------------------------------------- features

@dataclass
class Features:
    """Cached frozen-model outputs, one entry per kept utterance."""

    logprobs: list[np.ndarray]  # (T, V) float16
    hidden: list[list[np.ndarray]]  # per utterance, per layer (T, C) float16
    index: list[int]  # position in the utterance list
    heads: list[list[np.ndarray]] = field(default_factory=list)  # per utterance, per query
    # head (T, classes) float16 log-probabilities


def compute_features(model: Any, utterances: Sequence[TrainingUtterance],
                     layers: Sequence[int], folder: Path, log: Log,
                     heads: Sequence[str] = ()) -> Features:
    """Run ``model`` once over ``utterances`` (shards already in ``folder`` are reused)."""
    from ..audio import load_audio

    ensure_folder(folder, "adapter feature cache")
    result = Features([], [], [])
    shards = math.ceil(len(utterances) / SHARD)
    started = time.perf_counter()
    for shard in range(shards):
        path = folder / f"shard_{shard:04d}.npz"
        chunk = list(range(shard * SHARD, min(len(utterances), (shard + 1) * SHARD)))
        if not path.is_file():
            arrays: dict[str, Any] = {}  # Any: numpy stubs take **arrays for allow_pickle
            waves = {}
            for i in chunk:
                wave = load_audio(utterances[i].audio, model.sample_rate)
                if len(wave) <= MAX_SECONDS * model.sample_rate:
                    waves[i] = wave
            order = sorted(waves, key=lambda i: len(waves[i]))
            batch: list[int] = []
            for pos, i in enumerate(order):
                batch.append(i)
                if sum(len(waves[j]) for j in batch) < 60 * model.sample_rate \
                        and pos < len(order) - 1:
                    continue
                for j, out in zip(batch, model.forward([waves[j] for j in batch], layers)):
                    arrays[f"{j}/logprobs"] = out.logprobs.astype(np.float16)
                    for layer in layers:
                        arrays[f"{j}/{layer}"] = out.hidden[layer].astype(np.float16)
                    for head in heads:
                        arrays[f"{j}/head:{head}"] = out.heads[head].astype(np.float16)
                batch = []
            with atomic_write(path) as stream:
                np.savez(stream, **arrays)
            log(f"features: shard {shard + 1}/{shards} ({time.perf_counter() - started:.0f} s)")
        with np.load(path) as stored:
            for i in chunk:
                if f"{i}/logprobs" in stored.files:
                    result.index.append(i)
                    result.logprobs.append(stored[f"{i}/logprobs"])
                    result.hidden.append([stored[f"{i}/{layer}"] for layer in layers])
                    result.heads.append([stored[f"{i}/head:{h}"] for h in heads])
    return result


# ----------------------------------------------------------------------------- training

def train_adapter(model: Any, data: Sequence[str | Path], output: str | Path,
                  options: TrainOptions = TrainOptions(), device: str = "cpu",
                  tokenizer: Any = None, log: Log = print) -> Path:
    """Train (or continue training) an adapter for ``model`` on ``data``; returns the path
    of ``OUTPUT/adapter.npz``.

    Everything that can be checked is checked before the model runs: the model exposes its
    layers and output layer, the data has transcripts.

    Raises:
        ValueError: the model cannot take an adapter, the data has no usable transcripts,
            or ``OUTPUT`` holds a checkpoint of another model or configuration.
    """
    out_dir = ensure_folder(output, "adapter training output")
    if options.threads:
        torch.set_num_threads(options.threads)
    layers = tuple(options.layers) or default_layers(model)
    head_tokenizer = getattr(model, "head_tokenizer_path", None)
    units = options.units
    if units == "auto":
        units = "pieces" if head_tokenizer is not None and piece_heads(model) else "chars"
    pieces = None
    if units == "pieces":
        path = head_tokenizer or getattr(model, "tokenizer_path", None)
        if path is None:
            raise ValueError("units 'pieces' need a model with a sentencepiece model")
        pieces = Path(path).read_bytes()
    speller = UnitSpeller(units, pieces)
    heads = options.query_heads
    if heads is None:
        heads = piece_heads(model) if units == "pieces" else ()
    spot_head = options.spot_head
    if spot_head == "auto":
        spot_head = _deepest(model, heads) if heads else None
    try:
        sizes = tuple(int(model.layer_size(k)) for k in layers)
        config = AdapterConfig(units=units, vocab_size=speller.vocab_size,
                               layers=layers, layer_sizes=sizes, query_heads=tuple(heads),
                               spot_head=spot_head,
                               representation_size=int(model.representation_size),
                               num_labels=len(model.labels),
                               labels_sha1=labels_sha1(model.labels), **options.config)
    except AttributeError as err:
        raise ValueError(f"model {type(model).__name__} does not expose the layers the "
                         f"adapter needs (layer_size, representation_size, output_layer): "
                         f"{err}") from None
    module = ContextualAdapter(config)
    Adapter(module, model, pieces, source="the new adapter")  # checks the model fits
    utterances = read_training_data(data, model.labels, tokenizer, options.rare_count, log)
    fingerprint = getattr(model, "fingerprint", None) or "model"
    stored = tuple(dict.fromkeys((*heads, *([spot_head] if spot_head not in (None, "output")
                                            else []))))
    feature_dir = out_dir / f"features-{fingerprint}-{'_'.join(map(str, layers))}" \
        f"{''.join('-' + h for h in stored)}"
    _write_manifest(feature_dir, utterances)
    features = compute_features(model, utterances, layers, feature_dir, log, stored)
    return _fit(model, module, pieces, utterances, features, out_dir, options, device, log)


def _deepest(model: Any, heads: Sequence[str]) -> str:
    """Of ``heads``, the one reading the deepest layer (the first, when unknown)."""
    network = getattr(model, "network", None)
    specs = dict(getattr(network, "heads", {}) or {})
    return max(heads, key=lambda h: getattr(getattr(specs.get(h), "spec", None), "layer", -1))


def _write_manifest(folder: Path, utterances: Sequence[TrainingUtterance]) -> None:
    """Shards are only valid for the utterance list they were made from: a different
    list starts the cache again."""
    ensure_folder(folder, "adapter feature cache")
    manifest = "\n".join(f"{u.id}\t{u.audio}" for u in utterances)
    path = folder / "utterances.tsv"
    if path.is_file() and path.read_text(encoding="utf-8") != manifest:
        for shard in folder.glob("shard_*.npz"):
            shard.unlink()
    if not path.is_file() or path.read_text(encoding="utf-8") != manifest:
        with atomic_write(path) as stream:
            stream.write(manifest.encode())


@dataclass(frozen=True)
class _Example:
    """A training or validation utterance whose features are cached."""

    position: int  # of its features in ``Features``
    utterance: TrainingUtterance
    target: list[int]  # its transcript as label ids (the CTC target)


@dataclass(frozen=True)
class _Batch:
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
class _Objective:
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

    def batch(self, chosen: Sequence[_Example]) -> _Batch:
        """The features of ``chosen`` as tensors on the training device."""
        features, config = self.features, self.module.config
        positions = [example.position for example in chosen]
        lengths = torch.tensor([len(features.logprobs[p]) for p in positions])
        width = int(lengths.max())
        hidden = [_padded([features.hidden[p][k] for p in positions], width, self.device)
                  for k in range(len(config.layers))]
        heads = [head_units(_padded([features.heads[p][k] for p in positions], width,
                                    self.device), index, config.vocab_size)
                 for k, index in enumerate(self.head_index)]
        spot_logprobs = None
        if config.spot_head == OUTPUT:
            spot_logprobs = [features.logprobs[p] for p in positions]
        elif config.spot_head:
            spot_logprobs = [features.heads[p][self.stored.index(config.spot_head)]
                             for p in positions]
        return _Batch(
            base=_padded([features.logprobs[p] for p in positions], width, self.device),
            hidden=hidden, heads=heads, lengths=lengths,
            targets=torch.tensor([t for example in chosen for t in example.target]),
            target_lengths=torch.tensor([len(example.target) for example in chosen]),
            spot_logprobs=spot_logprobs)

    def biased(self, batch: _Batch, words: Sequence[str]) -> torch.Tensor:
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

    def ctc(self, batch: _Batch, words: Sequence[str]) -> torch.Tensor:
        """The CTC loss of the biased output (the list ``words``) on the transcripts."""
        logprobs = self.biased(batch, words).transpose(0, 1)
        return torch.nn.functional.ctc_loss(logprobs, batch.targets, batch.lengths,
                                            batch.target_lengths,
                                            blank=self.labels.index(""), zero_infinity=True)

    def kl(self, batch: _Batch, words: Sequence[str]) -> torch.Tensor:
        """KL(base || biased) per target unit, as the CTC loss is normalised."""
        base = batch.base
        if not words:
            return base.new_zeros(())
        biased = self.biased(batch, words)
        frames = (torch.arange(base.shape[1], device=base.device)[None, :]
                  < batch.lengths.to(base.device)[:, None]).to(base.dtype)
        per_frame = (base.exp() * (base - biased)).sum(-1) * frames
        return (per_frame.sum(1) / batch.target_lengths.to(base.device).clamp(min=1)).mean()

    def _spots(self, batch: _Batch, words: Sequence[str]) -> torch.Tensor | None:
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


def _padded(arrays: Sequence[np.ndarray], width: int, device: torch.device) -> torch.Tensor:
    """(T_i, C) arrays as one (N, width, C) float32 tensor, zero-padded."""
    out = np.zeros((len(arrays), width, arrays[0].shape[1]), np.float32)
    for row, array in zip(out, arrays):
        row[: len(array)] = array
    return torch.from_numpy(out).to(device)


def _objective(model: Any, module: ContextualAdapter, pieces: bytes | None,
               features: Features, device: torch.device) -> _Objective:
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
    matrix = _output_matrix(model, config.representation_size).to(device)
    if config.label_bag:
        module.init_label_bag(matrix)
    module.to(device).train()
    return _Objective(module, list(model.labels), speller, features, device, matrix,
                      head_index, stored, spot_labels)


def _output_matrix(model: Any, size: int) -> torch.Tensor:
    """(size, V) on the CPU: the model's output layer as a matrix, without its bias."""
    with torch.no_grad():
        eye = torch.eye(size)
        device = getattr(model, "device", torch.device("cpu"))
        return (model.output_layer(eye.to(device)) -
                model.output_layer(torch.zeros(1, eye.shape[0], device=device))).float().cpu()


def _examples(model: Any, utterances: Sequence[TrainingUtterance], features: Features,
              validation: int) -> tuple[list[_Example], list[_Example]]:
    """(training, validation) examples: the cached utterances with more frames than
    target labels, ``validation`` of them (a fixed draw) kept for validation."""
    from ..tokenizer import make_tokenizer

    spell = make_tokenizer(list(model.labels), None)
    usable = []
    for position, index in enumerate(features.index):
        utterance = utterances[index]
        target = spell.segmentations(utterance.text)[0]
        if len(target) < len(features.logprobs[position]):
            usable.append(_Example(position, utterance, target))
    order = list(range(len(usable)))
    random.Random(1234).shuffle(order)
    held_out = set(order[:validation])
    return ([usable[k] for k in order if k not in held_out],
            [usable[k] for k in sorted(held_out)])


def _fit(model: Any, module: ContextualAdapter, pieces: bytes | None,
         utterances: Sequence[TrainingUtterance], features: Features, out_dir: Path,
         options: TrainOptions, device: str, log: Log) -> Path:
    """Train ``module`` on the cached ``features`` (continuing from ``checkpoint.pt`` when
    there is one); returns the path of ``adapter.npz``."""
    torch_device = torch.device(device)
    rng = random.Random(options.seed)
    torch.manual_seed(options.seed)
    train_items, val_items = _examples(model, utterances, features, options.validation)
    pool = sorted({w for e in (*train_items, *val_items) for w in e.utterance.rare})
    if not pool:
        raise ValueError("the training data has no rare words to make lists from")
    log(f"training on {len(train_items)} utterances, validating on {len(val_items)}; "
        f"{len(pool)} distinct rare words or names")
    objective = _objective(model, module, pieces, features, torch_device)
    optimizer = torch.optim.AdamW(module.parameters(), lr=options.lr,
                                  weight_decay=options.weight_decay)
    training = _Training(objective, optimizer, rng, options, out_dir, pieces)
    training.resume(log)
    batches = _batches([len(features.logprobs[e.position]) for e in train_items],
                       options.batch_frames)
    if not training.log_path.is_file():
        training.log_path.write_text("step\tminutes\tlr\ttrain_loss\tval_biased\t"
                                     "val_distractors\tval_base\n", encoding="utf-8")
    return training.run(train_items, val_items, batches, pool, log)


class _Training:
    """The training loop and what ``checkpoint.pt`` keeps of it: the adapter, its
    optimiser, the RNG that draws batches and lists, the step, the seconds trained and the
    best validation loss so far."""

    def __init__(self, objective: _Objective, optimizer: torch.optim.Optimizer,
                 rng: random.Random, options: TrainOptions, out_dir: Path,
                 pieces: bytes | None) -> None:
        self.objective = objective
        self.module = objective.module
        self.optimizer = optimizer
        self.rng = rng
        self.options = options
        self.pieces = pieces
        self.checkpoint = out_dir / "checkpoint.pt"
        self.log_path = out_dir / "log.tsv"
        self.adapter_path = out_dir / "adapter.npz"
        self.shape = {k: v for k, v in self.module.config.to_json().items() if k != "meta"}
        self.step = 0
        self.elapsed = 0.0  # seconds of training, validation and checkpoints excluded
        self.best = math.inf  # the lowest validation loss with the list

    def resume(self, log: Log) -> None:
        """Continue from ``checkpoint.pt``, if there is one.

        Raises:
            ValueError: it was made with another adapter configuration.
        """
        if not self.checkpoint.is_file():
            return
        saved = torch.load(self.checkpoint, map_location="cpu", weights_only=False)
        if saved["config"] != self.shape:
            raise ValueError(f"{self.checkpoint} was made with another adapter "
                             "configuration; use another --output or remove it")
        self.module.load_state_dict(saved["module"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.step, self.elapsed, self.best = saved["step"], saved["elapsed"], saved["best"]
        self.rng.setstate(saved["rng"])
        log(f"resuming at step {self.step} ({self.elapsed / 60:.1f} min trained)")

    def run(self, train_items: Sequence[_Example], val_items: Sequence[_Example],
            batches: Sequence[list[int]], pool: Sequence[str], log: Log) -> Path:
        """Train until ``max_steps`` or ``minutes`` (validating and checkpointing on the
        way); returns the path of ``adapter.npz``."""
        options = self.options
        budget = options.minutes * 60
        last = time.perf_counter()
        losses: list[float] = []
        while self.step < options.max_steps and self.elapsed < budget:
            chosen = [train_items[k] for k in batches[self.rng.randrange(len(batches))]]
            words, distractors = self._draw_list(chosen, pool, budget)
            lr = _learning_rate(options, self.step, min(1.0, self.elapsed / budget))
            losses.append(self._learn(chosen, words, distractors, lr))
            now = time.perf_counter()
            self.elapsed += now - last
            last = now
            self.step += 1
            done = self.step >= options.max_steps or self.elapsed >= budget
            if self.step % options.validate_every == 0 or done:
                self._validate(val_items, pool, lr, losses, log)
                losses = []
                last = time.perf_counter()
            if self.step % options.checkpoint_every == 0 or done:
                self._save_checkpoint()
                last = time.perf_counter()
        if not self.adapter_path.is_file():
            save_adapter(self.adapter_path, self.module.cpu(), self.pieces)
        return self.adapter_path

    def _draw_list(self, chosen: Sequence[_Example], pool: Sequence[str], budget: float,
                   ) -> tuple[list[str], list[str]]:
        """(the batch's own rare words + distractors, the distractors alone).

        The largest size grows from ``first_list`` to ``max_list`` over the first half of
        the budget: with short lists the right entity draws a large share of the attention,
        so the adapter learns to match entities to sounds before it must find them among
        hundreds."""
        options = self.options
        grown = min(1.0, 2 * self.elapsed / budget)
        size = self.rng.randint(1, round(options.first_list +
                                         (options.max_list - options.first_list) * grown))
        own = list(dict.fromkeys(w for e in chosen for w in e.utterance.rare))
        taken = set(own)
        distractors: list[str] = []
        while len(distractors) < max(0, min(size - len(own), len(pool) - len(own))):
            word = self.rng.choice(pool)
            if word not in taken:
                taken.add(word)
                distractors.append(word)
        words = own + distractors
        self.rng.shuffle(words)
        return words, distractors

    def _learn(self, chosen: Sequence[_Example], words: Sequence[str],
               distractors: Sequence[str], lr: float) -> float:
        """One optimiser step on ``chosen`` with the list ``words``; returns the loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = self.objective.batch(chosen)
        loss = self.objective.ctc(batch, words)
        if self.options.kl_weight:
            loss = loss + self.options.kl_weight * self.objective.kl(batch, distractors)
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.module.parameters(), 5.0)
        self.optimizer.step()
        return float(loss.item())

    def _validate(self, val_items: Sequence[_Example], pool: Sequence[str], lr: float,
                  losses: list[float], log: Log) -> None:
        """Validate, log, and write ``adapter.npz`` when the loss with the list is the
        lowest so far."""
        biased, distractors, base = _validation_losses(self.objective, val_items, pool)
        _append(self.log_path, self.step, self.elapsed, lr, losses, (biased, distractors, base))
        log(f"step {self.step}: train {np.mean(losses):.4f}, validation biased "
            f"{biased:.4f}, distractors only {distractors:.4f}, base {base:.4f} "
            f"({self.elapsed / 60:.1f} min)")
        if biased < self.best:
            self.best = biased
            self.module.config.meta.update({"step": self.step,
                                            "minutes": round(self.elapsed / 60, 1),
                                            "validation": [round(biased, 4),
                                                           round(distractors, 4),
                                                           round(base, 4)]})
            save_adapter(self.adapter_path, self.module.cpu(), self.pieces)
            self.module.to(self.objective.device)

    def _save_checkpoint(self) -> None:
        payload = {"step": self.step, "elapsed": self.elapsed, "best": self.best,
                   "config": self.shape, "options": asdict(self.options),
                   "module": self.module.state_dict(),
                   "optimizer": self.optimizer.state_dict(), "rng": self.rng.getstate()}
        with atomic_write(self.checkpoint) as stream:
            torch.save(payload, stream)


def _learning_rate(options: TrainOptions, step: int, progress: float) -> float:
    """Warm-up over ``options.warmup`` steps, then cosine decay over the time budget
    (``progress``: the fraction of it spent)."""
    return options.lr * min(1.0, (step + 1) / options.warmup) * \
        0.5 * (1 + math.cos(math.pi * progress))


def _validation_losses(objective: _Objective, items: Sequence[_Example],
                       pool: Sequence[str]) -> tuple[float, float, float]:
    """Mean CTC losses on ``items`` with the list (own rare words + 100 others), with the
    others alone, and with no list; the others are a fixed draw, the same at every
    validation."""
    module = objective.module
    module.eval()
    rng = random.Random(99)
    totals = [0.0, 0.0, 0.0]
    with torch.no_grad():
        for start in range(0, len(items), 16):
            chosen = items[start:start + 16]
            own = list(dict.fromkeys(w for e in chosen for w in e.utterance.rare))
            others = [w for w in rng.sample(pool, min(len(pool), 150)) if w not in own]
            batch = objective.batch(chosen)
            totals[0] += float(objective.ctc(batch, own + others[:100])) * len(chosen)
            totals[1] += float(objective.ctc(batch, others[:100])) * len(chosen)
            totals[2] += float(objective.ctc(batch, [])) * len(chosen)
    module.train()
    biased, distractors, base = (t / max(1, len(items)) for t in totals)
    return biased, distractors, base


def _batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Indices grouped by similar length, at most ``budget`` padded frames per group."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) + 1) * lengths[i] > budget:
            groups.append(current)
            current = []
        current.append(i)
    if current:
        groups.append(current)
    return groups


def _append(path: Path, step: int, elapsed: float, lr: float, losses: list[float],
            val: tuple[float, float, float]) -> None:
    """One row of ``log.tsv`` (``elapsed`` in seconds), synced to disk."""
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(f"{step}\t{elapsed / 60:.2f}\t{lr:.2e}\t"
                     f"{np.mean(losses) if losses else float('nan'):.4f}\t"
                     + "\t".join(f"{v:.4f}" for v in val) + "\n")
        stream.flush()
        os.fsync(stream.fileno())

