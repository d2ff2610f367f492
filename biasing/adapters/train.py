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
from .adapter import Adapter, labels_sha1, save_adapter
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
            arrays: dict[str, np.ndarray] = {}
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


def _fit(model: Any, module: ContextualAdapter, pieces: bytes | None,
         utterances: Sequence[TrainingUtterance], features: Features, out_dir: Path,
         options: TrainOptions, device: str, log: Log) -> Path:
    from ..tokenizer import make_tokenizer

    torch_device = torch.device(device)
    rng = random.Random(options.seed)
    torch.manual_seed(options.seed)
    from .adapter import (
        OUTPUT,
        head_unit_map,
        head_units,
        label_bags,
        output_sequences,
        spot_scores,
        spot_sequences,
    )

    speller = UnitSpeller(module.config.units, pieces)
    spell = make_tokenizer(list(model.labels), None)
    config = module.config
    head_index = [torch.from_numpy(head_unit_map(model.head_labels[h], speller)).to(torch_device)
                  for h in config.query_heads]
    stored = tuple(dict.fromkeys((*config.query_heads, *([config.spot_head] if
                                                         config.spot_head not in (None, OUTPUT)
                                                         else []))))
    spot_labels = [] if not config.spot_head else list(model.labels) \
        if config.spot_head == OUTPUT else list(model.head_labels[config.spot_head])
    blank = model.labels.index("")
    items = []
    for pos, i in enumerate(features.index):
        utt = utterances[i]
        target = spell.segmentations(utt.text)[0]
        if len(target) < len(features.logprobs[pos]):
            items.append((pos, utt, target))
    order = list(range(len(items)))
    random.Random(1234).shuffle(order)
    val_ids = set(order[:options.validation])
    train_items = [items[k] for k in order if k not in val_ids]
    val_items = [items[k] for k in sorted(val_ids)]
    pool = sorted({w for _, u, _ in items for w in u.rare})
    if not pool:
        raise ValueError("the training data has no rare words to make lists from")
    log(f"training on {len(train_items)} utterances, validating on {len(val_items)}; "
        f"{len(pool)} distinct rare words or names")

    with torch.no_grad():  # output layer as a matrix: (D, V)
        eye = torch.eye(module.config.representation_size)
        dev = getattr(model, "device", torch.device("cpu"))
        layer = (model.output_layer(eye.to(dev)) -
                 model.output_layer(torch.zeros(1, eye.shape[0], device=dev))).float().cpu()
    layer = layer.to(torch_device)
    if module.config.label_bag:
        module.init_label_bag(layer)
    module.to(torch_device).train()
    optimizer = torch.optim.AdamW(module.parameters(), lr=options.lr,
                                  weight_decay=options.weight_decay)
    checkpoint = out_dir / "checkpoint.pt"
    shape = {k: v for k, v in module.config.to_json().items() if k != "meta"}
    state = {"step": 0, "elapsed": 0.0, "best": math.inf, "config": shape,
             "options": asdict(options)}
    if checkpoint.is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if saved["config"] != state["config"]:
            raise ValueError(f"{checkpoint} was made with another adapter configuration; "
                             "use another --output or remove it")
        module.load_state_dict(saved["module"])
        optimizer.load_state_dict(saved["optimizer"])
        state.update({k: saved[k] for k in ("step", "elapsed", "best")})
        rng.setstate(saved["rng"])
        log(f"resuming at step {state['step']} ({state['elapsed'] / 60:.1f} min trained)")
    batches = _batches([len(features.logprobs[p]) for p, _, _ in train_items],
                       options.batch_frames)
    log_path = out_dir / "log.tsv"
    if not log_path.is_file():
        log_path.write_text("step\tminutes\tlr\ttrain_loss\tval_biased\tval_distractors\t"
                            "val_base\n", encoding="utf-8")

    def to_batch(chosen: Sequence[tuple[int, TrainingUtterance, list[int]]]) -> tuple:
        """(base, hidden, heads, lengths, targets, target lengths) tensors."""
        lengths = torch.tensor([len(features.logprobs[p]) for p, _, _ in chosen])
        width = int(lengths.max())
        def pad(arrays: list[np.ndarray]) -> torch.Tensor:
            out = np.zeros((len(arrays), width, arrays[0].shape[1]), np.float32)
            for row, a in zip(out, arrays):
                row[: len(a)] = a
            return torch.from_numpy(out).to(torch_device)
        base = pad([features.logprobs[p] for p, _, _ in chosen])
        hidden = [pad([features.hidden[p][k] for p, _, _ in chosen])
                  for k in range(len(module.config.layers))]
        heads = [head_units(pad([features.heads[p][k] for p, _, _ in chosen]), index,
                            module.config.vocab_size) for k, index in enumerate(head_index)]
        spot_logprobs = None
        if config.spot_head == OUTPUT:
            spot_logprobs = [features.logprobs[p] for p, _, _ in chosen]
        elif config.spot_head:
            spot_logprobs = [features.heads[p][stored.index(config.spot_head)]
                             for p, _, _ in chosen]
        targets = torch.tensor([t for _, _, tgt in chosen for t in tgt])
        target_lengths = torch.tensor([len(tgt) for _, _, tgt in chosen])
        return base, hidden, heads, lengths, targets, target_lengths, spot_logprobs

    def spots_of(batch: tuple, words: Sequence[str]) -> torch.Tensor | None:
        if not config.spot_head:
            return None
        trie = output_sequences(words, model.labels) if config.spot_head == OUTPUT \
            else spot_sequences(words, speller, spot_labels)
        width = batch[0].shape[1]
        out = np.full((len(batch[6]), width, len(words)), -np.inf, np.float32)
        for row, logprobs in zip(out, batch[6]):
            scores = spot_scores(logprobs.astype(np.float32), spot_labels.index(""), trie,
                                 len(words), config.spot_margin)
            row[: len(scores)] = scores
        return torch.from_numpy(out).to(torch_device)

    def biased_logprobs(batch: tuple, words: Sequence[str]) -> torch.Tensor:
        base, hidden, heads = batch[:3]
        if not words:
            return base
        ids, unit_lengths = speller.batch(list(words))
        bags = torch.from_numpy(label_bags(words, model.labels)).to(torch_device) \
            if module.config.label_bag else None
        vectors = module.encode(torch.from_numpy(ids).to(torch_device),
                                torch.from_numpy(unit_lengths), bags)
        shift, _ = module(hidden, vectors, heads=heads, spots=spots_of(batch, words))
        return torch.log_softmax(base + shift @ layer, -1)

    def ctc_of(batch: tuple, words: Sequence[str]) -> torch.Tensor:
        _, _, _, lengths, targets, target_lengths, _ = batch
        logprobs = biased_logprobs(batch, words).transpose(0, 1)
        return torch.nn.functional.ctc_loss(logprobs, targets, lengths, target_lengths,
                                            blank=blank, zero_infinity=True)

    def kl_of(batch: tuple, words: Sequence[str]) -> torch.Tensor:
        """KL(base || biased) per target unit, as the CTC loss is normalised."""
        base, lengths, target_lengths = batch[0], batch[3], batch[5]
        if not words:
            return base.new_zeros(())
        biased = biased_logprobs(batch, words)
        frames = (torch.arange(base.shape[1], device=base.device)[None, :]
                  < lengths.to(base.device)[:, None]).to(base.dtype)
        per_frame = (base.exp() * (base - biased)).sum(-1) * frames
        return (per_frame.sum(1) / target_lengths.to(base.device).clamp(min=1)).mean()

    def make_list(chosen: Sequence, size: int) -> tuple[list[str], list[str]]:
        """(own words + distractors, the distractors alone)."""
        own = list(dict.fromkeys(w for _, u, _ in chosen for w in u.rare))
        taken = set(own)
        distractors: list[str] = []
        while len(distractors) < max(0, min(size - len(own), len(pool) - len(own))):
            word = rng.choice(pool)
            if word not in taken:
                taken.add(word)
                distractors.append(word)
        words = own + distractors
        rng.shuffle(words)
        return words, distractors

    def validate() -> tuple[float, float, float]:
        module.eval()
        vrng = random.Random(99)
        totals = [0.0, 0.0, 0.0]
        with torch.no_grad():
            for start in range(0, len(val_items), 16):
                chosen = val_items[start:start + 16]
                own = list(dict.fromkeys(w for _, u, _ in chosen for w in u.rare))
                others = [w for w in vrng.sample(pool, min(len(pool), 150)) if w not in own]
                batch = to_batch(chosen)
                totals[0] += float(ctc_of(batch, own + others[:100])) * len(chosen)
                totals[1] += float(ctc_of(batch, others[:100])) * len(chosen)
                totals[2] += float(ctc_of(batch, [])) * len(chosen)
        module.train()
        return tuple(t / max(1, len(val_items)) for t in totals)  # type: ignore[return-value]

    def save_checkpoint() -> None:
        payload = {**state, "module": module.state_dict(), "optimizer": optimizer.state_dict(),
                   "rng": rng.getstate()}
        with atomic_write(checkpoint) as stream:
            torch.save(payload, stream)

    adapter_path = out_dir / "adapter.npz"
    budget = options.minutes * 60
    last = time.perf_counter()
    losses: list[float] = []
    total_steps = options.max_steps
    while state["step"] < total_steps and state["elapsed"] < budget:
        step = state["step"]
        batch = batches[rng.randrange(len(batches))]
        chosen = [train_items[k] for k in batch]
        # lists grow from ``first_list`` to ``max_list`` over the first half of the budget:
        # with short lists the right entity draws a large share of the attention, so the
        # adapter learns to match entities to sounds before it must find them among hundreds
        grown = min(1.0, 2 * state["elapsed"] / budget)
        size = rng.randint(1, round(options.first_list +
                                    (options.max_list - options.first_list) * grown))
        words, distractors = make_list(chosen, size)
        # warm-up, then cosine decay over the time budget
        progress = min(1.0, state["elapsed"] / budget)
        lr = options.lr * min(1.0, (step + 1) / options.warmup) * \
            0.5 * (1 + math.cos(math.pi * progress))
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch_tensors = to_batch(chosen)
        loss = ctc_of(batch_tensors, words)
        if options.kl_weight:
            loss = loss + options.kl_weight * kl_of(batch_tensors, distractors)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 5.0)
        optimizer.step()
        losses.append(loss.item())
        now = time.perf_counter()
        state["elapsed"] += now - last
        last = now
        state["step"] = step + 1
        done = state["step"] >= total_steps or state["elapsed"] >= budget
        if state["step"] % options.validate_every == 0 or done:
            biased, distractors, base = validate()
            _append(log_path, state, lr, losses, (biased, distractors, base))
            log(f"step {state['step']}: train {np.mean(losses):.4f}, validation biased "
                f"{biased:.4f}, distractors only {distractors:.4f}, base {base:.4f} "
                f"({state['elapsed'] / 60:.1f} min)")
            losses = []
            if biased < state["best"]:
                state["best"] = biased
                module.config.meta.update({"step": state["step"],
                                           "minutes": round(state["elapsed"] / 60, 1),
                                           "validation": [round(biased, 4),
                                                          round(distractors, 4),
                                                          round(base, 4)]})
                save_adapter(adapter_path, module.cpu(), pieces)
                module.to(torch_device)
            last = time.perf_counter()
        if state["step"] % options.checkpoint_every == 0 or done:
            save_checkpoint()
            last = time.perf_counter()
    if not adapter_path.is_file():
        save_adapter(adapter_path, module.cpu(), pieces)
    return adapter_path


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


def _append(path: Path, state: dict, lr: float, losses: list[float],
            val: tuple[float, float, float]) -> None:
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(f"{state['step']}\t{state['elapsed'] / 60:.2f}\t{lr:.2e}\t"
                     f"{np.mean(losses) if losses else float('nan'):.4f}\t"
                     + "\t".join(f"{v:.4f}" for v in val) + "\n")
        stream.flush()
        os.fsync(stream.fileno())

