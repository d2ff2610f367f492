"""The HTTP server under hostile requests: does its memory stay flat, and does it keep
serving? ``ctc-biasing serve`` (bundled model, 2 decoding processes) on loopback.

Sends, ``--rounds`` times each, the full-size bombs of the hostile-input probe (a 335 KB
FLAC declaring 655,350 Hz x 8 channels x 60 s of silence, a 41 KB Ogg Vorbis of 255
channels x 48 kHz x 24 s), crafted JSON lists (100,000-deep nesting, 400- and
5,000-digit weights) and a 10 MB text list, with eight slow bodies open the whole time;
prints each kind's answers and the resident memory of the server plus its workers
before and after, and checks an ordinary request is served at the end.

    python benchmarks/serve_hostile.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import io
import socket
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import rss_mb, server

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
URL = "/v1/audio/transcriptions"


def _encoded(samples: np.ndarray, rate: int, fmt: str, subtype: str) -> bytes:
    stream = io.BytesIO()
    sf.write(stream, samples, rate, format=fmt, subtype=subtype)
    return stream.getvalue()


def bombs() -> dict[str, bytes]:
    """The two audio bombs, encoded at full length (about 20 s, mostly the Vorbis)."""
    flac = _encoded(np.zeros((655_350 * 60, 8), np.int16), 655_350, "FLAC", "PCM_16")
    ogg = _encoded(np.zeros((48_000 * 24, 255), np.float32), 48_000, "OGG", "VORBIS")
    return {"flac bomb (655,350 Hz x 8 ch x 60 s)": flac,
            "ogg bomb (255 ch x 48 kHz x 24 s)": ogg}


def _slow(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=600)
    sock.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                 b"multipart/form-data; boundary=b\r\nContent-Length: 1000000\r\n\r\n--b\r\n")
    return sock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    clip = (EXAMPLES / "clinic.ogg").read_bytes()
    started = time.perf_counter()
    audio = bombs()
    print(f"bombs encoded in {time.perf_counter() - started:.1f} s: "
          + ", ".join(f"{k}: {len(v) / 1024:.0f} KB" for k, v in audio.items()))
    lists = {"JSON nested 100,000 deep": "[" * 100_000 + "]" * 100_000,
             "weight of 400 digits": '[["Kaiyo", 1' + "0" * 400 + "]]",
             "weight of 5,000 digits": '[["Kaiyo", 1' + "0" * 5000 + "]]",
             "10 MB text list": "Kaiyo\n" * 1_700_000}
    with server(["--body-timeout-s", "300"]) as (url, pid):
        port = int(url.rsplit(":", 1)[1])
        ok = httpx.post(f"{url}{URL}", files={"file": ("c.ogg", clip)}, timeout=120)
        assert ok.status_code == 200, ok.text
        before = rss_mb(pid)
        slow = [_slow(port) for _ in range(8)]
        rows = []
        for name, data in audio.items():
            codes = Counter(httpx.post(f"{url}{URL}", files={"file": ("a", data)},
                                       timeout=120).status_code for _ in range(args.rounds))
            rows.append((name, codes))
        for name, text in lists.items():
            codes = Counter(httpx.post(f"{url}{URL}", files={"file": ("c.ogg", clip)},
                                       data={"entities": text}, timeout=120).status_code
                            for _ in range(args.rounds))
            rows.append((name, codes))
        served = httpx.post(f"{url}{URL}", files={"file": ("c.ogg", clip)}, timeout=120)
        after = rss_mb(pid)
        for sock in slow:
            sock.close()
    print(f"\n| request ({args.rounds} each, 8 slow bodies open) | answers |\n|---|---|")
    for name, codes in rows:
        print(f"| {name} | {', '.join(f'{n} x {c}' for c, n in sorted(codes.items()))} |")
    print(f"| an ordinary request afterwards | {served.status_code} |")
    print(f"\nresident memory, server + 2 decoding processes: {before:.0f} MB before, "
          f"{after:.0f} MB after ({after - before:+.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
