"""Export a stage-1 run of ``recipes.default_model.train`` as a model folder.

Writes OUT/config.json (front-end, convolutions, heads, labels) and OUT/weights.npz (every
convolution weight as int8 with a float32 scale per output channel, biases float32); see
``biasing.models.quartznet.folder``. The model card (README.md) is kept up to date by hand.

    python -m recipes.default_model.export RUN STAGE1 [--head-from phones=RUN2]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from biasing.models.quartznet import network_arrays, write_folder


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--head-from", action="append", default=[], metavar="NAME=RUN",
                        help="take a head without feedback (e.g. phones) from another run")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    checkpoint = torch.load(args.run / "checkpoint.pt", map_location="cpu")
    state = checkpoint["network"]
    for spec in args.head_from:  # NAME=RUN: that auxiliary head's weights from another run
        name, _, other = spec.partition("=")
        donor = torch.load(Path(other) / "checkpoint.pt", map_location="cpu")["network"]
        taken = {k: v for k, v in donor.items() if k.startswith(f"heads.{name}.")}
        if not taken or any(k.endswith(".back.weight") for k in taken):
            raise SystemExit(f"--head-from {spec}: no head {name!r} there, or it feeds back "
                             "(its weights would change the output)")
        state.update(taken)
    weights = network_arrays(state)  # state_dict keys are the weights.npz names
    config = json.loads((args.run / "config.json").read_text())
    config["model"] = ("ctc-biasing default: QuartzNet 15x5 fine-tuned (characters) with "
                       "self-conditioned intermediate CTC heads and a phone head")
    config["license"] = ("CC-BY-SA-4.0 (adapted from NVIDIA NeMo stt_en_quartznet15x5, "
                         "CC-BY-4.0; trained on speech of Earnings-21 text, CC-BY-SA-4.0): "
                         "see README.md")
    config["trained_steps"] = int(checkpoint["step"])
    write_folder(args.out, config, weights)
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 1e6
    print(f"wrote {args.out} ({size:.1f} MB, step {config['trained_steps']})")


if __name__ == "__main__":
    main()
