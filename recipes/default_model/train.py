"""Stage 1 of the default model: QuartzNet 15x5 fine-tuned with self-conditioned
intermediate CTC heads and a phone CTC head.

Start: NVIDIA's pretrained QuartzNet 15x5 (characters, CC-BY-4.0) from
``shared_root()/models/quartznet15x5``. CTC heads with feedback over the output characters
are added on blocks 5 and 11 (the method's 6th and 12th layers) and a phone head (39
stressless ARPAbet phones + blank, targets from CMUdict / G2P) on block 11. New heads and
feedback projections start at zero, so step 0 computes exactly the pretrained network. The
first ``--freeze-steps`` steps train the new heads only; then every weight learns,
pretrained layers at a low rate. Stage 2 (``train_heads``) trains sentencepiece heads on
the frozen result; a sentencepiece *output* trained here from the character head never left
CTC's all-blank plateau in the steps a CPU session allows (see the model card).

Loss: ``(1 - inter) * ctc(output) + inter * mean(ctc(ctc_5), ctc(ctc_11)) + phone *
ctc(phones)``.

Data (``recipes.common``): speechocean762 *train* (real speech; 100 utterances kept for
validation) and the synthetic training speech, with speed perturbation, noise,
reverberation, gain and SpecAugment. speechocean762 *test*, the held-out voices and the dev
benchmark entities are never used.

Resumable: ``RUN/checkpoint.pt`` is written every ``--save-every`` steps and read on start;
``RUN/log.tsv`` logs losses and validation WER. Stops after ``--steps`` or ``--minutes``.

    python -m recipes.default_model.train RUN [--minutes 46]
    python -m recipes.default_model.export RUN STAGE1
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from biasing.models import greedy_labels
from biasing.models.frontend import LogMelFrontend
from biasing.models.quartznet import (
    HeadSpec,
    QuartzNet,
    build_network,
    frontend_config,
    read_folder,
)
from biasing.paths import shared_root, write_text_atomic
from recipes import common

INTER_LAYERS = (5, 11)  # self-conditioned character heads
PHONE_LAYER = 11
MAX_BATCH = 32  # utterances per batch at most
# Parameter groups, each with its own learning rate (see param_groups).
LOWER, HEADS, FEEDBACK, OUTPUT, TOP = range(5)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--base", type=Path,
                        default=shared_root() / "models" / "quartznet15x5",
                        help="the pretrained QuartzNet folder")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--minutes", type=float, default=1e9, help="stop after this long")
    parser.add_argument("--batch-seconds", type=float, default=80.0)
    parser.add_argument("--lr", type=float, default=3e-5, help="pretrained layers")
    parser.add_argument("--head-lr", type=float, default=2e-3, help="auxiliary heads")
    parser.add_argument("--output-lr", type=float, default=3e-5, help="the output head")
    parser.add_argument("--top-lr", type=float, default=3e-5, help="blocks from --top-block")
    parser.add_argument("--top-block", type=int, default=12)
    parser.add_argument("--feedback-lr", type=float, default=1e-4,
                        help="self-conditioning feedback projections")
    parser.add_argument("--freeze-steps", type=int, default=100,
                        help="first steps train the head projections only")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--inter", type=float, default=0.3)
    parser.add_argument("--phone", type=float, default=0.3)
    parser.add_argument("--save-every", type=int, default=25)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--init", type=Path, help="start from this run's checkpoint.pt weights")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- build

def build(base: Path) -> tuple[QuartzNet, LogMelFrontend, dict]:
    """The pretrained network with zero-initialised auxiliary heads, its front-end, and the
    config a run folder gets (labels and head labels included)."""
    folder = read_folder(base)
    config = dict(folder.config)
    classes = len(config["labels"]) + 1
    heads = [HeadSpec(f"ctc_{layer}", layer, classes, True) for layer in INTER_LAYERS]
    heads.append(HeadSpec("phones", PHONE_LAYER, len(common.PHONE_LABELS), False))
    config["heads"] = [{"name": h.name, "layer": h.layer, "classes": h.classes,
                        "feedback": h.feedback} for h in heads]
    config["blank_index"] = classes - 1
    config["head_labels"] = {**{f"ctc_{layer}": [*config["labels"], ""]
                                for layer in INTER_LAYERS}, "phones": list(common.PHONE_LABELS)}
    network = build_network(config, folder.weights, strict=False)  # new heads start at zero
    return network, LogMelFrontend(frontend_config(config)), config


def param_groups(network: QuartzNet, top_block: int) -> list[list[torch.nn.Parameter]]:
    """Parameters by learning-rate group (LOWER, HEADS, FEEDBACK, OUTPUT, TOP).

    Adam moves every weight by about the rate per step and the ReLU features are all
    positive, so a logit moves by about rate * channels * mean feature: pretrained layers
    learn slowly, new head projections fast, and the top blocks at their own rate.
    """
    groups: list[list[torch.nn.Parameter]] = [[] for _ in range(5)]
    for name, param in network.named_parameters():
        top = name.startswith("epilog.") or (
            name.startswith("blocks.") and int(name.split(".")[1]) >= top_block)
        group = (FEEDBACK if ".back." in name else HEADS if name.startswith("heads.")
                 else OUTPUT if name.startswith("head.") else TOP if top else LOWER)
        groups[group].append(param)
    return groups


# ----------------------------------------------------------------------------- train

@dataclass
class Trainer:
    """The network, its optimiser and what a step needs."""

    network: QuartzNet
    frontend: LogMelFrontend
    optimizer: torch.optim.Optimizer
    groups: list[list[torch.nn.Parameter]]
    base_lrs: list[float]
    args: argparse.Namespace
    device: torch.device
    step: int = 0

    def set_rates(self) -> None:
        """Cosine decay to 10%, with separate warm-ups for heads and the body."""
        args, step = self.args, self.step
        decay = 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.steps))) * 0.9 + 0.1
        head_warmup = min(1.0, (step + 1) / args.warmup)
        body_warmup = min(1.0, max(0, step + 1 - args.freeze_steps) / args.warmup)
        warm = {LOWER: body_warmup, FEEDBACK: body_warmup}
        for index, (group, base_lr) in enumerate(zip(self.optimizer.param_groups,
                                                     self.base_lrs)):
            group["lr"] = base_lr * warm.get(index, head_warmup) * decay

    def train_step(self, batch: list[common.TrainUtterance], targets: dict[str, list[int]],
                   phones: dict[str, list[int]], blank: int) -> dict[str, float]:
        """One optimiser step on ``batch``; returns its losses."""
        args = self.args
        rng = np.random.default_rng(args.seed * 1_000_003 + self.step)
        padded, lengths = common.pad_waves([common.augment(u.float_wave(), rng)
                                            for u in batch])
        # the lower pretrained layers and the feedback start frozen, so random new heads
        # cannot drag the pretrained features around
        frozen = self.step < args.freeze_steps
        for param in self.groups[LOWER] + self.groups[FEEDBACK]:
            param.requires_grad_(not frozen)
        self.network.train()
        with torch.no_grad():
            feats, feat_lengths = self.frontend(padded.to(self.device), lengths.to(self.device))
            common.spec_augment(feats, feat_lengths, rng)
        out = self.network(feats, feat_lengths)
        output = common.ctc(out.logits, out.lengths, [targets[u.utt_id] for u in batch], blank)
        inter = torch.stack([common.ctc(out.heads[f"ctc_{layer}"], out.lengths,
                                        [targets[u.utt_id] for u in batch], blank)
                             for layer in INTER_LAYERS]).mean()
        phone = common.ctc(out.heads["phones"], out.lengths,
                           [phones[u.utt_id] for u in batch], len(common.PHONE_LABELS) - 1)
        loss = (1 - args.inter) * output + args.inter * inter + args.phone * phone
        self.set_rates()
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.network.parameters(), 5.0)
        self.optimizer.step()
        self.step += 1
        return {"loss": loss.item(), "output": output.item(), "inter": inter.item(),
                "phone": phone.item()}

    def validate(self, valid: list[common.TrainUtterance], labels: list[str]) -> float:
        """Greedy WER of the output head on ``valid``."""
        self.network.eval()
        hyps, refs = [], []
        with torch.no_grad():
            for u in valid:
                wave = torch.from_numpy(u.float_wave())[None]
                feats, n = self.frontend(wave.to(self.device),
                                         torch.tensor([wave.shape[1]]).to(self.device))
                out = self.network(feats, n)
                logprobs = out.logits[0, :, : int(out.lengths[0])].T.cpu().numpy()
                hyps.append(greedy_labels(logprobs, labels))
                refs.append(list(u.text))
        return common.error_rate(refs, hyps, phones=False)

    def save(self, path: Path) -> None:
        """Checkpoint (network, optimiser, step), written atomically."""
        common.save_checkpoint({"network": self.network.state_dict(),
                                "optimizer": self.optimizer.state_dict(), "step": self.step},
                               path)

    def restore(self, path: Path, init: Path | None) -> None:
        """Resume from ``path`` if it exists, else take the weights of ``init`` if given."""
        if path.is_file():
            state = torch.load(path, map_location=self.device)
            self.network.load_state_dict(state["network"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.step = state["step"]
        elif init is not None:  # weights only, fresh optimizer
            self.network.load_state_dict(torch.load(init, map_location=self.device)["network"])


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.time()
    log = common.RunLog(args.run / "log.tsv")
    train, valid = common.validation_split(common.load_corpus())
    network, frontend, config = build(args.base)
    labels = [*config["labels"], ""]  # characters, blank last
    index = {c: i for i, c in enumerate(config["labels"])}
    targets = {u.utt_id: [index[c] for c in u.text] for u in train + valid}
    phones = common.phone_targets(train + valid)
    hours = sum(len(u.wave) for u in train) / common.RATE / 3600
    log(f"{len(train)} training utterances ({hours:.1f} h), {len(valid)} validation")

    device = torch.device(args.device)
    network.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    frontend.to(device)
    groups = param_groups(network, args.top_block)
    base_lrs = [args.lr, args.head_lr, args.feedback_lr, args.output_lr, args.top_lr]
    optimizer = torch.optim.AdamW([{"params": g, "lr": lr} for g, lr in zip(groups, base_lrs)],
                                  weight_decay=1e-3)
    trainer = Trainer(network, frontend, optimizer, groups, base_lrs, args, device)
    checkpoint = args.run / "checkpoint.pt"
    trainer.restore(checkpoint, args.init)
    if trainer.step:
        log(f"resumed at step {trainer.step}")
    write_text_atomic(args.run / "config.json", json.dumps(config, indent=1))

    # batch composition is fixed by length; each epoch only shuffles the batch order
    lengths = [len(u.wave) for u in train]
    budget = args.batch_seconds * common.RATE
    n_batches = len(common.batches(lengths, budget, MAX_BATCH, args.seed))
    while trainer.step < args.steps and (time.time() - started) / 60 < args.minutes:
        epoch, position = divmod(trainer.step, n_batches)
        plan = common.batches(lengths, budget, MAX_BATCH, args.seed + epoch)
        batch = [train[i] for i in plan[position]]
        losses = trainer.train_step(batch, targets, phones, blank=len(labels) - 1)
        log(f"{trainer.step}\t" + "\t".join(f"{v:.4f}" for v in losses.values())
            + f"\t{len(batch)}\t{time.time() - started:.0f}")
        if trainer.step % args.save_every == 0 or trainer.step == args.steps:
            trainer.save(checkpoint)
        if trainer.step % args.eval_every == 0 or trainer.step == args.steps:
            log(f"{trainer.step}\tvalid_wer\t{trainer.validate(valid, labels):.4f}")
    trainer.save(checkpoint)  # whatever stopped the loop


if __name__ == "__main__":
    main()
