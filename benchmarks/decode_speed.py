"""Decoder speed: biased beam search vs pyctcdecode's own hotwords, by entity-list size.

Synthetic peaky log-probs, 500 frames (10 s at 20 ms), beam 100; a character vocabulary
and a 256-piece subword vocabulary; without and with a small KenLM (bigram ARPA written
from random sentences). Prints a markdown table of median real-time factors (decode time /
10 s), the context-graph compile time and size, and pyctcdecode's hotwords at the same list
sizes, stopped for larger lists once one run exceeds 60 s.

    python benchmarks/decode_speed.py [--sizes 0,10,100,1000,10000,100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import random
import statistics
import string
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from biasing import EntityList, build_biased_decoder
from biasing.decoders.arpa import write_arpa
from biasing.tokenizer import LabelTokenizer

FRAMES = 500
SECONDS = FRAMES * 0.02
HOTWORD_LIMIT_S = 60.0
CHAR_LABELS = [" ", *string.ascii_lowercase, "'", ""]


def _bpe_labels(rng: random.Random) -> list[str]:
    """256 labels: letters, "▁"+letter, and frequent-looking two/three-letter pieces."""
    letters = string.ascii_lowercase
    labels = ["▁⁇▁", "▁", *letters, *("▁" + c for c in letters)]
    while len(labels) < 255:
        piece = "".join(rng.choice(letters) for _ in range(rng.choice((2, 2, 3))))
        piece = ("▁" + piece) if rng.random() < 0.4 else piece
        if piece not in labels:
            labels.append(piece)
    return labels + [""]


def _words(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 9)))
            for _ in range(n)]


def _peaky(units: list[int], vocab: int, blank: int, rng: np.random.Generator) -> np.ndarray:
    """One peaked unit per frame: each unit for 1-2 frames, blanks in between, to FRAMES."""
    path: list[int] = []
    for unit in units:
        path += [unit] * int(rng.integers(1, 3)) + [blank]
    path = (path + [blank] * FRAMES)[:FRAMES]
    x = rng.normal(size=(FRAMES, vocab)) * 1.5
    x[np.arange(FRAMES), path] += 12.0
    x -= x.max(axis=1, keepdims=True)
    return (x - np.log(np.exp(x).sum(axis=1, keepdims=True))).astype(np.float32)


def _setup(vocab: str, seed: int = 0) -> tuple[list[str], np.ndarray, list[str], list[str]]:
    """Labels, log-probs of a random utterance, an entity pool, LM sentences."""
    rng = random.Random(seed)
    labels = CHAR_LABELS if vocab == "char" else _bpe_labels(rng)
    words = _words(rng, 3000)
    spoken = rng.sample(words, 60)
    if vocab == "char":
        index = {c: i for i, c in enumerate(labels)}
        units = [index[c] for c in " ".join(spoken)]
    else:
        units = LabelTokenizer(labels).segmentations(" ".join(spoken))[0]
    logprobs = _peaky(units, len(labels), len(labels) - 1, np.random.default_rng(seed))
    pool = sorted({" ".join(_words(rng, rng.choice((1, 1, 1, 2)))).title()
                   for _ in range(130_000)})
    rng.shuffle(pool)
    pool = [w.title() for w in spoken[:5]] + pool  # a few listed names are actually spoken
    sentences = [" ".join(rng.choices(words, k=12)) for _ in range(3000)]
    return labels, logprobs, pool, sentences


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if times[-1] > 5.0:
            break
    return statistics.median(times)


_JOB: dict = {}


def _hotword_run(queue: mp.Queue) -> None:
    queue.put(_time(_JOB["fn"], _JOB["repeats"]))


def _time_limited(fn, repeats: int, limit: float) -> float | None:
    """Median seconds, or None if one run exceeded ``limit`` (run in a forked child)."""
    _JOB.update(fn=fn, repeats=repeats)
    ctx = mp.get_context("fork")
    queue: mp.Queue = ctx.Queue()
    child = ctx.Process(target=_hotword_run, args=(queue,))
    child.start()
    child.join(limit * repeats + 5)
    if child.is_alive():
        child.kill()
        child.join()
        return None
    return queue.get() if not queue.empty() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,10,100,1000,10000,100000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--beam-width", type=int, default=100)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    from pyctcdecode import build_ctcdecoder

    print("| vocab | LM | entities | ours RTF | pyctcdecode hotwords RTF | ours faster by "
          "| compile s | graph nodes | compile peak MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for vocab in ("char", "bpe256"):
            labels, logprobs, pool, sentences = _setup("char" if vocab == "char" else "bpe")
            arpa = Path(tmp) / f"{vocab}.arpa"
            write_arpa(sentences, arpa)
            for lm in (None, arpa):
                ours = build_biased_decoder(labels, kenlm_model_path=lm)
                reference = build_ctcdecoder(labels, kenlm_model_path=None if lm is None
                                             else str(lm))
                plain_rtf = _time(lambda: reference.decode(
                    logprobs, beam_width=args.beam_width), args.repeats) / SECONDS
                print(f"| {vocab} | {'yes' if lm else 'no'} | pyctcdecode, no list | "
                      f"{plain_rtf:.4f} | | | | | |", flush=True)
                hotwords_alive = True
                for size in sizes:
                    entities = EntityList(pool[:size])
                    gc.collect()
                    start = time.perf_counter()
                    compiled = ours.compile(entities)
                    compile_s = time.perf_counter() - start
                    tracemalloc.start()
                    build_biased_decoder(labels).compile(entities)  # fresh cache
                    peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
                    tracemalloc.stop()
                    rtf = _time(lambda: ours.decode(logprobs, entities,
                                                    beam_width=args.beam_width),
                                args.repeats) / SECONDS
                    hot = "—"
                    ratio = ""
                    if size and hotwords_alive:
                        seconds = _time_limited(lambda: reference.decode(
                            logprobs, beam_width=args.beam_width,
                            hotwords=[e.text.lower() for e in entities]),
                            args.repeats, HOTWORD_LIMIT_S)
                        if seconds is None:
                            hotwords_alive = False
                            hot = f"> {HOTWORD_LIMIT_S / SECONDS:.0f} (stopped)"
                        else:
                            hot = f"{seconds / SECONDS:.4f}"
                            ratio = f"{seconds / SECONDS / rtf:.0f}x"
                    elif size:
                        hot = "not run"
                    print(f"| {vocab} | {'yes' if lm else 'no'} | {size:,} | {rtf:.4f} | {hot} "
                          f"| {ratio} | {compile_s:.2f} | {compiled.graph.stats.n_nodes:,} "
                          f"| {peak_mb:.0f} |", flush=True)


if __name__ == "__main__":
    main()
