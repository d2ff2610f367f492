"""Stage 3 of the default model: blocks 6-14 fine-tuned with self-conditioned CTC heads.

Stage 2 (``train_heads``) trained new heads on the frozen stage-1 encoder, so they could
not feed back (a feedback projection changes the input of every block above it) and the
sentencepiece output had to make do with features learnt for characters. Here the top of
the encoder trains with them, from the block-5 outputs stage 2 cached (``RUN/cache``;
blocks 0-5 and the front-end stay frozen):

- ``ctc_5`` reads block 5 and its softmax goes back through ``back`` into block 6's input;
- ``ctc_11`` does the same after block 11; ``phones`` reads block 11 too (no feedback);
- the sentencepiece ``output`` head and the stage-1 character head (``chars``) both read
  the epilog, so the export can give the folder either main output.

Every head starts from its stage-2 state and every feedback projection at zero, so step 0
computes exactly the stage-2 model. The pretrained convolutions learn at ``--lr`` (5e-5; at
3e-4 validation WER rose for the first 200 steps), the heads at 4x and the new feedback
projections at 20x. Loss: CTC of the two outputs plus 0.3 x CTC of each
intermediate head. bfloat16 autocast (1.7x faster on CPUs with avx512_bf16; the CTC loss
and the weights stay float32). Resumable (``RUN/top.pt``); validation greedy WER every
``--eval-every`` steps, keeping the best state by the ``--select`` output's WER (the
sentencepiece output by default, as for the bundled model).

    python -m recipes.default_model.train_top RUN --base STAGE1 --epochs 2 --eval-every 61
    python -m recipes.default_model.train_heads RUN --base STAGE1 --state top_best.pt \
        --export DIR --output chars
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from biasing.models import greedy_labels
from biasing.models.quartznet import (
    Block,
    CTCHead,
    DwPw,
    HeadSpec,
    QuartzNet,
    frame_mask,
    network_arrays,
)
from recipes.common import (
    PHONE_LABELS,
    RunLog,
    batches,
    ctc,
    error_rate,
    load_corpus,
    phone_targets,
    save_checkpoint,
)
from recipes.default_model.train_heads import (
    BATCH_FRAMES,
    HEADS,
    SOURCES,
    Cache,
    Targets,
    base_network,
)

FIRST = 6  # first trained block; blocks 0..5 are frozen and read from the cache
FEEDBACK = ("ctc_5", "ctc_11")
WEIGHTS = {"output": 1.0, "chars": 1.0, "ctc_5": 0.3, "ctc_11": 0.3, "phones": 0.3}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="the run folder of train_heads")
    parser.add_argument("--base", type=Path, required=True,
                        help="the stage-1 model folder train_heads read")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=1e9)
    parser.add_argument("--lr", type=float, default=5e-5,
                        help="the encoder's rate; heads 4x, feedback projections 20x")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--select", choices=("output", "chars"), default="output",
                        help="the output whose validation WER picks the state kept")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


class Top(nn.Module):
    """Blocks FIRST.. and the epilog of a QuartzNet, with the auxiliary heads on them."""

    blocks: nn.ModuleList
    epilog: nn.ModuleList
    chars: nn.Conv2d
    heads: nn.ModuleDict

    def __init__(self, network: QuartzNet, heads: dict[str, CTCHead],
                 scale: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(network.blocks[FIRST:])
        self.epilog = network.epilog
        self.chars = network.head
        self.heads = nn.ModuleDict(heads)
        self.scale = {name: s.view(1, -1, 1, 1) for name, s in scale.items()}

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits (B, classes, T) of every head for (B, 256, 1, T) block-5 outputs."""
        mask = frame_mask(x, lengths)
        logits: dict[str, torch.Tensor] = {}

        def read(name: str, source: str, features: torch.Tensor) -> None:
            logits[name] = self.head(name)(features * self.scale[source], mask)

        read("ctc_5", "block5", x)
        x = x + self.head("ctc_5").feedback(logits["ctc_5"])
        for index, block in enumerate(self.blocks, FIRST):
            assert isinstance(block, Block)
            x = QuartzNet.run_block(block, x, mask)
            if index == 11:
                read("phones", "block11", x)
                read("ctc_11", "block11", x)
                x = x + self.head("ctc_11").feedback(logits["ctc_11"])
        for unit in self.epilog:
            assert isinstance(unit, DwPw)
            x = torch.relu(QuartzNet.run_unit(unit, x, mask))
        read("output", "epilog", x)
        logits["chars"] = self.chars(x)
        return {name: value.squeeze(2) for name, value in logits.items()}

    def head(self, name: str) -> CTCHead:
        head = self.heads[name]
        assert isinstance(head, CTCHead)
        return head

    def encoder_arrays(self) -> dict[str, np.ndarray]:
        """The trained convolutions under their weights.npz names."""
        out = network_arrays(self.epilog, "epilog.")
        out.update(network_arrays(self.chars, "head."))
        for index, block in enumerate(self.blocks, FIRST):
            out.update(network_arrays(block, f"blocks.{index}."))
        return out


