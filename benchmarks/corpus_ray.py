"""transcribe-corpus on a local Ray instance against the single-process path, same total
threads: speechocean762 test (``../shared``), one global list of ``--list-size``
Earnings-21 names for every row.

Runs ``ctc-biasing transcribe-corpus`` twice from scratch into temporary folders:

- ``--no-ray --threads T``: one process, T torch threads;
- ``--num-actors T --threads-per-actor 1``: a local Ray instance (started by the command,
  its start-up counted) with T one-thread actors;

and prints wall time, rows per second, the ratio, and how many transcripts are identical.

    python benchmarks/corpus_ray.py [--threads 2] [--limit N] [--list-size 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from biasing.datasets import load_dataset
from biasing.paths import shared_root

sys.path.insert(0, str(Path(__file__).resolve().parent))
from adapter_speed import entity_names


def run(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "biasing.cli", "transcribe-corpus", *command],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def texts(folder: Path) -> dict[str, str]:
    out = {}
    for line in (folder / "results.jsonl").read_text().splitlines():
        row = json.loads(line)
        out[row["id"]] = row.get("text", "<error>")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, help="first N utterances only")
    parser.add_argument("--list-size", type=int, default=100)
    args = parser.parse_args()
    dataset_dir = shared_root() / "data" / "speechocean762"
    if not dataset_dir.is_dir():
        print(f"skipped: {dataset_dir} is not there (development data)")
        return 0
    utterances = load_dataset(dataset_dir, "test")[:args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        manifest = folder / "manifest.jsonl"
        manifest.write_text("".join(json.dumps({"id": u.id, "audio": str(u.audio)}) + "\n"
                                    for u in utterances))
        names = folder / "names.txt"
        names.write_text("\n".join(entity_names(args.list_size)) + "\n")
        common = [str(manifest), "--entities", str(names), "--skip-unrepresentable"]
        single = run([*common, "--output", str(folder / "single"), "--no-ray",
                      "--threads", str(args.threads)])
        on_ray = run([*common, "--output", str(folder / "ray"), "--num-actors",
                      str(args.threads), "--threads-per-actor", "1"])
        a, b = texts(folder / "single"), texts(folder / "ray")
    same = sum(a[k] == b.get(k) for k in a)
    n = len(utterances)
    print(f"# speechocean762 test, {n} utterances, a list of {args.list_size} names, "
          f"{args.threads} threads in all\n")
    print("| path | wall (s) | rows/s | vs single process |")
    print("|---|---:|---:|---:|")
    print(f"| single process (--no-ray --threads {args.threads}) | {single:.1f} | "
          f"{n / single:.2f} | 1.00x |")
    print(f"| Ray, {args.threads} actors x 1 thread (local instance, start-up included) | "
          f"{on_ray:.1f} | {n / on_ray:.2f} | {single / on_ray:.2f}x |")
    print(f"\nidentical transcripts: {same} of {n}")
    for key in sorted(k for k in a if a[k] != b.get(k)):
        print(f"- {key}: single {a[key]!r}, Ray {b.get(key)!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
