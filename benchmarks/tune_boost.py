"""Choose the decoder's boosting defaults on real speech (speechocean762 *train*).

QuartzNet (shared_root()/models/quartznet15x5) decodes N train utterances without a list; the
reference words (4+ letters) that it gets wrong stand in for rare entities with weak
acoustic evidence. Each utterance is then decoded with a list of its own missed words plus
100 distractors (Earnings-21 names that are not in its transcripts), for a grid of boosting
settings. Prints, per setting: recall of the missed words, false alarms (listed words
that appear in a hypothesis but not in its reference, per 100 utterances) and WER; and the
WER when every utterance is decoded with one list of 1,000 distractors only (general
speech with a large list switched on: the cost of biasing where no name is said).

    python benchmarks/tune_boost.py [--utterances 300]

The test split is never touched here: it stays for reporting.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from pathlib import Path

import numpy as np

from biasing import EntityList, build_biased_decoder
from biasing.datasets import load_dataset
from biasing.metrics import edit_distance
from biasing.paths import atomic_write, cache_root, shared_root

SHARED = shared_root()
MODEL = SHARED / "models" / "quartznet15x5"
SPEECHOCEAN = SHARED / "data" / "speechocean762"
EARNINGS_LISTS = SHARED / "data" / "earnings21" / "bias_lists"


def _logprobs(ids: list[str], paths: dict[str, Path], cache: Path) -> dict[str, np.ndarray]:
    from biasing.audio import load_audio
    from biasing.models import load_model

    cache.mkdir(parents=True, exist_ok=True)
    file = cache / f"speechocean_train_{len(ids)}.npz"
    if file.exists():
        stored = np.load(file)
        if set(stored.files) == set(ids):
            return {k: stored[k] for k in ids}
    model = load_model(f"quartznet:{MODEL}")
    out: dict[str, np.ndarray] = {}
    for start in range(0, len(ids), 16):
        batch = ids[start:start + 16]
        waves = [load_audio(paths[i], model.sample_rate) for i in batch]
        for i, result in zip(batch, model.forward(waves)):
            out[i] = result.logprobs
        print(f"\rforward {start + len(batch)}/{len(ids)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    with atomic_write(file) as stream:
        np.savez(stream, **out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=300)
    parser.add_argument("--distractors", type=int, default=100)
    parser.add_argument("--beam-width", type=int, default=64)
    parser.add_argument("--global-list", type=int, default=1000,
                        help="size of the distractor-only list (random, seeded)")
    parser.add_argument("--grid", choices=("full", "small", "fine", "short"), default="full")
    parser.add_argument("--cache", type=Path, default=cache_root())
    args = parser.parse_args()
    if not MODEL.is_dir() or not SPEECHOCEAN.is_dir():
        sys.exit(f"skipped: needs {MODEL} and {SPEECHOCEAN} (development data)")
    train = {u.id: u for u in load_dataset(SPEECHOCEAN, "train")}
    texts = {i: u.text for i, u in train.items()}
    paths = {i: u.audio for i, u in train.items()}
    rng = random.Random(0)
    ids = sorted(rng.sample(sorted(texts), args.utterances))
    refs = {i: texts[i].lower().split() for i in ids}
    logprobs = _logprobs(ids, paths, args.cache)

    oracle = set((EARNINGS_LISTS / "oracle_list.txt").read_text().splitlines())
    pool = [e for e in (EARNINGS_LISTS / "distractor_list.txt").read_text().splitlines()
            if e not in oracle and e.replace(" ", "").isalpha()]
    base = build_biased_decoder(build_labels())
    plain = {i: base.decode(logprobs[i], beam_width=args.beam_width, entities=[]).split() for i in ids}
    targets = {i: sorted({w for w in refs[i] if len(w) >= 4 and w not in plain[i]})[:3]
               for i in ids}
    lists = {}
    for i in ids:
        distractors = [d for d in rng.sample(pool, args.distractors + 20)
                       if not set(d.lower().split()) & set(refs[i])][:args.distractors]
        lists[i] = EntityList(targets[i] + distractors)
    # as `ctc-biasing eval` does: random entries of the whole distractor list, even short
    # ones and ones whose words occur in the speech
    everything = [e for e in (EARNINGS_LISTS / "distractor_list.txt").read_text().splitlines()
                  if e.strip()]
    global_list = EntityList(random.Random(1).sample(everything, args.global_list),
                             on_unrepresentable="skip")
    n_targets = sum(len(t) for t in targets.values())
    n_words = sum(len(r) for r in refs.values())
    print(f"{len(ids)} utterances, {n_words} words, {n_targets} missed words as targets, "
          f"{args.distractors} distractors each, beam {args.beam_width}\n")
    print("| unit_bonus | adaptive_scale | max_adaptive | completion_bonus | full_bonus_chars "
          "| target recall "
          f"| false alarms /100 utt | WER | WER, {len(global_list):,} distractors only "
          "| decode s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    wer = sum(edit_distance(refs[i], plain[i]) for i in ids) / n_words
    print(f"| no list | | | | | 0.0% | 0.0 | {wer:.1%} | {wer:.1%} | |")
    if args.grid == "full":
        grid = list(itertools.product((0.1, 0.2, 0.5), (0.5,), (1.0, 2.0, 3.0),
                                      (1.0, 2.0, 4.0), (0,)))
    elif args.grid == "small":
        grid = list(itertools.product((0.2, 0.5), (0.5, 1.0), (2.0, 3.0), (2.0, 4.0), (0,)))
    elif args.grid == "fine":
        grid = list(itertools.product((0.3, 0.4), (0.5,), (2.0,), (1.0, 2.0), (0,)))
    else:
        grid = list(itertools.product((0.3, 0.4), (0.5,), (2.0,), (2.0,), (0, 5, 8)))
    for unit, scale, cap, completion, full in grid:
        decoder = base.with_options(unit_bonus=unit, adaptive_scale=scale, max_adaptive=cap,
                                    completion_bonus=completion, full_bonus_chars=full)
        hits = alarms = errors = 0
        started = time.perf_counter()
        for i in ids:
            hyp = decoder.decode(logprobs[i], beam_width=args.beam_width, entities=lists[i])
            words = hyp.lower().split()
            hits += sum(t in words for t in targets[i])
            listed = {w for e in lists[i] for w in e.text.lower().split()}
            alarms += sum(w in listed and w not in refs[i] for w in words)
            errors += edit_distance(refs[i], words)
        seconds = time.perf_counter() - started
        general = sum(edit_distance(refs[i], decoder.decode(
            logprobs[i], beam_width=args.beam_width, entities=global_list).lower().split())
            for i in ids) / n_words
        print(f"| {unit} | {scale} | {cap} | {completion} | {full} | {hits / n_targets:.1%} | "
              f"{100 * alarms / len(ids):.1f} | {errors / n_words:.1%} | {general:.1%} "
              f"| {seconds:.0f} |", flush=True)


def build_labels() -> list[str]:
    import json

    config = json.loads((MODEL / "config.json").read_text())
    return [*config["labels"], ""]


if __name__ == "__main__":
    main()
