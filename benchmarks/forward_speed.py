"""Real-time factor of the QuartzNet front-end and front-end + forward pass on CPU.

Usage:
    python benchmarks/forward_speed.py [--utterances 50] [--threads 2]

Reads utterances of speechocean762 test in the development data (``shared_root()``;
Kaldi ``wav.scp``, paths relative to the data folder), runs them one at a time (batch 1, after a warm-up) and prints a
markdown table. RTF = processing seconds / audio seconds; below 1 is faster than real time.
Skips with a message when the development data is absent.
"""

from __future__ import annotations

import argparse
import time

from biasing.paths import shared_root

MODEL_DIR = shared_root() / "models" / "quartznet15x5"
DATA_DIR = shared_root() / "data" / "speechocean762"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=50, help="how many test utterances")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)
    if not (MODEL_DIR / "weights.npz").is_file() or not (DATA_DIR / "test" / "wav.scp").is_file():
        print(f"skipped: needs {MODEL_DIR} and {DATA_DIR / 'test'} (development data absent)")
        return 0

    import torch

    from biasing.audio import load_audio
    from biasing.datasets import load_dataset
    from biasing.models import load_model

    torch.set_num_threads(args.threads)
    model = load_model(f"quartznet:{MODEL_DIR}")
    utterances = load_dataset(DATA_DIR, "test")[:args.utterances]
    waves = [load_audio(u.audio, model.sample_rate) for u in utterances]
    audio_s = sum(len(w) for w in waves) / model.sample_rate

    def run_frontend(wave):  # type: ignore[no-untyped-def]
        with torch.inference_mode():
            model.frontend(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))

    def run_full(wave):  # type: ignore[no-untyped-def]
        model.forward([wave])

    rows = []
    for name, step in (("front-end", run_frontend), ("front-end + forward", run_full)):
        step(waves[0])  # warm-up
        start = time.perf_counter()
        for wave in waves:
            step(wave)
        elapsed = time.perf_counter() - start
        rows.append((name, elapsed, elapsed / audio_s))

    print(f"QuartzNet 15x5, {len(waves)} utterances of speechocean762/test, {audio_s:.1f} s of "
          f"audio, batch 1, {args.threads} torch threads, torch {torch.__version__}\n")
    print("| stage | seconds | RTF |")
    print("|---|---:|---:|")
    for name, elapsed, rtf in rows:
        print(f"| {name} | {elapsed:.2f} | {rtf:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
