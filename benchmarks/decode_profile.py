"""Where decode time goes: the decoder's stages and hot functions under cProfile, for
`subword` and the default (`phonetic-spot`), bundled model, speechocean762 test utterances
each decoded with one list of Earnings-21 distractors.

Usage:
    python benchmarks/decode_profile.py [--utterances 40] [--list-size 1000] [--top 20]

The model's outputs are computed first (not profiled) and the list compiled before timing.
Prints, per setting, the wall time and the functions of ``biasing/decoders`` by cumulative
time (cProfile's own overhead inflates the many small calls of the beam search; compare
stages, not absolute seconds). Skips with a message when the development data is absent.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import sys
import time
import warnings

from biasing import EntityList, Transcriber
from biasing.audio import load_audio
from biasing.datasets import load_dataset
from biasing.paths import shared_root
from biasing.transcribe import Overrides

DATA = shared_root() / "data" / "speechocean762"
DISTRACTORS = shared_root() / "data" / "earnings21" / "bias_lists" / "distractor_list.txt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=40)
    parser.add_argument("--list-size", type=int, default=1000)
    parser.add_argument("--top", type=int, default=20, help="functions listed per setting")
    args = parser.parse_args(argv)
    if not DATA.is_dir() or not DISTRACTORS.is_file():
        print(f"skipped: needs {DATA} and {DISTRACTORS} (development data)")
        return 0
    warnings.simplefilter("ignore")  # unspellable/unpronounceable distractors
    utterances = load_dataset(str(DATA), "test")[:args.utterances]
    pool = [line for line in DISTRACTORS.read_text(encoding="utf-8").splitlines() if line]
    names = EntityList(random.Random(0).sample(pool, args.list_size), on_unrepresentable="skip")
    transcriber = Transcriber(threads=1)
    rate = transcriber.model.sample_rate
    outputs = [transcriber.model.forward([load_audio(u.audio, rate)])[0] for u in utterances]
    settings = {"subword": Overrides(phonetic=False, merge_spots=False),
                "default (phonetic-spot)": None}
    for name, overrides in settings.items():
        transcriber.decode_output(outputs[0], names, overrides)  # compile the list
        profile = cProfile.Profile()
        start = time.perf_counter()
        profile.enable()
        for output in outputs:
            transcriber.decode_output(output, names, overrides)
        profile.disable()
        took = time.perf_counter() - start
        print(f"## {name}: {took:.2f} s for {len(outputs)} utterances "
              f"(under cProfile), lists of {len(names):,}\n")
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(
            "biasing/decoders", args.top)
        print("| calls | own s | cumulative s | function |\n|---:|---:|---:|---|")
        for line in text.getvalue().splitlines():
            fields = line.split(None, 5)
            if len(fields) == 6 and fields[0][:1].isdigit() and "biasing/decoders/" in fields[5]:
                where = fields[5].split("biasing/decoders/", 1)[1]
                print(f"| {fields[0]} | {fields[1]} | {fields[3]} | {where} |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
