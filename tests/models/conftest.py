"""Fixtures for model tests: the shared QuartzNet folder, and a tiny random QuartzNet.

The tiny model has the real folder layout (config.json + weights.npz) and structure
(strided prolog, blocks of dw/pw sub-blocks with a residual, a dilated epilog, a head), so
every code path runs in milliseconds without ../shared.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
QUARTZNET_DIR = SHARED / "models" / "quartznet15x5"

TINY_LABELS = [" ", "a", "b", "c", "'"]  # blank is index 5, after the labels, as in NeMo
TINY_MELS = 8


def _conv(name: str, out: int, kernel: int = 1, stride: int = 1, dilation: int = 1,
          groups: int = 1) -> dict[str, Any]:
    return {
        "name": name, "groups": groups, "dilation": dilation, "out_channels": out,
        "padding": dilation * (kernel - 1) // 2, "kernel_size": kernel, "stride": stride,
        "bias": kernel == 1,
    }


def write_tiny_quartznet(folder: Path, seed: int = 0) -> Path:
    """Write a random 2-block QuartzNet (8 mels, 6 classes) to ``folder``."""
    rng = np.random.default_rng(seed)
    convs = [_conv("prolog.dw", TINY_MELS, 5, stride=2, groups=TINY_MELS),
             _conv("prolog.pw", 16)]
    channels_in = 16
    for block, channels in enumerate((16, 24)):
        width = channels_in
        for sub in range(2):
            convs.append(_conv(f"blocks.{block}.sub.{sub}.dw", width, 3, groups=width))
            convs.append(_conv(f"blocks.{block}.sub.{sub}.pw", channels))
            width = channels
        convs.append(_conv(f"blocks.{block}.residual", channels))
        channels_in = channels
    convs += [_conv("epilog.0.dw", 24, 5, dilation=2, groups=24), _conv("epilog.0.pw", 24),
              _conv("epilog.1.pw", 32), _conv("head", len(TINY_LABELS) + 1)]
    weights: dict[str, np.ndarray] = {}
    channels = TINY_MELS
    for conv in convs:
        in_per_group = 1 if conv["groups"] > 1 else channels
        if conv["name"].endswith("residual"):
            in_per_group = weights[conv["name"].replace("residual", "sub.0.dw") + ".weight"].shape[0]
        shape = (conv["out_channels"], in_per_group, conv["kernel_size"])
        weights[conv["name"] + ".weight"] = (
            rng.standard_normal(shape) / np.sqrt(in_per_group * conv["kernel_size"])
        ).astype(np.float32)
        if conv["bias"]:
            weights[conv["name"] + ".bias"] = (0.1 * rng.standard_normal(conv["out_channels"])
                                              ).astype(np.float32)
        if not conv["name"].endswith("residual"):
            channels = conv["out_channels"]
    config = {
        "sample_rate": 16000,
        "labels": TINY_LABELS,
        "blank_index": len(TINY_LABELS),
        "features": {
            "type": "log-mel", "n_mels": TINY_MELS, "n_fft": 512, "win_length": 320,
            "hop_length": 160, "window": "hann (periodic)", "center": True,
            "preemphasis": 0.97, "mel": "librosa-style Slaney mel filterbank, fmin 0, fmax 8000",
            "power": 2.0, "log": "natural log of (mel power + 2**-24)", "dither": 0.0,
            "normalize": {"fixed_mean": [-10.0] * TINY_MELS, "fixed_std": [3.0] * TINY_MELS},
        },
        "convolutions": convs,
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    np.savez(folder / "weights.npz", **weights)
    return folder


@pytest.fixture(scope="session", autouse=True)
def _single_torch_thread() -> Iterator[None]:
    """Run model tests on one torch thread.

    The depthwise convolutions issue thousands of small ops; with two OpenMP threads on a
    machine that is busy with other work every op waits on a descheduled thread, which can
    make a forward pass 30x slower. One thread keeps the suite fast on a shared machine.
    """
    try:
        import torch
    except ImportError:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_quartznet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_quartznet(tmp_path_factory.mktemp("tiny_quartznet"))


@pytest.fixture(scope="session")
def quartznet_dir() -> Path:
    if not (QUARTZNET_DIR / "weights.npz").is_file():
        pytest.skip(f"real QuartzNet not available: {QUARTZNET_DIR} is absent (needs ../shared)")
    return QUARTZNET_DIR
