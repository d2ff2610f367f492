"""Name-dense training sentences for the contextual adapter, and their synthetic speech.

The bundled model has heard every name of its own training text, so on that text the adapter
has nothing to learn: the base output is already right. These sentences carry rare words the
model never heard, built into people, companies, places and drugs as the names tuning split
does (``recipes.names_tune``), from a disjoint pool: words of the default model's training
text, of the dev benchmark (entities and sentences), of the example list and of the names
tuning split (its ``words.tsv``) are all left out. The voices are the intelligible training
voices of the default model (never the held-out ones).

Writes into ``--out`` (default ``$CTC_BIASING_CACHE/adapter_train``):

- ``text/sentences.tsv``: ``id<TAB>text<TAB>entity|entity...`` (the dev format);
- ``text/entities.txt``: every entity, one per line;
- ``audio/``: ``asr_train.tsv`` and the clips (``biasing.testset.make_testset``).

    python -m recipes.names_tune                 # first: its words stay out of training
    python -m recipes.adapter.prepare [--words 2400 --sentences 2400 --mentions 3200]
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from biasing.paths import cache_root, write_text_atomic
from biasing.testset import make_testset
from recipes.default_model.prepare import HELDOUT_VOICES
from recipes.earnings21_dev.select import DEFAULT_EARNINGS21, read_list, wordfreq_rarity
from recipes.names_tune import DEFAULT_OUT as TUNE_TEXT
from recipes.names_tune import (
    build_entities,
    build_sentences,
    g2p_candidates,
    heard_words,
    name_like,
    pick_words,
)

DEFAULT_OUT = cache_root() / "adapter_train"
# Voices the bundled model understands (no plain espeak or MBROLA: the base model mishears
# most of their words, names or not), none of the held-out ones.
VOICES = ("flite-slt", "flite-awb", "flite-rms", "festival-slt-hts", "festival-kal",
          "festival-us1", "festival-us2", "festival-us3", "pico-en-us", "pico-en-gb",
          "rhvoice-bdl", "rhvoice-clb", "rhvoice-slt", "piper-joe")
assert not set(VOICES) & set(HELDOUT_VOICES)


def tuning_words(folder: Path = TUNE_TEXT) -> set[str]:
    """The rare words of the names tuning split (``words.tsv``), which training must avoid."""
    path = folder / "words.tsv"
    if not path.is_file():
        sys.exit(f"adapter.prepare: {path} is missing; run python -m recipes.names_tune first")
    return {line.split("\t")[0] for line in read_list(path)[1:]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--words", type=int, default=2400)
    parser.add_argument("--sentences", type=int, default=2400)
    parser.add_argument("--mentions", type=int, default=3200)
    parser.add_argument("--zipf", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--text-only", action="store_true", help="write the text, no audio")
    args = parser.parse_args(argv)
    from wordfreq import zipf_frequency

    from biasing.lexicon._resources import load_cmudict

    def zipf(word: str) -> float:
        return zipf_frequency(word, "en")

    cmudict = load_cmudict()
    is_rare = wordfreq_rarity(args.zipf)
    heard, _ = heard_words()
    avoid = heard | tuning_words()
    outside = g2p_candidates(DEFAULT_EARNINGS21)
    cmu_pool = [w for w in cmudict if w not in avoid and name_like(w, is_rare, zipf)]
    g2p_pool = [w for w in outside if w not in cmudict and w not in avoid and
                name_like(w, is_rare, zipf, compounds=False)]
    rng = random.Random(args.seed)
    picked = pick_words(g2p_pool, min(len(g2p_pool), args.words // 4), rng)
    picked += pick_words(cmu_pool, args.words - len(picked), rng)
    entities = build_entities(sorted(picked), rng)
    sentences = build_sentences(entities, args.sentences, args.mentions, rng)
    text = args.out / "text"
    rows = "".join(f"adapt_{i:05d}\t{s}\t{'|'.join(e.text for e in ents)}\n"
                   for i, (s, ents) in enumerate(sentences))
    write_text_atomic(text / "sentences.tsv", rows)
    write_text_atomic(text / "entities.txt",
                      "".join(sorted({e.text + "\n" for _, ents in sentences for e in ents})))
    print(f"adapter.prepare: pools {len(cmu_pool)} CMUdict + {len(g2p_pool)} other words; "
          f"picked {len(picked)}; {len(entities)} entities in {len(sentences)} sentences "
          f"-> {text}", file=sys.stderr)
    if args.text_only:
        return 0
    made = make_testset(text / "sentences.tsv", args.out / "audio", split="train",
                        voices=VOICES, jobs=args.jobs,
                        log=lambda line: print(f"adapter.prepare: {line}", file=sys.stderr,
                                               flush=True))
    return 1 if made.failures else 0


if __name__ == "__main__":
    sys.exit(main())
