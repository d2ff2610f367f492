"""Stage 2 of the default model: new CTC heads trained on the frozen stage-1 encoder.

Stage 1 (``train``) fine-tunes the whole network, about 5 s a step on 2 CPU cores; a new
sentencepiece head trained that way sat in CTC's all-blank plateau for the few hundred
steps a session allows. Here the encoder of a model folder (stage 1, its old auxiliary
heads removed) runs once over the training audio and the outputs the new heads read are
cached (float16, ``RUN/cache``); the heads then train on the cache for many epochs, about a
minute each.

Heads (each: depthwise convolution over a few frames, a pointwise ReLU layer, the
projection; ``CTCHead``):

- ``output``: the new main output over ``--vocab`` sentencepiece units + blank, reading
  ``epilog.1`` (it becomes ``epilog.2`` + ``head`` of the exported folder);
- ``ctc_5``, ``ctc_11``: intermediate subword CTC heads on blocks 5 and 11;
- ``phones``: 39 stressless ARPAbet phones + blank on block 11 (targets from CMUdict / G2P).

The encoder is frozen, so these heads have no feedback: a self-conditioning projection
trained here would change the inputs of the blocks above it and with them every cached
feature. Stage 3 (``train_top``) adds it, fine-tuning blocks 6-14 from the block-5 cache.

Inputs are scaled per channel to unit RMS for training; the scale is folded into each
head's first convolution on export, so the exported folder computes the same function.

Data as ``train`` (``recipes.common``): speechocean762 train (100 utterances kept for
validation) and the synthetic training speech; ``--copies 2`` adds one augmented pass (speed, noise,
reverberation, gain, SpecAugment) to the clean one. Resumable (``RUN/heads.pt`` every
epoch, keeping each head's best validation state); ``RUN/log.tsv`` logs.

    python -m recipes.default_model.train_heads RUN --base STAGE1
    python -m recipes.default_model.train_heads RUN --base STAGE1 --export DIR
    python -m recipes.default_model.train_heads RUN --base STAGE1 --state top_best.pt \
        --export DIR

``--base`` is the stage-1 folder (``export``), not ``data/models/default``: the bundled
model's blocks 6-14 have been fine-tuned by stage 3.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from biasing.models import greedy_labels
from biasing.models.frontend import LogMelFrontend
from biasing.models.quartznet import (
    CTCHead,
    HeadSpec,
    QuartzNet,
    build_network,
    frame_mask,
    frontend_config,
    read_folder,
    write_folder,
)
from biasing.paths import write_text_atomic
from recipes.common import (
    PHONE_LABELS,
    RunLog,
    TrainUtterance,
    augment,
    batches,
    ctc,
    error_rate,
    load_corpus,
    pad_waves,
    phone_targets,
    save_checkpoint,
    spec_augment,
    train_tokenizer,
    validation_split,
)

SOURCES = {"block5": 1 << 8, "block11": 1 << 9, "epilog": 1 << 10}  # name -> channels
HEADS = {  # name -> (source, units, kernel, hidden)
    "output": ("epilog", "pieces", 9, 512),
    "ctc_5": ("block5", "pieces", 9, 256),
    "ctc_11": ("block11", "pieces", 9, 384),
    "phones": ("block11", "phones", 9, 384),
}
BATCH_FRAMES = 12_000  # padded frames per training batch (about 4 minutes of audio)
CACHE_BATCH_SAMPLES = 160 * 16000  # padded samples per encoder batch while caching


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--base", type=Path, required=True,
                        help="stage-1 model folder whose encoder stays frozen")
    parser.add_argument("--export", type=Path, help="write a model folder and stop")
    parser.add_argument("--output", choices=("pieces", "chars"), default="pieces",
                        help="with --export: the main output the folder gets")
    parser.add_argument("--state", default="heads.pt",
                        help="with --export: heads.pt (stage 2) or top_best.pt (stage 3)")
    parser.add_argument("--vocab", type=int, default=256)
    parser.add_argument("--copies", type=int, default=1, choices=(1, 2),
                        help="cached passes over the training audio: clean, + augmented")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=1e9)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="smoke test: first N utterances")
    return parser.parse_args(argv)


# -------------------------------------------------------------------- encoder and cache

def base_network(folder: Path) -> tuple[QuartzNet, LogMelFrontend, dict, dict[str, np.ndarray]]:
    """The stage-1 network of ``folder`` without its auxiliary heads, and its weights."""
    model = read_folder(folder)
    weights = {k: v for k, v in model.weights.items() if not k.startswith("heads.")}
    network = build_network(model.config, weights, heads=False)
    return network.eval(), LogMelFrontend(frontend_config(model.config)).eval(), \
        model.config, weights


def cache_features(network: QuartzNet, frontend: LogMelFrontend, corpus: list[TrainUtterance],
                   out: Path, augmented: bool, seed: int) -> None:
    """Run the encoder over ``corpus`` and store block 5, block 11 and epilog outputs."""
    order = sorted(range(len(corpus)), key=lambda i: len(corpus[i].wave))
    rng = np.random.default_rng(seed)
    waves = [corpus[i].float_wave() for i in order]
    if augmented:
        waves = [augment(w, rng) for w in waves]
    total = sum(len(w) // 320 + 2 for w in waves)  # upper bound on frames; trimmed below
    arrays = {name: np.lib.format.open_memmap(out / f"{name}.npy", "w+", np.float16,
                                              (total, channels))
              for name, channels in SOURCES.items()}
    offsets, lengths, ids = [], [], []
    position, start = 0, 0
    started = time.time()
    while start < len(order):
        stop = start + 1
        while stop < len(order) and len(waves[stop]) * (stop - start + 1) <= CACHE_BATCH_SAMPLES:
            stop += 1
        padded, n = pad_waves(waves[start:stop])
        with torch.inference_mode():
            feats, feat_lengths = frontend(padded, n)
            if augmented:
                spec_augment(feats, feat_lengths, rng)
            outputs, out_lengths = encode(network, feats, feat_lengths)
        for row, length in enumerate(out_lengths.tolist()):
            for name, array in arrays.items():
                array[position:position + length] = (
                    outputs[name][row, :, :length].T.numpy().astype(np.float16))
            offsets.append(position)
            lengths.append(length)
            ids.append(corpus[order[start + row]].utt_id)
            position += length
        start = stop
        print(f"cached {start}/{len(order)} {time.time() - started:.0f}s", flush=True)
    for array in arrays.values():
        array.flush()
    write_text_atomic(out / "index.json", json.dumps(
        {"ids": ids, "offsets": offsets, "lengths": lengths, "frames": position}))
    (out / "done").touch()


def encode(network: QuartzNet, feats: torch.Tensor, lengths: torch.Tensor,
           ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The outputs the heads read (SOURCES, each (B, channels, T)) and the frame counts;
    the epilog output is what the network's output head receives."""
    captured: dict[str, torch.Tensor] = {}
    hook = network.head.register_forward_hook(
        lambda module, inputs, output: captured.__setitem__("epilog", inputs[0]))
    try:
        result = network(feats, lengths, layers=(5, 11))
    finally:
        hook.remove()
    return ({"block5": result.hidden[5], "block11": result.hidden[11],
             "epilog": captured["epilog"].squeeze(2)}, result.lengths)


