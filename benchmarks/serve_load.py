"""The HTTP server under load: ``ctc-biasing serve`` on loopback with the bundled model, and
clients sending the example clips (table 1), each request with its own ``--list-size``-entity list.

Two tables:

1. throughput and latency with 1, 4 and 8 concurrent clients (``--requests`` requests per
   level, lists all distinct): requests per second, p50 and p95 latency, and the speed-up
   over one client sending requests back to back;
2. resident memory of the server and its decoding workers over ``--memory-requests``
   requests with distinct lists (8 clients): after ``--warm-up`` requests (default 100,
   enough to fill the list caches: 16 lists per decoding process) and at each quarter.
   These requests send 300 recordings of many lengths (speechocean762 test, when
   ``../shared`` is there; else the example clips), since the model's memory depends on
   the shapes it has seen.

Lists are drawn from a pool of 3,000 names (the Earnings-21 bias lists when ``../shared``
is there, padded with made-up names), so every list is new but its names recur across
requests, as a server's callers' names do; names are pronounced once per decoding
process and cached. Entries the model cannot spell are skipped by the server
(``skip_unrepresentable=true``). The server runs with its defaults (2 decoding processes,
batches of up to 8) unless ``--server-args`` says otherwise.

    python benchmarks/serve_load.py [--requests 64] [--memory-requests 2000] [--list-size 1000]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from adapter_speed import EXAMPLES, entity_names

from biasing.paths import checkout_root, shared_root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(args: list[str]) -> Iterator[tuple[str, int]]:
    """A ``ctc-biasing serve`` process on a free loopback port: (base URL, pid)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "biasing.cli", "serve", "--port",
                                str(port), "--log-level", "warning", *args])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server was not ready within 180 s")
            time.sleep(0.3)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(60)


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, in MB (from /proc)."""
    def children(p: int) -> list[int]:
        found = []
        for task in Path(f"/proc/{p}/task").iterdir():
            path = task / "children"
            if path.exists():
                found += [int(c) for c in path.read_text().split()]
        return found

    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            todo += children(p)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1024


def example_clips() -> list[tuple[str, bytes]]:
    folder = checkout_root() / "data" / "examples"
    return [(f"{e}.ogg", (folder / f"{e}.ogg").read_bytes()) for e in EXAMPLES]


def varied_clips(n: int = 300) -> list[tuple[str, bytes]]:
    """Recordings of many lengths: the first ``n`` of speechocean762 test when
    ``../shared`` is there (lengths matter to memory: the model's kernels are per shape)."""
    from biasing.datasets import load_dataset

    folder = shared_root() / "data" / "speechocean762"
    if not folder.is_dir():
        return example_clips()
    return [(u.audio.name, u.audio.read_bytes()) for u in load_dataset(folder, "test")[:n]]


class Load:
    """Requests with distinct lists: request ``n`` sends clip ``n % len(clips)`` and list
    ``n``."""

    def __init__(self, url: str, names: list[str], list_size: int,
                 clips: list[tuple[str, bytes]]) -> None:
        self.url = url
        self.names = names
        self.list_size = list_size
        self.clips = clips
        self.counter = 0
        self.lock = threading.Lock()

    def next_number(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def send(self, client: httpx.Client, n: int) -> float:
        entities = "\n".join(random.Random(n).sample(self.names, self.list_size))
        name, audio = self.clips[n % len(self.clips)]
        started = time.perf_counter()
        response = client.post(f"{self.url}/v1/audio/transcriptions", files={
            "file": (name, audio)}, data={"entities": entities,
                                          "skip_unrepresentable": "true"}, timeout=300)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"request {n}: {response.status_code} {response.text[:300]}")
        return elapsed

    def run(self, clients: int, requests: int, every: int = 0,
            on_progress: object = None) -> tuple[float, list[float]]:
        """``requests`` requests from ``clients`` threads: (wall seconds, latencies)."""
        latencies: list[float] = []
        done = [0]
        left = [requests]

        def work() -> None:
            with httpx.Client() as client:
                while True:
                    with self.lock:
                        if left[0] == 0:
                            return
                        left[0] -= 1
                    latency = self.send(client, self.next_number())
                    with self.lock:
                        latencies.append(latency)
                        done[0] += 1
                        if every and done[0] % every == 0 and callable(on_progress):
                            on_progress(done[0])

        started = time.perf_counter()
        threads = [threading.Thread(target=work) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started, latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=64, help="per concurrency level")
    parser.add_argument("--memory-requests", type=int, default=2000)
    parser.add_argument("--warm-up", type=int, default=100,
                        help="requests before the memory baseline")
    parser.add_argument("--list-size", type=int, default=1000)
    parser.add_argument("--clients", default="1,4,8")
    parser.add_argument("--server-args", default="", help="extra arguments of serve")
    args = parser.parse_args()
    names = entity_names(max(3000, 3 * args.list_size))
    levels = [int(c) for c in args.clients.split(",")]
    print(f"# server: ctc-biasing serve {args.server_args or '(defaults)'}; "
          f"{os.cpu_count()} cores; lists of {args.list_size} entities, distinct per request\n")
    with server(args.server_args.split()) as (url, pid):
        load = Load(url, names, args.list_size, example_clips())
        load.run(1, 4)  # warm-up: first compiles, first batches
        print("| clients | requests | req/s | p50 latency (s) | p95 latency (s) | "
              "speed-up vs 1 client |")
        print("|---:|---:|---:|---:|---:|---:|")
        base = None
        for clients in levels:
            wall, latencies = load.run(clients, args.requests)
            rate = len(latencies) / wall
            base = base or rate
            print(f"| {clients} | {len(latencies)} | {rate:.2f} | "
                  f"{statistics.median(latencies):.3f} | {percentile(latencies, 0.95):.3f} | "
                  f"{rate / base:.2f}x |", flush=True)
        if args.memory_requests:
            print("\n| requests with distinct lists | resident memory, server + workers "
                  "(MB) |\n|---:|---:|")
            load = Load(url, names, args.list_size, varied_clips())
            load.counter = 10_000  # lists not used above
            load.run(8, args.warm_up)
            start = rss_mb(pid)
            print(f"| {args.warm_up} (warm-up) | {start:.0f} |", flush=True)
            quarter = max(1, args.memory_requests // 4)
            load.run(8, args.memory_requests, every=quarter, on_progress=lambda n: print(
                f"| {args.warm_up + n} | {rss_mb(pid):.0f} |", flush=True))
            print(f"\ngrowth over {args.memory_requests} distinct lists: "
                  f"{rss_mb(pid) - start:+.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
