"""False alarms where nothing is said: 10 minutes of noise through the transcriber, and flat
and random scores through the decoder alone.

Writes ``--minutes`` of seeded noise as 30-second WAV files into a temporary folder (white,
pink and brown noise at three levels, hum, clicks, and silence with faint noise), then
transcribes them with a list of the example names plus 1,000 Earnings-21 distractors: the
bundled model as by default, without its phone head, with subword boosting alone; and
QuartzNet 15x5 (``--quartznet``, development data) with the phonetic companion (the
default), without it, and with the output-unit verifier off. Then ``--random`` flat and
random (frames, labels) scores go through ``build_biased_decoder`` with the same list (the
decoder API and ``ctc-biasing decode`` path: no phones). Prints the words and the listed
entities each setting put in; no entity should appear.

    python benchmarks/noise_false_alarms.py [--minutes 10] [--random 50] [--only TEXT]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

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
    parser.add_argument("--random", type=int, default=50,
                        help="flat and random score matrices through the decoder alone")
    parser.add_argument("--quartznet", default=str(shared_root() / "models" / "quartznet15x5"))
    parser.add_argument("--only", default="", help="run the settings whose name has this text")
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
        settings: list[tuple[str, dict[str, Any]]] = [
            ("bundled: default (phonetic + unit spots)", {}),
            ("bundled: no phone head (subword + unit spots)", {"phonetic": False}),
            ("bundled: subword boosting only", {"phonetic": False, "merge_spots": False}),
            ("bundled: subword boosting only, verifier off",
             {"phonetic": False, "merge_spots": False, "verify_units": False})]
        if Path(args.quartznet, "weights.npz").is_file():
            spec = f"quartznet:{args.quartznet}"
            settings += [
                ("QuartzNet 15x5 + companion (default)", {"model": spec}),
                ("QuartzNet 15x5, no companion", {"model": spec, "companion": None}),
                ("QuartzNet 15x5, no companion, verifier off",
                 {"model": spec, "companion": None, "verify_units": False})]
        for name, options in settings:
            if args.only not in name:
                continue
            transcriber = Transcriber(**{"threads": 1, **options})
            results = transcriber.transcribe(paths, entities)
            words = sum(len(r.words) for r in results)
            hits = [(Path(r.source).name, h.entity) for r in results for h in r.entities]
            print(f"| {name} | {words} | {len(hits)} | "
                  f"{len({clip for clip, _ in hits})} |", flush=True)
            for clip, entity in hits[:10]:
                print(f"|   {clip}: {entity} | | | |")
    if args.random:
        _scores(entities, args.random)


def _scores(entities: EntityList, count: int) -> None:
    """Flat and random (frames, labels) scores through the decoder alone."""
    from biasing import build_biased_decoder

    labels = [" ", *"abcdefghijklmnopqrstuvwxyz", "'", ""]
    rng = np.random.default_rng(0)
    kinds = {
        "flat: blank 0.7, the rest uniform": lambda frames: np.log(np.concatenate(
            [np.full((frames, len(labels) - 1), 0.3 / (len(labels) - 1)),
             np.full((frames, 1), 0.7)], axis=1)),
        "random logits, sd 1": lambda frames: rng.normal(size=(frames, len(labels))),
        "random logits, sd 3": lambda frames: 3 * rng.normal(size=(frames, len(labels))),
        "uniform": lambda frames: np.zeros((frames, len(labels))),
    }
    print(f"\n{count} score matrices of 100 to 1,000 frames per kind, the same list, "
          "build_biased_decoder (no phones)\n")
    print("| scores | verifier | entities inserted | matrices with an entity |")
    print("|---|---|---:|---:|")
    for name, make in kinds.items():
        inputs = [make(int(rng.integers(100, 1000))) for _ in range(count)]
        for verify in (True, False):
            decoder = build_biased_decoder(labels, verify_units=verify)
            found = [len(decoder.decode_hypotheses(x, entities=entities)[0].entities)
                     for x in inputs]
            print(f"| {name} | {'on' if verify else 'off'} | {sum(found)} | "
                  f"{sum(1 for f in found if f)} |", flush=True)


if __name__ == "__main__":
    main()
