"""False alarms on audio with no speech: 10 minutes of noise through the transcriber.

Writes ``--minutes`` of seeded noise as 30-second WAV files into a temporary folder (white,
pink and brown noise at three levels, hum, clicks, and silence with faint noise), then
transcribes them with the bundled model and a list of the example names plus 1,000
Earnings-21 distractors: as by default, without the phone head, and with subword boosting
alone.
Prints the words and the listed entities each setting put into the transcripts; no entity
should appear.

    python benchmarks/noise_false_alarms.py [--minutes 10]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from biasing import Transcriber
from biasing.entities import EntityList
from biasing.paths import shared_root

RATE = 16000
CLIP_S = 30
EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
DISTRACTORS = shared_root() / "data" / "earnings21" / "bias_lists" / "distractor_list.txt"


def _noise(kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
    n = RATE * CLIP_S
    white = rng.standard_normal(n)
    if kind == "white":
        out = white
    elif kind in ("pink", "brown"):
        spectrum = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n, 1 / RATE)
        freqs[0] = freqs[1]
        spectrum /= np.sqrt(freqs) if kind == "pink" else freqs
        out = np.fft.irfft(spectrum, n)
    elif kind == "hum":
        t = np.arange(n) / RATE
        out = np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 150 * t) + 0.05 * white
    elif kind == "clicks":
        out = 0.02 * white
        out[rng.integers(0, n, size=CLIP_S * 4)] += rng.choice([-1.0, 1.0], size=CLIP_S * 4) * 20
    else:  # near silence
        out = 0.001 * white
    return (level * out / (np.abs(out).max() + 1e-9)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # unspellable/unpronounceable list entries
    if not DISTRACTORS.is_file():
        sys.exit(f"skipped: needs {DISTRACTORS} (development data)")
    pool = [line for line in DISTRACTORS.read_text(encoding="utf-8").splitlines() if line]
    names = [line for line in (EXAMPLES / "entities.txt").read_text().splitlines() if line]
    entities = EntityList(names + random.Random(0).sample(pool, 1000),
                          on_unrepresentable="skip")
    kinds = [(k, level) for k in ("white", "pink", "brown") for level in (0.05, 0.3, 0.9)]
    kinds += [("hum", 0.3), ("clicks", 0.5), ("silence", 1.0)]
    rng = np.random.default_rng(0)
    clips = int(args.minutes * 60 / CLIP_S)
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i in range(clips):
            kind, level = kinds[i % len(kinds)]
            path = Path(folder) / f"{i:03d}_{kind}_{level}.wav"
            sf.write(path, _noise(kind, level, rng), RATE)
            paths.append(path)
        print(f"{clips} clips of {CLIP_S} s ({clips * CLIP_S / 60:.1f} min of noise), "
              f"{len(entities):,} listed entities\n")
        print("| setting | words output | entities inserted | clips with an entity |")
        print("|---|---:|---:|---:|")
        settings = (("default (phonetic + unit spots)", {}),
                    ("no phone head (subword + unit spots)", {"phonetic": False}),
                    ("subword boosting only", {"phonetic": False, "merge_spots": False}))
        for name, options in settings:
            transcriber = Transcriber(**options)
            results = transcriber.transcribe(paths, entities)
            words = sum(len(r.words) for r in results)
            hits = [(Path(r.source).name, h.entity) for r in results for h in r.entities]
            print(f"| {name} | {words} | {len(hits)} | "
                  f"{len({clip for clip, _ in hits})} |", flush=True)
            for clip, entity in hits[:10]:
                print(f"|   {clip}: {entity} | | | |")


if __name__ == "__main__":
    main()
