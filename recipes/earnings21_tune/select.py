"""Select the Earnings-21 tuning split: entity-bearing sentences that share nothing with the
dev benchmark, for choosing decoder defaults.

Writes into ``--out`` (default ``$CTC_BIASING_CACHE/earnings21_tune_text``) the same four
files as ``recipes.earnings21_dev.select`` (``sentences.tsv``, ``entities.txt``,
``entity_classes.tsv``, ``distractors.txt``), with the same sentence rules, and leaves out:

1. the 300 dev benchmark sentences (``data/benchmarks/earnings21_dev/selected_ids.txt``);
2. every sentence that mentions a dev benchmark entity: tagged as one of its entities, said
   as whole words anywhere in it, or sharing a rare word with one (``"Gandolfi"`` when the
   dev set has ``"Alberto Gandolfi"``); common words shared with a dev entity (``"Tom"`` and
   ``"Tom O'Malley"``) do not count;
3. the Earnings-21 sentences ``recipes.default_model.prepare`` (with its defaults, as the
   default model was trained) puts into the synthetic training speech.

    python -m recipes.earnings21_tune.select       # reads shared_root()/data/earnings21

Deterministic for a given ``--seed``; see README.md for the counts. The split exists to
choose defaults: never report results on it.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from biasing.paths import cache_root
from recipes.earnings21_dev.select import (
    DEFAULT_EARNINGS21,
    PINNED_IDS,
    Sentence,
    call_sentences,
    corpus_rarity,
    is_rare_entity,
    normalise_for_match,
    pick_distractors,
    read_entity_classes,
    read_list,
    read_nlp,
    select_sentences,
    wordfreq_rarity,
    write_outputs,
)
from recipes.earnings21_dev.select import DEFAULT_OUT as DEV_TEXT

DEFAULT_OUT = cache_root() / "earnings21_tune_text"
# Voices of the tuning audio: used neither by the dev benchmark (its 13 default voices) nor
# held out from training (recipes.default_model.prepare.HELDOUT_VOICES), and from the engine
# families QuartzNet-style models understand (flite, festival, RHVoice).
TUNE_VOICES = ("flite-awb", "festival-us1", "festival-us3", "rhvoice-clb")
# The arguments recipes.default_model.prepare's defaults give ``training_sentences`` (the
# default model was prepared with them, see data/models/default/README.md).
PREPARE_ARGS = {"n_earnings": 2500, "n_names": 1000, "n_speechocean": 400, "seed": 0}
# sha256 of the selected ids (one per line) with the default arguments, to pin the split.
PINNED_SHA256 = "c3283e2ab91608a7a5bf2a89599ea4dfb234cec82cda3b5a09f7329913a12674"
_DEFAULTS = {"target": 200, "seed": 2021, "zipf": 3.5, "min_words": 6, "max_words": 30}


def read_candidates(earnings21: Path, min_words: int = 6, max_words: int = 30,
                    ) -> tuple[list[Sentence], list[str]]:
    """Clean entity-bearing sentences of every call (the dev selection's rules) and every
    token of the transcripts (for the rarity fallback)."""
    transcripts = earnings21 / "transcripts"
    nlp_files = sorted((transcripts / "nlp_references").glob("*.nlp"))
    if not nlp_files:
        raise FileNotFoundError(f"no .nlp files under {transcripts / 'nlp_references'}")
    candidates: list[Sentence] = []
    words: list[str] = []
    for path in nlp_files:
        tokens = read_nlp(path)
        classes = read_entity_classes(transcripts / "wer_tags" / f"{path.stem}.wer_tag.json")
        candidates += call_sentences(tokens, classes, path.stem, min_words, max_words)
        words += [token.text for token in tokens]
    return candidates, words


def dev_entities(candidates_6_30: Iterable[Sentence], dev_ids: Sequence[str]) -> set[str]:
    """The dev benchmark's entities: those of its pinned sentences, found among the
    candidates of the dev rules (6 to 30 words).

    Raises:
        ValueError: a pinned id is not among the candidates (the rules or data changed).
    """
    by_id = {s.sentence_id: s for s in candidates_6_30}
    missing = [i for i in dev_ids if i not in by_id]
    if missing:
        raise ValueError(f"{len(missing)} pinned dev ids are not candidates, e.g. {missing[:3]}")
    return {e.text for i in dev_ids for e in by_id[i].entities}


def entity_words(entity: str) -> list[str]:
    """The words of an entity in lower case, split at spaces and hyphens (as
    ``is_rare_entity`` splits them)."""
    return [w.lower() for w in re.split(r"[\s\-]+", entity) if w]


def dev_overlap(sentence: Sentence, dev_keys: set[str], dev_rare_words: set[str]) -> str | None:
    """Why ``sentence`` touches the dev benchmark's entities, or None.

    ``dev_keys``: the dev entities through ``normalise_for_match``; ``dev_rare_words``: the
    rare words of the dev entities, lower case.
    """
    for entity in sentence.entities:
        if normalise_for_match(entity.text) in dev_keys:
            return "tags a dev entity"
    text = normalise_for_match(sentence.text)
    if any(key in text for key in dev_keys):
        return "says a dev entity"
    if any(w in dev_rare_words for e in sentence.entities for w in entity_words(e.text)):
        return "shares a rare word with a dev entity"
    return None


def training_texts() -> tuple[list[str], list[str]] | None:
    """(Earnings-21 sentences, all sentences) of the default model's synthetic training
    speech as ``recipes.default_model.prepare`` chooses them, or None (with a warning) when
    they cannot be rebuilt (it needs the dev text from ``recipes.earnings21_dev.select``)."""
    try:
        from recipes.default_model.prepare import training_sentences
        rows = training_sentences(**PREPARE_ARGS)
    except (ImportError, OSError, SystemExit) as err:
        print(f"select: warning: cannot rebuild the training sentences ({err}); they are "
              "not excluded", file=sys.stderr)
        return None
    return [t for i, t in rows if i.startswith("e21_")], [t for _, t in rows]


def in_texts(sentence: Sentence, keys: Sequence[str]) -> bool:
    """Whether ``sentence`` contains or is contained in one of ``keys`` (texts through
    ``normalise_for_match``): the training text splits sentences a little differently."""
    text = normalise_for_match(sentence.text)
    return any(text in key or key in text for key in keys)


def ids_sha256(ids: Iterable[str]) -> str:
    """sha256 of the ids, one per line."""
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--earnings21", type=Path, default=DEFAULT_EARNINGS21,
                        help="Earnings-21 folder with transcripts/ and bias_lists/ "
                             "(default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder (default: %(default)s)")
    parser.add_argument("--dev-ids", type=Path, default=PINNED_IDS,
                        help="the dev benchmark's ids (default: %(default)s)")
    parser.add_argument("--target", type=int, default=_DEFAULTS["target"],
                        help="number of sentences (default: %(default)s)")
    parser.add_argument("--max-per-call", type=int, default=None,
                        help="most sentences from one call (default: the smallest cap that "
                             "still gives --target sentences)")
    parser.add_argument("--min-words", type=int, default=_DEFAULTS["min_words"])
    parser.add_argument("--max-words", type=int, default=_DEFAULTS["max_words"])
    parser.add_argument("--zipf", type=float, default=_DEFAULTS["zipf"],
                        help="a word is rare below this wordfreq Zipf frequency (default 3.5)")
    parser.add_argument("--corpus-max-count", type=int, default=5,
                        help="without wordfreq: a word is rare when it occurs at most this "
                             "often in Earnings-21 (default 5)")
    parser.add_argument("--keep-training", action="store_true",
                        help="do not leave out the default model's training sentences")
    parser.add_argument("--seed", type=int, default=_DEFAULTS["seed"])
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        candidates, corpus_words = read_candidates(args.earnings21, args.min_words,
                                                   args.max_words)
        dev_rule = (candidates if (args.min_words, args.max_words) == (6, 30)
                    else read_candidates(args.earnings21)[0])
        dev_ids = read_list(args.dev_ids)
        dev_names = dev_entities(dev_rule, dev_ids)
    except (OSError, ValueError) as err:
        print(f"select: {err}", file=sys.stderr)
        return 2
    cached = DEV_TEXT / "entities.txt"
    if cached.is_file() and set(read_list(cached)) != dev_names:
        print(f"select: warning: {cached} differs from the entities of the pinned dev ids; "
              "leaving out both", file=sys.stderr)
        dev_names |= set(read_list(cached))
    try:
        is_rare_word: Callable[[str], bool] = wordfreq_rarity(args.zipf)
        rarity = f"wordfreq zipf < {args.zipf}"
    except ImportError:
        is_rare_word = corpus_rarity(corpus_words, args.corpus_max_count)
        rarity = f"at most {args.corpus_max_count} occurrences in Earnings-21"
    names = {e.text for s in candidates for e in s.entities}
    rare = {name for name in names if is_rare_entity(name, is_rare_word)}

    dev_set = set(dev_ids)
    dev_keys = {normalise_for_match(name) for name in dev_names}
    dev_rare_words = {w for name in dev_names for w in entity_words(name) if is_rare_word(w)}
    dropped: Counter[str] = Counter()
    pool = []
    for sentence in candidates:
        reason = ("a dev sentence" if sentence.sentence_id in dev_set
                  else dev_overlap(sentence, dev_keys, dev_rare_words))
        if reason:
            dropped[reason] += 1
        else:
            pool.append(sentence)
    training = None if args.keep_training else training_texts()
    heard = ""
    if training is not None:
        earnings_keys = [normalise_for_match(t) for t in training[0]]
        kept = [s for s in pool if not in_texts(s, earnings_keys)]
        dropped["a training sentence"] = len(pool) - len(kept)
        pool = kept
    chosen = select_sentences(pool, rare, args.target, args.seed, args.max_per_call)
    entities = {e.text for s in chosen for e in s.entities}
    if training is not None:
        said = "".join(normalise_for_match(t) for t in training[1])
        unheard = {name for name in entities if normalise_for_match(name) not in said}
        heard = (f"; {len(entities) - len(unheard)} of the entities are said somewhere in the "
                 f"training text ({len(unheard & rare)} rare ones are not)")
    lists = args.earnings21 / "bias_lists"
    distractors = pick_distractors(read_list(lists / "distractor_list.txt"),
                                   read_list(lists / "oracle_list.txt"),
                                   [s.text for s in chosen])
    write_outputs(args.out, chosen, rare, distractors)

    ids = [s.sentence_id for s in chosen]
    assert not set(ids) & dev_set and not entities & dev_names
    defaults = all(getattr(args, k) == v for k, v in _DEFAULTS.items())
    if defaults and args.max_per_call is None and training is not None and \
            ids_sha256(ids) != PINNED_SHA256:
        print(f"select: warning: the selection (sha256 {ids_sha256(ids)}) differs from the "
              f"pinned one ({PINNED_SHA256}); is wordfreq installed?", file=sys.stderr)
    per_class = Counter(e.entity_class for s in chosen for e in s.entities)
    calls = Counter(s.call_id for s in chosen)
    print(f"select: {len(candidates)} candidate sentences; left out "
          f"{dict(sorted(dropped.items()))}; {len(pool)} remain; chose {len(chosen)} from "
          f"{len(calls)} calls (at most {max(calls.values(), default=0)} from one call), "
          f"{sum(len(s.text.split()) for s in chosen)} words; {len(entities)} distinct "
          f"entities, {len(entities & rare)} rare ({rarity}); entity mentions per class "
          f"{dict(sorted(per_class.items()))}{heard}; {len(distractors)} distractors; "
          f"sha256 of the ids {ids_sha256(ids)} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
