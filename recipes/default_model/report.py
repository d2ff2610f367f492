"""Greedy WER of every subword head and phone error rate of the phone head, per test set.

Sets: speechocean762 *test* (real non-native speech) and the held-out-voice TTS set that
``prepare`` writes (the Earnings-21 dev sentences read by voices no training utterance
uses). Reference phones are the first CMUdict / G2P pronunciation of each reference word
without stress, as in training. Prints a markdown table.

    python -m recipes.default_model.report [--model default] [--sets heldout] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import time

from biasing.audio import load_audio
from biasing.datasets import load_dataset
from biasing.lexicon import pronounce_batch, strip_stress
from biasing.metrics import edit_distance, normalize_text
from biasing.models import greedy_labels, load_model
from biasing.paths import shared_root
from biasing.testset import tts_text
from recipes.common import PREPARED, unit_words

SETS = {  # name -> (title, folder, split)
    "speechocean762": ("speechocean762 test", shared_root() / "data" / "speechocean762", "test"),
    "heldout": ("held-out voices", PREPARED / "tts_heldout", "test"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--limit", type=int, default=0, help="first N utterances per set")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated: {list(SETS)}")
    args = parser.parse_args()
    model = load_model(args.model)
    lexicon: dict[str, tuple[str, ...]] = {}
    rows = []
    for key in args.sets.split(","):
        name, folder, split = SETS[key]
        if not folder.is_dir():
            print(f"skipping {name}: {folder} is missing", file=sys.stderr)
            continue
        dataset = load_dataset(folder, split)
        dataset = sorted(dataset[: args.limit or None], key=lambda u: u.id)
        refs = [normalize_text(tts_text(u.text) if "heldout" in str(folder) else u.text)
                for u in dataset]
        words = sorted({w for ref in refs for w in ref if w not in lexicon})
        for word, prons in zip(words, pronounce_batch(words)):
            lexicon[word] = strip_stress(prons[0]) if prons else ()
        errors: dict[str, list[int]] = {}
        started = time.time()
        seconds = 0.0
        for start in range(0, len(dataset), args.batch):
            chunk = dataset[start:start + args.batch]
            waves = [load_audio(u.audio, model.sample_rate) for u in chunk]
            seconds += sum(len(w) for w in waves) / model.sample_rate
            for out, ref in zip(model.forward(waves), refs[start:start + args.batch]):
                posteriors = {"final": out.logprobs, **out.heads}
                for head, logprobs in posteriors.items():
                    labels = getattr(model, "head_labels", {}).get(head, model.labels)
                    hyp = greedy_labels(logprobs, labels)
                    if head == "phones":
                        target = [p for w in ref for p in lexicon[w]]
                        errs = edit_distance(target, hyp), len(target)
                    else:
                        errs = edit_distance(ref, normalize_text(unit_words(hyp))), len(ref)
                    total = errors.setdefault(head, [0, 0])
                    total[0] += errs[0]
                    total[1] += errs[1]
        rtf = (time.time() - started) / max(seconds, 1e-9)
        rows.append((name, len(dataset), seconds / 3600, errors, rtf))
    heads = sorted({h for row in rows for h in row[3]},
                   key=lambda h: (h == "phones", h != "final", len(h), h))
    print(f"model: {args.model}\n")
    print("| set | utterances | hours | " + " | ".join(
        "PER phones" if h == "phones" else f"greedy WER {h}" for h in heads) + " | RTF |")
    print("|---|---:|---:|" + "---:|" * (len(heads) + 1))
    for name, n, hours, errors, rtf in rows:
        cells = [f"{100 * errors[h][0] / max(errors[h][1], 1):.1f}" if h in errors else ""
                 for h in heads]
        print(f"| {name} | {n} | {hours:.2f} | " + " | ".join(cells) + f" | {rtf:.3f} |")


if __name__ == "__main__":
    main()
