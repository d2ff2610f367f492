"""Choose the phonetic techniques' defaults on the tuning split (never on a reported set).

The tuning split is `recipes.earnings21_tune` (Earnings-21 sentences outside the dev
selection, none of its entities in the dev set, read by four voices that neither the dev
benchmark nor the held-out voices use). Each utterance is decoded with its own entities
plus distractors up to ``--list-size`` (as ``ctc-biasing eval`` does); general speech is
speechocean762 *train* (``--general`` utterances, each with a list of 1,000 distractors),
where any listed name that appears is a false alarm. Prints one table row per setting:
entity P/R/F1 and WER on the tuning split, WER on general speech and its change against
no list.

    python -m recipes.earnings21_tune.select            # once: the split's text
    ctc-biasing make-testset ...                        # once: its audio (see that README)
    python benchmarks/tune_phonetic.py --grid margins   # the table

The bundled model; model outputs are cached like `ctc-biasing eval`'s.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from biasing.datasets import load_dataset, read_entities_per_utt
from biasing.entities import EntityList
from biasing.evaluation import EvalContext, OutputCache, default_cache_dir, run_eval
from biasing.evaluation.lists import with_distractors
from biasing.evaluation.techniques import TECHNIQUES, Technique
from biasing.models import load_model, set_threads
from biasing.paths import cache_root, shared_root

DISTRACTORS = shared_root() / "data" / "earnings21" / "bias_lists" / "distractor_list.txt"
SPEECHOCEAN = shared_root() / "data" / "speechocean762"

GRIDS: dict[str, dict[str, tuple[Any, ...]]] = {
    # the rule's margins and the rescoring weight
    "margins": {"lookup_margin": (0.0, 2.0, 4.0), "verify_margin": (2.0, 3.0, 5.0),
                "phone_weight": (0.5, 1.0)},
    # the lookup's margin against the credit of listed names and the charge on non-words
    "lookup": {"lookup_margin": (4.0, 6.0, 8.0, 10.0), "lookup_bonus": (0.5, 1.0),
               "oov_penalty": (1.0, 2.0)},
    # the charge on non-words against false alarms in messy general speech
    "oov": {"oov_penalty": (0.0, 1.0, 2.0)},
    # unit spotting merged into the (phonetic) beam output
    "merge": {"merge_spots": (False, True)},
    # the rescoring's weight on the phone score
    "weight": {"phone_weight": (0.25, 0.5, 1.0)},
    # the phone spotter's pruning: cost allowance (speed against recall)
    "spotter": {"spot_max_cost": (2.0, 3.0, 4.0)},
    # bolder subword boosting under the verifier
    "boost": {"verified_boost": (1.0, 1.5, 2.0, 3.0)},
    # a stricter verifier under bolder boosting
    "verify": {"verified_boost": (1.0, 1.5), "verify_margin": (1.0, 1.5, 2.0)},
    # unit spotting (technique "spot")
    "unit": {"spot_bonus": (0.5, 1.0, 1.5, 2.0), "spot_margin": (0.0, 2.0, 4.0)},
    "unit2": {"spot_bonus": (1.5, 2.0, 2.5), "spot_margin": (4.0, 6.0, 8.0)},
    "unit_unheard": {"spot_unheard": (5.0, 8.0, 12.0, 1000.0)},
    # the verifier on the output units (no phone evidence; use with --base subword, spot or
    # all and any --model); 1000 turns a test off
    "support": {"unit_margin": (1.0, 2.0, 3.0, 1000.0), "unit_confidence": (0.5, 1.0, 1000.0)},
    "support_margin": {"unit_margin": (0.5, 0.75, 1.0, 1.25)},
    "support_spots": {"spot_unit_margin": (1.0, 1.5, 2.0, 1000.0),
                      "unit_confidence": (1.0, 1000.0)},
    "support_on": {"verify_units": (False, True)},
    "one": {"merge_spots": (True,)},
    # false alarms on general speech: the output units must say something like a looked-up
    # name, and a stricter check of boosted ones on the phones
    "general": {"lookup_unit_margin": (1000.0, 3.0, 2.5, 2.0),
                "verify_margin": (2.0, 1.5, 1.0)},
}


def _grid(name: str, fixed: dict[str, Any]) -> list[dict[str, Any]]:
    axes = GRIDS[name]
    return [{**fixed, **dict(zip(axes, values))} for values in itertools.product(*axes.values())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, action="append",
                        help="tuning set folder(s) (default: both parts of the tuning split, "
                             "earnings21_tune and names_tune, under the cache root)")
    parser.add_argument("--list-size", type=int, default=100)
    parser.add_argument("--general", type=int, default=200,
                        help="speechocean762 train utterances for the false-alarm check")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="margins")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="fixed options for every setting of the grid")
    parser.add_argument("--beam-width", type=int, default=100)
    parser.add_argument("--limit", type=int, help="only the first N tuning utterances")
    parser.add_argument("--model", default="default", help="model spec (default: the bundled "
                                                           "model)")
    parser.add_argument("--base", help="the technique the grid varies (default: spot for the "
                                       "unit grids, else phonetic)")
    parser.add_argument("--companion", default="default",
                        help="phone companion for a model without a phone head (none: none)")
    parser.add_argument("--lead", type=float,
                        help="the companion's lead in seconds (default: its own)")
    args = parser.parse_args()
    folders = args.dataset or [cache_root() / "earnings21_tune", cache_root() / "names_tune"]
    missing = [str(f) for f in folders if not (f / "asr_test.tsv").is_file()]
    if missing:
        sys.exit(f"skipped: no tuning set at {', '.join(missing)} (see recipes/earnings21_tune)")
    from biasing.cli import decoder_options

    fixed = decoder_options(args.set)
    set_threads(None)
    model = load_model(args.model)
    if args.companion != "none" and "phones" not in getattr(model, "head_labels", {}):
        from biasing.models.companion import WithCompanion, load_companion

        companion = load_companion(args.companion)
        if args.lead is not None:
            companion.lead_s = args.lead
        model = WithCompanion(model, companion)
    context = EvalContext(labels=model.labels, kenlm_model_path=None,
                          tokenizer=getattr(model, "tokenizer_path", None),
                          beam_width=args.beam_width, options={},
                          head_labels=getattr(model, "head_labels", {}))
    cache = OutputCache.for_model(default_cache_dir(), model)
    base = TECHNIQUES[args.base or ("spot" if args.grid.startswith("unit") else "phonetic")]
    settings = _grid(args.grid, fixed)
    # a grid's own options win over what the technique fixes (e.g. phonetic's merge_spots)
    variants = [Technique(f"{base.name}#{n}", base.description,
                          defaults={**base.defaults, **s},
                          fixed={k: v for k, v in base.fixed.items() if k not in s},
                          needs=base.needs, phonetic=base.phonetic, spot=base.spot)
                for n, s in enumerate(settings)]
    techniques = [TECHNIQUES["none"], TECHNIQUES["subword"], *variants]

    tune = [u for folder in folders for u in load_dataset(folder, "test")[:args.limit]]
    own = {k: v for folder in folders
           for k, v in read_entities_per_utt(folder / "entities_per_utt.tsv").items()}
    pool = [line for line in DISTRACTORS.read_text(encoding="utf-8").splitlines() if line]
    rng = random.Random(0)
    lists = {u.id: EntityList(with_distractors(own.get(u.id, []), pool, args.list_size, rng),
                              on_unrepresentable="skip") for u in tune}
    general_runs = None
    if args.general and SPEECHOCEAN.is_dir():
        train = load_dataset(SPEECHOCEAN, "train")
        general = random.Random(1).sample(train, min(args.general, len(train)))
        big = {u.id: EntityList(random.Random(2).sample(pool, 1000),
                                on_unrepresentable="skip") for u in general}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            general_runs = run_eval(general, big, model, techniques, context, cache)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = run_eval(tune, lists, model, techniques, context, cache)
    print(f"tuning split {', '.join(str(f) for f in folders)}: {runs.n_utterances} utterances, lists of "
          f"{args.list_size}; general: {0 if general_runs is None else general_runs.n_utterances}"
          f" speechocean762 train utterances with 1,000 distractors ({time.perf_counter() - started:.0f} s)\n")
    keys = sorted({k for s in settings for k in s})
    print("| technique | " + " | ".join(keys) + " | P | R | F1 | WER | general WER | "
          "general FA | RTF |")
    print("|---" * (len(keys) + 8) + "|")
    general_by = {} if general_runs is None else {t.technique.name: t for t in general_runs.techniques}
    for run in runs.techniques:
        r = run.result
        values = [str(run.technique.defaults.get(k, "")) if "#" in run.technique.name else ""
                  for k in keys]
        g = general_by.get(run.technique.name)
        g_wer = "" if g is None else f"{100 * g.result.wer:.2f}"
        g_fa = "" if g is None else str(sum(u.score.entity_fp for u in g.utterances))
        print(f"| {run.technique.name} | " + " | ".join(values) +
              f" | {_pct(r.entity_precision)} | {_pct(r.entity_recall)} | "
              f"{_pct(r.entity_f1)} | {100 * r.wer:.2f} | {g_wer} | {g_fa} | {r.rtf:.3f} |",
              flush=True)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


if __name__ == "__main__":
    main()
