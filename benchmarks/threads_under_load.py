"""Transcription speed by torch thread count on a machine other work keeps busy.

Usage:
    python benchmarks/threads_under_load.py [--clips 3] [--repeats 2]

For 0, 1, ... (cores - 1) busy processes (pure-Python loops, one core each, standing in
for other work), transcribes the bundled example clips with the bundled model in a fresh
process at ``--threads 1``, ``--threads CORES`` and the default (no ``--threads``: the
cores free now, ``biasing.models.free_cores``), and prints a markdown table of wall time
per clip. Each setting runs in its own ``ctc-biasing transcribe`` process, as a user runs
it; the model load is excluded by timing a run with one clip and subtracting.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"


def _burn(stop: multiprocessing.synchronize.Event) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def _run(clips: list[str], threads: str | None) -> tuple[float, str]:
    """Wall seconds of one transcribe process, and the thread count it used."""
    command = [sys.executable, "-c",
               ("import sys, time, torch; from biasing.cli import main; "
               "start = time.perf_counter(); code = main(sys.argv[1:]); "
               "print('THREADS', torch.get_num_threads(), file=sys.stderr); sys.exit(code)"),
               "transcribe", *clips]
    if threads is not None:
        command += ["--threads", threads]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    used = next(line.split()[1] for line in done.stderr.splitlines()
                if line.startswith("THREADS"))
    return time.perf_counter() - start, used


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=3, help="copies of the example clips")
    parser.add_argument("--repeats", type=int, default=2, help="runs per setting (best)")
    args = parser.parse_args(argv)
    from biasing.models import available_cores

    cores = available_cores()
    clips = sorted(str(p) for p in EXAMPLES.glob("*.ogg")) * args.clips
    settings = [("1", "1"), (str(cores), str(cores)), ("default (free cores)", None)]
    rows = []
    for busy in range(cores):
        stop = multiprocessing.Event()
        burners = [multiprocessing.Process(target=_burn, args=(stop,)) for _ in range(busy)]
        for burner in burners:
            burner.start()
        time.sleep(1.0)  # let the load show in /proc/stat
        try:
            for name, threads in settings:
                best, used = float("inf"), "?"
                for _ in range(args.repeats):
                    one, _ = _run(clips[:1], threads)
                    full, used = _run(clips, threads)
                    best = min(best, (full - one) / (len(clips) - 1))
                rows.append((busy, name, used, best))
        finally:
            stop.set()
            for burner in burners:
                burner.join()
    print(f"{len(clips)} clips of data/examples, bundled model, {cores} cores "
          f"(os.cpu_count() {os.cpu_count()}); best of {args.repeats}\n")
    print("| busy processes | --threads | torch threads used | seconds per clip |")
    print("|---:|---|---:|---:|")
    for busy, name, used, seconds in rows:
        print(f"| {busy} | {name} | {used} | {seconds:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