class Cache:
    """Cached encoder outputs of one pass over a corpus, in RAM."""

    def __init__(self, folder: Path, sources: tuple[str, ...] = tuple(SOURCES)) -> None:
        index = json.loads((folder / "index.json").read_text())
        self.ids: list[str] = index["ids"]
        self.offsets: list[int] = index["offsets"]
        self.lengths: list[int] = index["lengths"]
        self.arrays = {name: np.ascontiguousarray(
            np.load(folder / f"{name}.npy", mmap_mode="r")[: index["frames"]]) for name in sources}

    def batch(self, items: list[int], source: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, channels, 1, T) float32 channels-last inputs and (B,) lengths."""
        lengths = [self.lengths[i] for i in items]
        out = np.zeros((len(items), max(lengths), SOURCES[source]), dtype=np.float32)
        for row, i in enumerate(items):
            out[row, : lengths[row]] = self.arrays[source][self.offsets[i]:
                                                           self.offsets[i] + lengths[row]]
        x = torch.from_numpy(out).permute(0, 2, 1).unsqueeze(2)
        return x.contiguous(memory_format=torch.channels_last), torch.tensor(lengths)


# ----------------------------------------------------------------------------- heads

def make_heads(pieces: int) -> dict[str, CTCHead]:
    heads = {}
    for name, (source, units, kernel, hidden) in HEADS.items():
        classes = pieces + 1 if units == "pieces" else len(PHONE_LABELS)
        heads[name] = CTCHead(SOURCES[source], HeadSpec(name, 0, classes, False, kernel, hidden))
    return heads


def scales(cache: Cache) -> dict[str, torch.Tensor]:
    """Per-channel 1 / RMS of each source, from every 7th frame."""
    return {name: torch.from_numpy(1.0 / np.sqrt((a[::7].astype(np.float32) ** 2).mean(0)
                                                 + 1e-6)).float()
            for name, a in cache.arrays.items()}


@dataclass(frozen=True)
class Targets:
    """Reference label ids per utterance and the labels, by unit kind."""

    refs: dict[str, dict[str, list[int]]]  # "pieces" | "phones" -> utterance id -> ids
    labels: dict[str, list[str]]  # "pieces" | "phones" -> labels, blank last

    def truths(self, units: str, ids: Sequence[str]) -> list[list[str]]:
        return [[self.labels[units][t] for t in self.refs[units][i]] for i in ids]


def evaluate(heads: dict[str, CTCHead], cache: Cache, scale: dict[str, torch.Tensor],
             targets: Targets) -> dict[str, float]:
    """Greedy error rate per head: word error rate for pieces, phone error rate for phones."""
    errors = {}
    with torch.no_grad():
        for name, head in heads.items():
            source, units = HEADS[name][:2]
            head.eval()
            hyps = []
            for i in range(len(cache.ids)):
                x, _ = cache.batch([i], source)
                logits = head(x * scale[source].view(1, -1, 1, 1))
                lp = torch.log_softmax(logits[0, :, 0, :], dim=0).T.numpy()
                hyps.append(greedy_labels(lp, targets.labels[units]))
            errors[name] = error_rate(targets.truths(units, cache.ids), hyps,
                                      phones=units == "phones")
    return errors


def export(run: Path, base: Path, out: Path, output: str = "pieces",
           state_file: str = "heads.pt") -> None:
    """Write ``out``: the stage-1 encoder of ``base`` with the best heads of ``run``.

    ``output="chars"`` keeps the character output and adds only the auxiliary heads (their
    sentencepiece model is written next to them as ``tokenizer.model``). A ``state_file``
    of ``train_top`` (``top_best.pt``) also replaces the convolutions it fine-tuned; a head
    with a ``back`` projection is exported with feedback.
    """
    state = torch.load(run / state_file, map_location="cpu", weights_only=False)
    folder = read_folder(base)
    config = dict(folder.config)
    weights = {k: v for k, v in folder.weights.items() if not k.startswith("heads.")}
    weights.update(state.get("encoder", {}))
    pieces = state["pieces"]
    conv = {c["name"]: c for c in config["convolutions"]}
    head_entries: list[dict[str, Any]] = []
    for name, (source, units, kernel, hidden) in HEADS.items():
        params = {k: v.float().numpy() for k, v in state["best"][name].items()}
        scale = state["scale"][source].numpy()
        first = "dw" if kernel > 1 else "hidden" if hidden else "proj"
        if first == "dw":  # depthwise: channel c's taps read only channel c
            params["dw.weight"] = params["dw.weight"] * scale[:, None, None, None]
        else:
            params[f"{first}.weight"] = params[f"{first}.weight"] * scale[None, :, None, None]
        params = {k: v[:, :, 0, :] if v.ndim == 4 else v for k, v in params.items()}
        if name == "output" and output == "chars":
            continue
        if name == "output":  # epilog.2 (dw + pw) and the new main head
            weights["epilog.2.dw.weight"] = params["dw.weight"]
            weights["epilog.2.pw.weight"] = params["hidden.weight"]
            weights["epilog.2.pw.bias"] = params["hidden.bias"]
            weights["head.weight"] = params["proj.weight"]
            weights["head.bias"] = params["proj.bias"]
            channels = SOURCES[source]
            epilog = [
                {"name": "epilog.2.dw", "out_channels": channels, "kernel_size": kernel,
                 "stride": 1, "padding": kernel // 2, "dilation": 1, "groups": channels,
                 "bias": False},
                {"name": "epilog.2.pw", "out_channels": hidden, "kernel_size": 1, "stride": 1,
                 "padding": 0, "dilation": 1, "groups": 1, "bias": True}]
            conv["head"] = dict(conv["head"], out_channels=len(pieces) + 1)
            names = [c["name"] for c in config["convolutions"] if c["name"] != "head"]
            config["convolutions"] = [conv[n] for n in names] + epilog + [conv["head"]]
        else:
            for key, value in params.items():
                weights[f"heads.{name}.{key}"] = value
            head_entries.append({"name": name, "layer": int(source.removeprefix("block")),
                                 "classes": int(params["proj.bias"].shape[0]),
                                 "feedback": "back.weight" in params, "kernel": kernel,
                                 "hidden": hidden})
    if output == "pieces":
        config["labels"] = pieces
        config["blank_index"] = len(pieces)
        config["tokenizer"] = "tokenizer.model"
    else:
        config["head_tokenizer"] = "tokenizer.model"  # the sentencepiece model of ctc_5/11
    config["heads"] = head_entries
    config["head_labels"] = {e["name"]: (pieces + [""] if HEADS[e["name"]][1] == "pieces"
                                         else list(PHONE_LABELS)) for e in head_entries}
    config["model"] = (f"ctc-biasing default: QuartzNet 15x5 encoder fine-tuned, with "
                       f"{'a sentencepiece' if output == 'pieces' else 'its character'} output "
                       "head, intermediate sentencepiece CTC heads and a phone head")
    config["heads_epochs"] = int(state["epoch"])
    if "top_steps" in state:
        config["top_steps"] = int(state["top_steps"])
    write_folder(out, config, weights, files={"tokenizer.model": run / "tokenizer.model"})
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file()) / 1e6
    print(f"wrote {out} ({size:.1f} MB)")


# ----------------------------------------------------------------------------- train

def prepare(args: argparse.Namespace, log: RunLog
            ) -> tuple[Targets, list[Cache], Cache]:
    """Targets, then the cached training passes and validation pass (made if missing)."""
    corpus = load_corpus()
    if args.limit:
        corpus = corpus[:: len(corpus) // args.limit]
    train, valid = validation_split(corpus)
    spm_path = args.run / "tokenizer.model"
    if not spm_path.is_file():
        train_tokenizer([u.text for u in train], args.vocab, spm_path)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_path))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    targets = Targets(refs={"pieces": {u.utt_id: sp.encode(u.text) for u in corpus},
                            "phones": phone_targets(corpus)},
                      labels={"pieces": [*pieces, ""], "phones": list(PHONE_LABELS)})
    started = time.time()
    network, frontend, _, _ = base_network(args.base)
    passes = [("valid", valid, False)] + [(f"train{c}", train, c > 0) for c in range(args.copies)]
    for name, utts, augmented in passes:
        folder = args.run / "cache" / name
        if not (folder / "done").is_file():
            folder.mkdir(parents=True, exist_ok=True)
            cache_features(network, frontend, utts, folder, augmented, args.seed)
    train_caches = [Cache(args.run / "cache" / f"train{c}") for c in range(args.copies)]
    log(f"cached {sum(len(c.ids) for c in train_caches)} training passes, "
        f"{sum(sum(c.lengths) for c in train_caches)} frames, {time.time() - started:.0f}s")
    return targets, train_caches, Cache(args.run / "cache" / "valid")


def train_epoch(heads: dict[str, CTCHead], optimizer: torch.optim.Optimizer,
                caches: list[Cache], scale: dict[str, torch.Tensor], targets: Targets,
                epoch: int, args: argparse.Namespace) -> dict[str, float]:
    """One pass over every cached batch; returns each head's mean loss."""
    steps_per_epoch = sum(len(batches(c.lengths, BATCH_FRAMES, len(c.lengths), 0))
                          for c in caches)
    total_steps = steps_per_epoch * args.epochs
    params = [p for head in heads.values() for p in head.parameters()]
    for head in heads.values():
        head.train()
    work = [(c, b) for c in caches
            for b in batches(c.lengths, BATCH_FRAMES, len(c.lengths), args.seed + epoch)]
    random.Random(args.seed + epoch).shuffle(work)
    sums = dict.fromkeys(heads, 0.0)
    for position, (cache, items) in enumerate(work):
        step = epoch * steps_per_epoch + position
        warm = min(1.0, (step + 1) / 200)
        for group in optimizer.param_groups:
            group["lr"] = args.lr * warm * 0.5 * (1 + np.cos(np.pi * step / total_steps))
        losses = []
        inputs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for name, head in heads.items():
            source, units = HEADS[name][:2]
            if source not in inputs:
                x, n = cache.batch(items, source)
                inputs[source] = (x * scale[source].view(1, -1, 1, 1), n)
            x, n = inputs[source]
            loss = ctc(head(x, frame_mask(x, n)).squeeze(2), n,
                       [targets.refs[units][cache.ids[i]] for i in items],
                       len(targets.labels[units]) - 1)
            losses.append(loss)
            sums[name] += loss.item()
        optimizer.zero_grad()
        torch.stack(losses).sum().backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        optimizer.step()
        if position % 50 == 0:
            print(f"epoch {epoch} step {position}/{len(work)} "
                  + " ".join(f"{k} {v.item():.3f}" for k, v in zip(heads, losses)), flush=True)
    return {name: total / len(work) for name, total in sums.items()}


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.export is not None:
        export(args.run, args.base, args.export, args.output, args.state)
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.time()
    log = RunLog(args.run / "log.tsv")
    targets, train_caches, valid_cache = prepare(args, log)
    pieces = targets.labels["pieces"][:-1]
    heads = make_heads(len(pieces))
    optimizer = torch.optim.AdamW([p for h in heads.values() for p in h.parameters()],
                                  lr=args.lr, weight_decay=1e-2)
    checkpoint = args.run / "heads.pt"
    epoch = 0
    scale = scales(train_caches[0])
    best = {name: (float("inf"), {k: v.clone() for k, v in h.state_dict().items()})
            for name, h in heads.items()}
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        for name, head in heads.items():
            head.load_state_dict(state["heads"][name])
        optimizer.load_state_dict(state["optimizer"])
        epoch, scale = state["epoch"], state["scale"]
        best = {name: (state["best_error"][name], state["best"][name]) for name in heads}
        log(f"resumed after epoch {epoch}")
    while epoch < args.epochs and (time.time() - started) / 60 < args.minutes:
        losses = train_epoch(heads, optimizer, train_caches, scale, targets, epoch, args)
        epoch += 1
        errors = evaluate(heads, valid_cache, scale, targets)
        for name, head in heads.items():
            if errors[name] < best[name][0]:
                best[name] = (errors[name], {k: v.clone() for k, v in head.state_dict().items()})
        log(f"epoch {epoch}\t" + "\t".join(
            f"{name} loss {losses[name]:.3f} err {100 * errors[name]:.1f}" for name in heads)
            + f"\t{time.time() - started:.0f}s")
        save_checkpoint({
            "heads": {n: h.state_dict() for n, h in heads.items()},
            "optimizer": optimizer.state_dict(), "epoch": epoch, "scale": scale,
            "best": {n: b[1] for n, b in best.items()},
            "best_error": {n: b[0] for n, b in best.items()}, "pieces": pieces}, checkpoint)


if __name__ == "__main__":
    main()
