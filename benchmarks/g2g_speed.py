"""G2G speed: alignment training, variant compilation by list size, cached re-load.

Entities are the Earnings-21 distractor list (company and person names), topped up with
synthetic names (random syllables, so most are outside CMUdict and go through the neural
G2P). Each size gets a fresh cache folder; the alignment table is trained once into its own
folder first. Prints a markdown table of seconds.

    python benchmarks/g2g_speed.py [--sizes 100,1000,10000] [--words 40000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from biasing.lexicon import AlignmentOptions, Lexicon, load_alignment, spelling_variants
from biasing.lexicon import g2p as g2p_module
from biasing.paths import shared_root

DISTRACTORS = (shared_root() / "data" / "earnings21"
               / "bias_lists" / "distractor_list.txt")
_ONSETS = ["b", "br", "ch", "d", "f", "g", "gr", "h", "j", "k", "kr", "l", "m", "n", "p",
           "r", "s", "sh", "st", "t", "tr", "v", "w", "z", "zh", ""]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ee", "ou", "y"]
_CODAS = ["", "", "n", "r", "s", "l", "k", "m", "ck", "nd", "sk"]


def _synthetic_name(rng: random.Random) -> str:
    def word() -> str:
        syllables = rng.randint(2, 4)
        return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                       for _ in range(syllables)).capitalize()
    return " ".join(word() for _ in range(rng.choice((1, 2, 2, 3))))


def _entities(size: int, seed: int = 0) -> list[str]:
    names: list[str] = []
    if DISTRACTORS.is_file():
        names = [line.strip().lower() for line in DISTRACTORS.read_text().splitlines()
                 if line.strip()]
    rng = random.Random(seed)
    seen = set(names)
    while len(names) < size:
        name = _synthetic_name(rng).lower()
        if name not in seen:
            seen.add(name)
            names.append(name)
    rng.shuffle(names)
    return names[:size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--words", type=int, default=AlignmentOptions().words,
                        help="CMUdict words the alignment is trained on")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    options = AlignmentOptions(words=args.words)
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        table = load_alignment(options, cache_dir=Path(tmp, "table"))
        rows.append((f"alignment training ({args.words:,} words, {len(table.pairs):,} pairs)",
                     time.perf_counter() - start))
        start = time.perf_counter()
        load_alignment(options, cache_dir=Path(tmp, "table"))
        rows.append(("alignment table re-load (cached)", time.perf_counter() - start))
        start = time.perf_counter()
        g2p_module.pronounce("hello")
        rows.append(("G2P model load (after CMUdict)", time.perf_counter() - start))
        for size in sizes:
            entities = _entities(size, seed=size)
            cache = Path(tmp, f"variants-{size}")
            start = time.perf_counter()
            out = spelling_variants(entities, table=table, lexicon=Lexicon(), cache_dir=cache)
            first = time.perf_counter() - start
            with_variants = sum(1 for v in out.values() if v)
            rows.append((f"variants, {size:,} entities ({with_variants:,} with variants)",
                         first))
            start = time.perf_counter()
            spelling_variants(entities, table=table, lexicon=Lexicon(), cache_dir=cache)
            rows.append((f"variants, {size:,} entities, cached re-load",
                         time.perf_counter() - start))
    print("| step | seconds |")
    print("|---|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
