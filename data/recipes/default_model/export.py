"""Export a training run of ``train.py`` as a model folder ``load_model`` reads.

Writes OUT/config.json (front-end, convolutions, heads, labels), OUT/weights.npz (every
convolution weight as int8 with a float32 scale per output channel, biases float32) and
OUT/tokenizer.model (sentencepiece runs only). The model card (OUT/README.md) is kept up to date by hand.

    python data/recipes/default_model/export.py RUN data/models/default [--head-from phones=RUN2]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch

from biasing.models.quartznet import quantize_int8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--head-from", action="append", default=[], metavar="NAME=RUN",
                        help="take a head without feedback (e.g. phones) from another run")
    args = parser.parse_args()
    state = torch.load(args.run / "checkpoint.pt", map_location="cpu")["network"]
    for spec in args.head_from:  # NAME=RUN: that auxiliary head's weights from another run
        name, _, other = spec.partition("=")
        donor = torch.load(Path(other) / "checkpoint.pt", map_location="cpu")["network"]
        taken = {k: v for k, v in donor.items() if k.startswith(f"heads.{name}.")}
        if not taken or any(k.endswith(".back.weight") for k in taken):
            raise SystemExit(f"--head-from {spec}: no head {name!r} there, or it feeds back "
                             "(its weights would change the output)")
        state.update(taken)
    weights = {}
    for name, tensor in state.items():
        array = tensor.float().numpy()
        if array.ndim == 4:  # Conv2d (out, in, 1, k) -> Conv1d (out, in, k)
            array = array[:, :, 0, :]
        weights[name.replace("subs.", "sub.")] = array
    config = json.loads((args.run / "config.json").read_text())
    units = "sentencepiece units" if config.get("tokenizer") else "characters"
    config["model"] = (f"ctc-biasing default: QuartzNet 15x5 fine-tuned ({units}) with "
                       "self-conditioned intermediate CTC heads and a phone head")
    config["license"] = ("CC-BY-SA-4.0 (adapted from NVIDIA NeMo stt_en_quartznet15x5, CC-BY-4.0; "
                         "trained on speech of Earnings-21 text, CC-BY-SA-4.0): see README.md")
    config["trained_steps"] = int(torch.load(args.run / "checkpoint.pt",
                                             map_location="cpu")["step"])
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "weights.npz", **quantize_int8(weights))
    (args.out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    if config.get("tokenizer"):
        shutil.copyfile(args.run / config["tokenizer"], args.out / config["tokenizer"])
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 1e6
    print(f"wrote {args.out} ({size:.1f} MB, step {config['trained_steps']})")


if __name__ == "__main__":
    main()
