"""Export a training run of ``train.py`` as a model folder ``load_model`` reads.

Writes OUT/config.json (front-end, convolutions, heads, labels), OUT/weights.npz (every
convolution weight as int8 with a float32 scale per output channel, biases float32) and
OUT/tokenizer.model. The model card (OUT/README.md) is kept up to date by hand.

    python data/recipes/default_model/export.py RUN data/models/default
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
    args = parser.parse_args()
    state = torch.load(args.run / "checkpoint.pt", map_location="cpu")["network"]
    weights = {}
    for name, tensor in state.items():
        array = tensor.float().numpy()
        if array.ndim == 4:  # Conv2d (out, in, 1, k) -> Conv1d (out, in, k)
            array = array[:, :, 0, :]
        weights[name.replace("subs.", "sub.")] = array
    config = json.loads((args.run / "config.json").read_text())
    config["model"] = ("ctc-biasing default: QuartzNet 15x5 fine-tuned to sentencepiece units "
                       "with self-conditioned intermediate CTC heads and a phone head")
    config["license"] = "CC-BY-4.0 (derived from NVIDIA NeMo stt_en_quartznet15x5)"
    config["trained_steps"] = int(torch.load(args.run / "checkpoint.pt",
                                             map_location="cpu")["step"])
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "weights.npz", **quantize_int8(weights))
    (args.out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    shutil.copyfile(args.run / "tokenizer.model", args.out / "tokenizer.model")
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 1e6
    print(f"wrote {args.out} ({size:.1f} MB, step {config['trained_steps']})")


if __name__ == "__main__":
    main()
