"""End-to-end speed and accuracy of QuartzNet + biased decoding on speechocean762 test.

Real-time factor (compute seconds / audio seconds) on the CPU threads given (default 2) of
the log-mel front-end + QuartzNet forward pass, and of the whole pipeline (forward + beam
search) with 0, 1,000 and 10,000 distractor entities (Earnings-21 names none of these
utterances contain, topped up with random pseudo-names); greedy and beam WER on the same
utterances. Batch size 1, as a streaming service would run.

    python benchmarks/transcribe_speed.py [--utterances 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import random
import string
import sys
import time

import numpy as np

from biasing import EntityList, build_biased_decoder
from biasing.datasets import load_dataset
from biasing.metrics import wer
from biasing.models import greedy_labels
from biasing.paths import shared_root

SHARED = shared_root()
MODEL = SHARED / "models" / "quartznet15x5"
TEST = SHARED / "data" / "speechocean762"
DISTRACTORS = SHARED / "data" / "earnings21" / "bias_lists" / "distractor_list.txt"


def greedy(logprobs: np.ndarray, labels: list[str]) -> str:
    """Greedy CTC transcript, whitespace normalised."""
    return " ".join("".join(greedy_labels(logprobs, labels)).split())


def distractor_list(size: int, refs: list[str], seed: int = 0) -> EntityList:
    spoken = {w for r in refs for w in r.lower().split()}
    names = [n for n in DISTRACTORS.read_text().splitlines()
             if n.replace(" ", "").isalpha() and not set(n.lower().split()) & spoken]
    rng = random.Random(seed)
    while len(names) < size:
        names.append("".join(rng.choice(string.ascii_lowercase)
                             for _ in range(rng.randint(4, 10))).title())
    return EntityList(names[:size])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beam-width", type=int, default=100)
    args = parser.parse_args()
    if not MODEL.is_dir() or not TEST.is_dir():
        sys.exit(f"skipped: needs {MODEL} and {TEST} (development data)")
    import torch

    from biasing.audio import load_audio
    from biasing.models import load_model

    torch.set_num_threads(args.threads)
    utterances = sorted(load_dataset(TEST, "test"), key=lambda u: u.id)[:args.utterances]
    model = load_model(f"quartznet:{MODEL}")
    waves = [load_audio(u.audio, model.sample_rate) for u in utterances]
    audio_s = sum(len(w) for w in waves) / model.sample_rate
    refs = [u.text for u in utterances]

    model.forward([waves[0]])  # warm-up
    started = time.perf_counter()
    frontend = model.frontend
    with torch.inference_mode():
        for wave in waves:
            frontend(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
    frontend_s = time.perf_counter() - started
    started = time.perf_counter()
    logprobs = [model.forward([wave])[0].logprobs for wave in waves]
    forward_s = time.perf_counter() - started

    print(f"{len(utterances)} utterances of speechocean762 test, {audio_s / 60:.1f} min of audio, "
          f"{args.threads} torch threads, beam {args.beam_width}\n")
    print("| stage | entities | RTF | WER |")
    print("|---|---:|---:|---:|")
    print(f"| front-end | | {frontend_s / audio_s:.4f} | |")
    print(f"| front-end + QuartzNet forward | | {forward_s / audio_s:.4f} | |")
    print(f"| greedy decoding | | | {wer(refs, [greedy(x, model.labels) for x in logprobs]):.1%} |")
    decoder = build_biased_decoder(model.labels)
    for size in (0, 1000, 10000):
        entities = distractor_list(size, refs)
        decoder.compile(entities)
        started = time.perf_counter()
        hyps = [decoder.decode(x, beam_width=args.beam_width, entities=entities) for x in logprobs]
        decode_s = time.perf_counter() - started
        print(f"| beam search | {size:,} | {decode_s / audio_s:.4f} | {wer(refs, hyps):.1%} |")
        print(f"| whole pipeline | {size:,} | {(forward_s + decode_s) / audio_s:.4f} | |",
              flush=True)


if __name__ == "__main__":
    main()