def stage2_heads(state: dict) -> dict[str, CTCHead]:
    """The best stage-2 heads, with zero feedback projections on ``FEEDBACK``."""
    heads = {}
    for name, (source, _, kernel, hidden) in HEADS.items():
        params = state["best"][name]
        spec = HeadSpec(name, 0, int(params["proj.bias"].shape[0]), name in FEEDBACK, kernel,
                        hidden)
        heads[name] = CTCHead(SOURCES[source], spec)
        missing, unexpected = heads[name].load_state_dict(params, strict=False)
        assert not unexpected and set(missing) <= {"back.weight"}, (missing, unexpected)
    return heads


def unit_of(name: str) -> str:
    return "chars" if name == "chars" else HEADS[name][1]


def evaluate(top: Top, cache: Cache, targets: Targets) -> dict[str, float]:
    """Greedy validation error per head: WER for words, PER for phones."""
    top.eval()
    hyps: dict[str, list[list[str]]] = {name: [] for name in WEIGHTS}
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for i in range(len(cache.ids)):
            x, n = cache.batch([i], "block5")
            for name, logits in top(x, n).items():
                lp = torch.log_softmax(logits[0].float(), dim=0).T.numpy()
                hyps[name].append(greedy_labels(lp, targets.labels[unit_of(name)]))
    top.train()
    return {name: error_rate(targets.truths(unit_of(name), cache.ids), hyps[name],
                             phones=unit_of(name) == "phones") for name in WEIGHTS}


