"""Cost of the contextual adapter on the CPU (the bundled model and its adapter).

Two tables:

1. the forward pass with and without the adapter, per example clip and in all: the plain
   forward (``model.forward``), the forward that also returns the layers the adapter
   reads, and the adapter on ``--list-size`` entities (default 1,000; entity vectors
   already cached, as for every utterance after a list's first). The overhead is
   (layers-returning forward - plain forward + adapter) / plain forward;
2. entity vectors for ``--embed-size`` entities (default 10,000): computed by a freshly
   loaded adapter, then the same list again (the in-memory cache keyed by its content).

The entities are Earnings-21 bias-list names when ``../shared`` is there, padded with made-up
two-word names. Times are the median of ``--repeats`` runs, on ``--threads`` torch threads.

    python benchmarks/adapter_speed.py [--list-size 1000] [--embed-size 10000] [--threads 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from biasing import EntityList
from biasing.adapters import default_adapter_path, load_adapter
from biasing.audio import load_audio
from biasing.models import load_model, set_threads
from biasing.paths import checkout_root, shared_root

EXAMPLES = ("booking", "clinic", "invoice", "travel")


def entity_names(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct names: the Earnings-21 bias lists, then made-up ones."""
    names: list[str] = []
    lists = shared_root() / "data" / "earnings21" / "bias_lists"
    for name in ("oracle_list.txt", "distractor_list.txt"):
        if (lists / name).is_file():
            names += [line.strip() for line in (lists / name).read_text().splitlines()
                      if line.strip()]
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    seen = set(names)
    while len(names) < n:
        made = " ".join("".join(rng.choice(letters) for _ in range(rng.randint(4, 9))
                                ).capitalize() for _ in range(2))
        if made not in seen:
            seen.add(made)
            names.append(made)
    return names[:n]


def median_time(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", type=Path, help="default: the bundled model's")
    parser.add_argument("--list-size", type=int, default=1000)
    parser.add_argument("--embed-size", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    set_threads(args.threads)
    path = args.adapter or default_adapter_path()
    if path is None:
        print("the bundled model has no adapter.npz; pass --adapter", file=sys.stderr)
        return 2
    model = load_model("default")
    adapter = load_adapter(path, model)
    entities = entity_names(max(args.list_size, args.embed_size))
    texts = entities[:args.list_size]
    adapter.vectors(tuple(texts))  # cached, as after a list's first utterance
    # checked once, as a Transcriber gets it (a list of strings would be re-checked per call)
    listed = EntityList(texts, on_unrepresentable="skip")

    print(f"## Forward pass with the adapter ({args.list_size} entities, {args.threads} "
          f"thread(s), median of {args.repeats})\n")
    print("| clip | audio s | forward s | + layers s | adapter s | overhead |")
    print("|---|---:|---:|---:|---:|---:|")
    totals = [0.0, 0.0, 0.0, 0.0]
    for name in EXAMPLES:
        wave = load_audio(checkout_root() / "data" / "examples" / f"{name}.ogg",
                          model.sample_rate)
        model.forward([wave], adapter.layers)  # warm-up
        plain = median_time(lambda: model.forward([wave]), args.repeats)
        with_layers = median_time(lambda: model.forward([wave], adapter.layers), args.repeats)
        out = model.forward([wave], adapter.layers)[0]
        biasing = median_time(lambda: adapter.bias(out, listed), args.repeats)
        seconds = len(wave) / model.sample_rate
        overhead = (with_layers - plain + biasing) / plain
        print(f"| {name} | {seconds:.2f} | {plain:.3f} | {with_layers:.3f} | {biasing:.3f} "
              f"| {100 * overhead:.1f}% |")
        for i, value in enumerate((seconds, plain, with_layers, biasing)):
            totals[i] += value
    seconds, plain, with_layers, biasing = totals
    print(f"| all | {seconds:.2f} | {plain:.3f} | {with_layers:.3f} | {biasing:.3f} | "
          f"{100 * (with_layers - plain + biasing) / plain:.1f}% |")

    print(f"\n## Entity vectors for {args.embed_size} entities\n")
    print("| step | seconds |")
    print("|---|---:|")
    fresh = load_adapter(path, model)
    texts = tuple(entities[:args.embed_size])
    started = time.perf_counter()
    fresh.vectors(texts)
    first = time.perf_counter() - started
    started = time.perf_counter()
    fresh.vectors(texts)
    again = time.perf_counter() - started
    print(f"| computed (new adapter) | {first:.3f} |")
    print(f"| the same list again (cached) | {again:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
