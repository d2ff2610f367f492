"""What separates the names a decoding gets right from the ones it writes where none was
said: per technique (boost, lookup, spot), how far each placed name's spelling falls below
the output's frame-wise best path (nats per unit), how well its phones fit (nats per phone)
and how long it is, for true names on the tuning split and false ones there and on general
speech.

Usage:
    python benchmarks/false_alarm_anatomy.py [--model default] [--general 300]

Tuning split (earnings21_tune + names_tune, lists of 100) and speechocean762 *train*
(``--general`` utterances, 1,000 distractors each): the data the defaults are chosen on.
A name is "true" when the reference says it at all (a simple test, enough to compare the
two groups). Default options of the decoder with phones (the companion's for a model
without a phone head). Prints a table of quartiles.
"""

from __future__ import annotations

import argparse
import random
import sys
import warnings

import numpy as np

from biasing import build_biased_decoder
from biasing.datasets import load_dataset, read_entities_per_utt
from biasing.decoders.inputs import to_logprobs
from biasing.decoders.support import UnitEvidence
from biasing.entities import EntityList
from biasing.evaluation import OutputCache, default_cache_dir
from biasing.evaluation.lists import with_distractors
from biasing.evaluation.run import model_output
from biasing.metrics import normalize_text
from biasing.models import load_model
from biasing.models.companion import attach_companion
from biasing.paths import cache_root, shared_root

DISTRACTORS = shared_root() / "data" / "earnings21" / "bias_lists" / "distractor_list.txt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--general", type=int, default=300)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    folders = [cache_root() / "earnings21_tune", cache_root() / "names_tune"]
    if not all((f / "asr_test.tsv").is_file() for f in folders) or not DISTRACTORS.is_file():
        print("skipped: needs the tuning split and the development data")
        return 0
    from biasing.cli import decoder_options

    warnings.simplefilter("ignore")
    model = attach_companion(load_model(args.model), "default")
    cache = OutputCache.for_model(default_cache_dir(), model)
    pool = [line for line in DISTRACTORS.read_text(encoding="utf-8").splitlines() if line]
    decoder = build_biased_decoder(model.labels, tokenizer=getattr(model, "tokenizer_path", None),
                                   phone_labels=model.head_labels["phones"],
                                   **decoder_options(args.set))
    space = decoder.labels.index(" ") if " " in decoder.labels else None
    rows: list[tuple[str, str, bool, float, float, int]] = []

    def run(utterances, lists, kind):  # type: ignore[no-untyped-def]
        for utt in utterances:
            out = model_output(model, utt.audio, cache, ["phones"])[0]
            entities = lists[utt.id]
            best = decoder.decode_hypotheses(out.logprobs, entities=entities,
                                             phones=out.heads["phones"])[0]
            if not best.entities:
                continue
            units = UnitEvidence(to_logprobs(out.logprobs.astype(np.float64)),
                                 decoder.alphabet.blank, space)
            bundle = decoder.lists.get(entities)
            spelled = decoder._spelled(bundle)
            prons = decoder._pronunciations(bundle)
            reference = f" {' '.join(normalize_text(utt.text))} "
            for match in best.entities:
                index = spelled.index[match.text]
                deficit = units.deficit(spelled.alternatives[index],
                                        *units.span(match.start_frame, match.end_frame))
                phones = max((len(a) for a in prons.units[index]), default=1)
                true = f" {' '.join(normalize_text(match.text))} " in reference
                rows.append((kind, match.technique, true, deficit,
                             (match.phone_score or 0.0) / phones,
                             sum(c.isalpha() for c in match.text)))

    tune = [u for folder in folders for u in load_dataset(folder, "test")]
    own = {k: v for folder in folders
           for k, v in read_entities_per_utt(folder / "entities_per_utt.tsv").items()}
    rng = random.Random(0)
    run(tune, {u.id: EntityList(with_distractors(own.get(u.id, []), pool, 100, rng),
                                on_unrepresentable="skip") for u in tune}, "tuning split")
    train = load_dataset(shared_root() / "data" / "speechocean762", "train")
    general = random.Random(1).sample(train, args.general)
    run(general, {u.id: EntityList(random.Random(2).sample(pool, 1000),
                                   on_unrepresentable="skip") for u in general}, "general")
    print(f"{args.model}: {len(tune)} tuning utterances, {len(general)} general\n")
    print("| set | technique | names | n | unit deficit p25/p50/p75 | phone fit p25/p50/p75 "
          "| letters p50 |")
    print("|---|---|---|---:|---|---|---:|")
    for kind in ("tuning split", "general"):
        for technique in ("boost", "lookup", "spot"):
            for true in (True, False):
                chosen = [r for r in rows if r[:3] == (kind, technique, true)]
                if not chosen:
                    continue
                deficit = np.percentile([r[3] for r in chosen], [25, 50, 75])
                fit = np.percentile([r[4] for r in chosen], [25, 50, 75])
                letters = np.median([r[5] for r in chosen])
                print(f"| {kind} | {technique} | {'true' if true else 'false'} | "
                      f"{len(chosen)} | {' / '.join(f'{x:.2f}' for x in deficit)} | "
                      f"{' / '.join(f'{x:.2f}' for x in fit)} | {letters:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