def load_targets(run: Path, pieces: list[str], char_labels: list[str]) -> Targets:
    """Piece, character and phone targets of the training corpus."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(run / "tokenizer.model"))
    char_index = {c: i for i, c in enumerate(char_labels)}
    corpus = load_corpus()
    return Targets(
        refs={"pieces": {u.utt_id: sp.encode(u.text) for u in corpus},
              "chars": {u.utt_id: [char_index[c] for c in u.text] for u in corpus},
              "phones": phone_targets(corpus)},
        labels={"pieces": [*pieces, ""], "chars": [*char_labels, ""],
                "phones": list(PHONE_LABELS)})


def make_optimizer(top: Top, lr: float) -> torch.optim.Optimizer:
    """AdamW with the encoder at ``lr``, the heads at 4x and the feedback projections at 20x
    (each group's "scale"); the trained weights move slowest."""
    feedback = [p for name, p in top.named_parameters() if name.endswith("back.weight")]
    heads = [p for name, p in top.named_parameters()
             if name.startswith("heads.") and not name.endswith("back.weight")]
    encoder = [p for name, p in top.named_parameters() if not name.startswith("heads.")]
    return torch.optim.AdamW([
        {"params": encoder, "scale": 1.0}, {"params": heads, "scale": 4.0},
        {"params": feedback, "scale": 20.0}], lr=lr, weight_decay=1e-2)


def work_plan(caches: list[Cache], epochs: int, seed: int) -> list[tuple[Cache, list[int]]]:
    """Every step's (cache, batch), epoch after epoch, each epoch in a seeded order."""
    plans = [[(c, b) for c in caches for b in batches(c.lengths, BATCH_FRAMES, len(c.lengths),
                                                       seed + epoch)]
             for epoch in range(epochs)]
    for epoch, plan in enumerate(plans):
        random.Random(seed + epoch).shuffle(plan)
    return [item for plan in plans for item in plan]


def train_step(top: Top, optimizer: torch.optim.Optimizer, cache: Cache, items: list[int],
               targets: Targets, rate: float) -> dict[str, float]:
    """One optimiser step at ``rate`` times each group's scale; returns the losses."""
    for group in optimizer.param_groups:
        group["lr"] = rate * group["scale"]
    x, n = cache.batch(items, "block5")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = top(x, n)
    losses = {name: ctc(logits[name], n,
                        [targets.refs[unit_of(name)][cache.ids[i]] for i in items],
                        len(targets.labels[unit_of(name)]) - 1) for name in WEIGHTS}
    optimizer.zero_grad()
    torch.stack([WEIGHTS[k] * v for k, v in losses.items()]).sum().backward()
    torch.nn.utils.clip_grad_norm_(list(top.parameters()), 5.0)
    optimizer.step()
    return {name: value.item() for name, value in losses.items()}


def best_state(top: Top, step: int, errors: dict[str, float]) -> dict[str, Any]:
    """What top_best.pt keeps of the current state."""
    return {"encoder": top.encoder_arrays(), "step": step, "errors": errors,
            "heads": {name: {k: v.clone() for k, v in head.state_dict().items()}
                      for name, head in top.heads.items()}}


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.time()
    log = RunLog(args.run / "top_log.tsv")
    stage2 = torch.load(args.run / "heads.pt", map_location="cpu", weights_only=False)
    pieces: list[str] = stage2["pieces"]
    network, _, config, _ = base_network(args.base)
    targets = load_targets(args.run, pieces, list(config["labels"]))
    valid = Cache(args.run / "cache" / "valid", ("block5",))
    train = [Cache(args.run / "cache" / name, ("block5",)) for name in ("train0", "train1")
             if (args.run / "cache" / name / "done").is_file()]
    top = Top(network, stage2_heads(stage2), stage2["scale"]).train()
    optimizer = make_optimizer(top, args.lr)
    checkpoint = args.run / "top.pt"
    step, best_error, best = 0, float("inf"), None
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        top.load_state_dict(state["top"])
        optimizer.load_state_dict(state["optimizer"])
        step, best_error, best = state["step"], state["best_error"], state["best"]
        log(f"resumed at step {step}")
    else:
        errors = evaluate(top, valid, targets)
        log("step 0\t" + "\t".join(f"{k} {100 * v:.1f}" for k, v in errors.items()))

    def save() -> None:
        payload = {"top": top.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                   "best_error": best_error, "best": best}
        save_checkpoint(payload, checkpoint)

    work = work_plan(train, args.epochs, args.seed)
    sums = dict.fromkeys(WEIGHTS, 0.0)
    while step < len(work) and (time.time() - started) / 60 < args.minutes:
        cache, items = work[step]
        rate = (args.lr * min(1.0, (step + 1) / 100)  # warm-up, then cosine decay
                * 0.5 * (1 + np.cos(np.pi * step / len(work))))
        for name, value in train_step(top, optimizer, cache, items, targets, rate).items():
            sums[name] += value
        step += 1
        if step % args.eval_every == 0 or step == len(work):
            errors = evaluate(top, valid, targets)
            if errors[args.select] < best_error:
                best_error, best = errors[args.select], best_state(top, step, errors)
            log(f"step {step}\t" + "\t".join(
                f"{k} loss {sums[k] / args.eval_every:.3f} err {100 * errors[k]:.1f}"
                for k in WEIGHTS) + f"\t{time.time() - started:.0f}s")
            sums = dict.fromkeys(WEIGHTS, 0.0)
            save()
    save()
    if best is not None:
        save_checkpoint({"best": best["heads"], "encoder": best["encoder"],
                         "scale": stage2["scale"], "pieces": pieces, "epoch": stage2["epoch"],
                         "top_steps": best["step"]}, args.run / "top_best.pt")
        log(f"best at step {best['step']}: " + " ".join(
            f"{k} {100 * v:.1f}" for k, v in best["errors"].items()))


if __name__ == "__main__":
    main()
