"""Train a contextual adapter on a frozen CTC model.

Two stages, both resumable, in ``OUTPUT``:

1. **Features** (``features/``, :mod:`.data`): the frozen model runs once over the
   training audio; its outputs are cached in shards, so an interrupted run keeps what it
   had.
2. **Training**: the adapter alone learns. Every batch shares one list: the rare words
   of its utterances plus distractors (rare words of other utterances), the size drawn
   from 1 to a largest size that grows from ``first_list`` to ``max_list`` over the first
   half of the budget. The loss is CTC on the biased output
   ``log_softmax(logprobs + output_layer(shift) - output_layer(0))`` with that list, plus
   ``kl_weight`` times the divergence KL(base || biased) with the distractors alone. The
   second term is the method's "sometimes only distractors" made strict: without it the
   adapter learns to correct the base model from the audio alone, whatever the list says
   (on a base that is not trained to convergence on the same data that is the easiest
   gain), and with a list of other names it must leave the output as it was (the losses:
   :mod:`.objective`). ``checkpoint.pt`` is written atomically every
   ``checkpoint_every`` steps and at the end; a rerun continues from it until ``minutes``
   of training are spent. The state with the lowest validation loss is written to
   ``adapter.npz`` (atomically) at every validation that improves it.

    ctc-biasing train-adapter --model default --data DIR[,DIR] --output OUT --minutes 40
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..paths import atomic_write, ensure_folder
from .adapter import Adapter, labels_sha1, save_adapter
from .data import (
    Features,
    Log,
    TrainingUtterance,
    compute_features,
    read_training_data,
    write_manifest,
)
from .network import AdapterConfig, ContextualAdapter
from .objective import Example, Objective, build_objective, examples
from .units import UnitSpeller

__all__ = ["TrainOptions", "TrainingUtterance", "default_layers", "read_training_data",
           "train_adapter"]


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
    torch.manual_seed(options.seed)  # the starting weights follow --seed too
    module = ContextualAdapter(config)
    Adapter(module, model, pieces, source="the new adapter")  # checks the model fits
    utterances = read_training_data(data, model.labels, tokenizer, options.rare_count, log)
    fingerprint = getattr(model, "fingerprint", None) or "model"
    stored = tuple(dict.fromkeys((*heads, *([spot_head] if spot_head not in (None, "output")
                                            else []))))
    feature_dir = out_dir / f"features-{fingerprint}-{'_'.join(map(str, layers))}" \
        f"{''.join('-' + h for h in stored)}"
    write_manifest(feature_dir, utterances)
    features = compute_features(model, utterances, layers, feature_dir, log, stored)
    return _fit(model, module, pieces, utterances, features, out_dir, options, device, log)


def _deepest(model: Any, heads: Sequence[str]) -> str:
    """Of ``heads``, the one reading the deepest layer (the first, when unknown)."""
    network = getattr(model, "network", None)
    specs = dict(getattr(network, "heads", {}) or {})
    return max(heads, key=lambda h: getattr(getattr(specs.get(h), "spec", None), "layer", -1))


def _fit(model: Any, module: ContextualAdapter, pieces: bytes | None,
         utterances: Sequence[TrainingUtterance], features: Features, out_dir: Path,
         options: TrainOptions, device: str, log: Log) -> Path:
    """Train ``module`` on the cached ``features`` (continuing from ``checkpoint.pt`` when
    there is one); returns the path of ``adapter.npz``."""
    torch_device = torch.device(device)
    rng = random.Random(options.seed)
    torch.manual_seed(options.seed)
    train_items, val_items = examples(model, utterances, features, options.validation)
    pool = sorted({w for e in (*train_items, *val_items) for w in e.utterance.rare})
    if not pool:
        raise ValueError("the training data has no rare words to make lists from")
    log(f"training on {len(train_items)} utterances, validating on {len(val_items)}; "
        f"{len(pool)} distinct rare words or names")
    objective = build_objective(model, module, pieces, features, torch_device)
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

    def __init__(self, objective: Objective, optimizer: torch.optim.Optimizer,
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

    def run(self, train_items: Sequence[Example], val_items: Sequence[Example],
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

    def _draw_list(self, chosen: Sequence[Example], pool: Sequence[str], budget: float,
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

    def _learn(self, chosen: Sequence[Example], words: Sequence[str],
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

    def _validate(self, val_items: Sequence[Example], pool: Sequence[str], lr: float,
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


def _validation_losses(objective: Objective, items: Sequence[Example],
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

