"""Speed of the phonetic techniques and the spotters on real speech (the bundled model).

Three tables:

1. decode time per technique with per-utterance lists of ``--list-size`` (default 1,000:
   each utterance's own entities plus Earnings-21 distractors): ``subword`` (beam search
   with boosting), ``phonetic`` (the same, then phone lookup, verification and rescoring),
   ``phonetic-spot`` (and unit spots merged: the default), ``spot`` (greedy + unit
   spotting) and ``all`` (the default plus three G2G spellings per name; no LM), as RTF (decode seconds per audio second, the forward pass excluded) and as a
   ratio to ``subword``;
2. the spotters alone with one list of ``--spot-size`` entries (default 10,000): RTF of the
   phone spotter and of the character spotter;
3. pronunciations for that list: compiled from the lexicon (CMUdict + neural G2P) into an
   empty cache, then reloaded from the disk cache by a new phone set.

The audio is ``--utterances`` utterances of the Earnings-21 dev benchmark (made with
``ctc-biasing make-testset``, see recipes/earnings21_dev); the model's outputs are cached
like ``ctc-biasing eval``'s. Everything runs in this process on one torch thread.

    python benchmarks/phonetic_speed.py [--utterances 60] [--list-size 1000]
        [--spot-size 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import warnings

from biasing import EntityList, build_biased_decoder
from biasing.datasets import load_dataset, read_entities_per_utt
from biasing.decoders.pronunciations import PhoneSet
from biasing.decoders.spotting import SpotOptions, UnitTrie, spot
from biasing.evaluation import OutputCache, default_cache_dir
from biasing.evaluation.lists import with_distractors
from biasing.evaluation.run import model_output
from biasing.lexicon.g2p import in_dictionary
from biasing.models import load_model, set_threads
from biasing.paths import cache_root, shared_root

LISTS = shared_root() / "data" / "earnings21" / "bias_lists"


def _names(n: int, rng: random.Random, pool: list[str]) -> list[str]:
    """``n`` distinct names: the Earnings-21 lists first, then made-up two-word names from
    CMUdict words with one letter changed (so about half are outside CMUdict and go
    through the neural G2P)."""
    from biasing.lexicon._resources import load_cmudict

    words = sorted(w for w in load_cmudict() if w.isalpha() and 4 <= len(w) <= 10)
    out = list(dict.fromkeys(pool))[:n]
    seen = {x.casefold() for x in out}
    letters = "abcdefghijklmnopqrstuvwxyz"
    while len(out) < n:
        first, last = rng.choice(words), rng.choice(words)
        if rng.random() < 0.5:
            i = rng.randrange(len(last))
            last = last[:i] + rng.choice(letters) + last[i + 1:]
        name = f"{first.capitalize()} {last.capitalize()}"
        if name.casefold() not in seen:
            seen.add(name.casefold())
            out.append(name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(cache_root() / "earnings21_dev"))
    parser.add_argument("--utterances", type=int, default=60)
    parser.add_argument("--list-size", type=int, default=1000)
    parser.add_argument("--spot-size", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (the median)")
    args = parser.parse_args()
    try:
        dataset = load_dataset(args.dataset, "test")[:args.utterances]
    except (OSError, ValueError) as error:
        sys.exit(f"skipped: no dataset at {args.dataset} ({error})")
    if not LISTS.is_dir():
        sys.exit(f"skipped: needs {LISTS} (development data)")
    warnings.simplefilter("ignore")
    set_threads(1)
    model = load_model("default")
    cache = OutputCache.for_model(default_cache_dir(), model)
    outputs, audio_s = [], 0.0
    for utt in dataset:
        output, seconds, _ = model_output(model, utt.audio, cache, ["phones"])
        outputs.append(output)
        audio_s += seconds
    own = read_entities_per_utt(f"{args.dataset}/entities_per_utt.tsv")
    pool = [x for x in (LISTS / "distractor_list.txt").read_text().splitlines() if x]
    rng = random.Random(0)
    extra = _names(max(0, args.list_size - len(pool)) + len(pool), random.Random(1), pool)
    lists = [EntityList(with_distractors(own.get(u.id, []), extra, args.list_size, rng),
                        on_unrepresentable="skip") for u in dataset]
    phones = model.head_labels["phones"]
    # every list stays compiled (the default cache keeps 16: the untimed compile below
    # would be undone and the timings would include compiling)
    decoder = build_biased_decoder(model.labels, tokenizer=model.tokenizer_path,
                                   phone_labels=phones, list_cache=len(lists) + 1)
    for output, entities in zip(outputs, lists):  # compile every list once, untimed
        decoder.decode(output.logprobs, entities=entities, phones=output.heads["phones"])
        decoder.spot(output.logprobs, entities=entities)

    def timed(run) -> float:  # type: ignore[no-untyped-def]  # median of --repeats passes
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            for output, entities in zip(outputs, lists):
                run(output, entities)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    alone = decoder.with_options(merge_spots=False)  # each technique by itself, as eval runs it
    subword = timed(lambda o, e: alone.decode(o.logprobs, entities=e))
    phonetic = timed(lambda o, e: alone.decode(o.logprobs, entities=e,
                                               phones=o.heads["phones"]))
    merged = timed(lambda o, e: decoder.decode(o.logprobs, entities=e,
                                               phones=o.heads["phones"]))
    spotted = timed(lambda o, e: decoder.spot(o.logprobs, entities=e))
    every = decoder.with_options(g2g_variants=3)  # 'all' without an LM
    for output, entities in zip(outputs, lists):  # its lists with G2G variants, untimed
        every.decode(output.logprobs, entities=entities, phones=output.heads["phones"])
    together = timed(lambda o, e: every.decode(o.logprobs, entities=e,
                                               phones=o.heads["phones"]))
    print(f"{len(dataset)} utterances, {audio_s:.0f} s of audio, lists of {args.list_size}, "
          f"beam 100, one thread, median of {args.repeats} passes\n")
    print("| technique | decode s | RTF | x subword |")
    print("|---|---:|---:|---:|")
    for name, seconds in (("subword", subword), ("phonetic", phonetic),
                          ("phonetic-spot (the default)", merged), ("spot", spotted),
                          ("all (no LM; + 3 G2G variants per name)", together)):
        print(f"| {name} | {seconds:.2f} | {seconds / audio_s:.4f} | {seconds / subword:.2f} |")

    big = EntityList(_names(args.spot_size, random.Random(2), pool), on_unrepresentable="skip")
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        prons = PhoneSet(phones, cache_dir=folder).compile(big)
        compile_s = time.perf_counter() - started
        started = time.perf_counter()
        PhoneSet(phones, cache_dir=folder).compile(big)
        reload_s = time.perf_counter() - started
    units = decoder.compile(big)
    char_trie = UnitTrie((i, u) for i, u in units.units if u)
    options = SpotOptions(floor=8.0)
    blank = model.labels.index("")
    phone_blank = phones.index("")
    started = time.perf_counter()
    found = sum(len(spot(o.heads["phones"], phone_blank, prons.trie, options)) for o in outputs)
    phone_s = time.perf_counter() - started
    started = time.perf_counter()
    for o in outputs:
        spot(o.logprobs, blank, char_trie, options)
    char_s = time.perf_counter() - started
    outside = sum(1 for e in big for w in e.text.split() if not in_dictionary(w))
    print(f"\n{len(big):,} entities ({outside:,} words outside CMUdict); phone trie "
          f"{len(prons.trie):,} nodes, character trie {len(char_trie):,} nodes\n")
    print("| step | seconds | RTF |")
    print("|---|---:|---:|")
    print(f"| phone spotting ({found / len(outputs):.0f} candidates per utterance) | "
          f"{phone_s:.2f} | {phone_s / audio_s:.4f} |")
    print(f"| character spotting | {char_s:.2f} | {char_s / audio_s:.4f} |")
    print(f"| pronunciations, compiled (empty cache) | {compile_s:.1f} | |")
    print(f"| pronunciations, reloaded from the disk cache | {reload_s:.2f} | |")


if __name__ == "__main__":
    main()
