"""Peak memory and time of reading audio: the issue's two memory bombs, a normal file and a
long 8-channel one, with the reader before block-wise decoding (reimplemented here) and the
current one.

Each read runs in a fresh process; its peak memory growth is Linux's VmHWM (reset to the
current size just before the read) minus the size before it, which counts what libsndfile
allocates in C. "bytes" is the server's path (``audio_info`` + ``decode_audio`` on an
upload), "file" that of ``transcribe``, evaluation and corpus runs (``load_audio``).

    python benchmarks/audio_memory.py [--dir DIR]    # DIR keeps the files between runs

Writing the bombs takes about 20 s (255-channel Vorbis encodes slowly); Linux only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# (name, soundfile format, subtype, rate, channels, seconds, signal)
CASES = [
    ("FLAC bomb", "FLAC", "PCM_16", 655_350, 8, 60, "silence"),
    ("Ogg Vorbis bomb", "OGG", "VORBIS", 48_000, 255, 24, "silence"),
    ("normal 60 s stereo", "FLAC", "PCM_16", 48_000, 2, 60, "tones"),
    # within every limit (and the server's 300 s): decoded, a block at a time
    ("8-channel array, 300 s", "FLAC", "PCM_16", 48_000, 8, 300, "silence"),
]

# One read in a fresh process: argv = old|new, bytes|file, path. Prints a JSON record.
_READ = r"""
import io, json, sys, time
from pathlib import Path
import numpy as np
import soundfile, soxr
from biasing.audio import audio_info, decode_audio, load_audio

def old_read(source, sample_rate):
    # the reader before block-wise decoding: the whole (frames, channels) file as float32
    soundfile.info(source)
    if isinstance(source, io.BytesIO):
        source.seek(0)
    data, rate = soundfile.read(source, dtype="float32", always_2d=True)
    wave = data.mean(axis=1).astype(np.float32)
    if rate != sample_rate:
        wave = soxr.resample(wave, rate, sample_rate, quality="HQ")
    return np.clip(wave, -1.0, 1.0).astype(np.float32, copy=False)

def new_read(source, sample_rate):
    if isinstance(source, io.BytesIO):
        data = source.getvalue()
        audio_info(data, "upload")
        return decode_audio(data, sample_rate, "upload")
    return load_audio(source, sample_rate)

def mb(field):
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024

code, kind, path, warm = sys.argv[1:]
read = old_read if code == "old" else new_read
read(warm, 16000)  # libraries loaded and warmed on a small file
source = io.BytesIO(Path(path).read_bytes()) if kind == "bytes" else path
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")  # VmHWM := VmRSS
before, start = mb("VmRSS"), time.perf_counter()
try:
    wave = read(source, 16000)
    outcome = f"decoded {len(wave) / 16000:.1f} s"
except (ValueError, MemoryError, RuntimeError) as err:
    outcome = f"refused: {err}"
print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - start,
                  "peak_mb": mb("VmHWM") - before}))
"""


def write_case(path: Path, fmt: str, subtype: str, rate: int, channels: int, seconds: int,
               signal: str) -> None:
    """Write the file a block at a time, so that making a bomb costs no memory."""
    import soundfile

    block = 1 << 16
    t = np.arange(block) / rate
    with soundfile.SoundFile(path, "w", rate, channels, subtype, format=fmt) as out:
        for start in range(0, rate * seconds, block):
            n = min(block, rate * seconds - start)
            if signal == "silence":
                samples = np.zeros((n, channels), np.float32)
            else:
                phase = 2 * np.pi * (t[:n] + start / rate)
                samples = np.stack([0.3 * np.sin(220 * (c + 1) * phase)
                                    for c in range(channels)], axis=1).astype(np.float32)
            out.write(samples)


def measure(code: str, kind: str, path: Path, warm: Path) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", _READ, code, kind, str(path), str(warm)],
                         capture_output=True, text=True, timeout=600, check=False)
    if out.returncode:
        return {"outcome": f"crashed: {out.stderr.strip().splitlines()[-1:]}",
                "seconds": float("nan"), "peak_mb": float("nan")}
    record: dict[str, object] = json.loads(out.stdout)
    return record


# what the new reader's message says, by the limit it names
_LIMITS = {"sample rate is above": "rate", "channels this reader": "channels",
           "would decode to": "samples"}


def short(outcome: object) -> str:
    text = str(outcome)
    hits = [limit for key, limit in _LIMITS.items() if key in text]
    return f"refused ({hits[0]})" if text.startswith("refused") and hits else text.split(":")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="where the files are kept (default: a "
                                                 "temporary folder)")
    args = parser.parse_args()
    if not Path("/proc/self/clear_refs").exists():
        sys.exit("needs Linux's /proc/self/status and clear_refs for peak memory")
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.dir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        warm = folder / "warm.wav"
        write_case(warm, "WAV", "PCM_16", 48_000, 2, 1, "tones")
        rows = []
        for name, fmt, subtype, rate, channels, seconds, signal in CASES:
            path = folder / (name.replace(" ", "_") + "." + fmt.lower())
            if not path.exists():
                print(f"writing {path.name} ...", file=sys.stderr)
                write_case(path, fmt, subtype, rate, channels, seconds, signal)
            for kind in ("bytes", "file"):
                old = measure("old", kind, path, warm)
                new = measure("new", kind, path, warm)
                rows.append((name, f"{rate:,} Hz x {channels} ch x {seconds} s",
                             path.stat().st_size, kind, old, new))
                print(f"  {name} {kind}: old {old['outcome']!s:.60} | "
                      f"new {new['outcome']!s:.100}", file=sys.stderr)
    print("| file | header | size | read as | old: outcome | old: time | old: peak | "
          "new: outcome | new: time | new: peak |")
    print("|---|---|---:|---|---|---:|---:|---|---:|---:|")
    for name, header, size, kind, old, new in rows:
        cells = [name, header, f"{size / 1000:,.0f} KB", kind]
        for record in (old, new):
            cells += [short(record["outcome"]), f"{record['seconds']:.2f} s",
                      f"{record['peak_mb']:,.0f} MB"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
