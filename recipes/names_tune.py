"""Make the second part of the tuning split: template sentences dense in rare names that the
bundled model never heard, for choosing decoder defaults.

The Earnings-21 tuning split (``recipes.earnings21_tune``) has mostly common names the
default model was trained on; this part has only new ones. It picks about 300 rare
name-like words (wordfreq Zipf frequency below 2.0, letters only, at least 5 of them):
half from CMUdict (the lexicon knows them) and half that CMUdict lacks (their
pronunciations come from the neural G2P), taken from the Earnings-21 bias lists and the
capitalised words of the Earnings-21 transcripts. Every word said anywhere in the default
model's training text (rebuilt with ``recipes.default_model.prepare.training_sentences``
and prepare's defaults, plus all of speechocean762 *train*), in the dev benchmark's
entities or sentences, or in ``data/examples/entities.txt`` is left out.

From those words it builds people ("Maria Waskow", "Sietsema Bourla"), companies
("Granzow Therapeutics"), places and drug-like names, and puts one or two of them into
each of about 200 template sentences; each rare word is used at most twice. It writes into
``--out`` (default ``$CTC_BIASING_CACHE/names_tune_text``):

- ``sentences.tsv``: ``names_NNN<TAB>text<TAB>entity|entity...``, the dev format;
- ``entities.txt``: every distinct entity, one per line;
- ``entity_classes.tsv``: ``entity<TAB>classes<TAB>rare<TAB>sentences`` (header), as the dev
  selection writes it (PERSON / ORG / GPE / PRODUCT);
- ``words.tsv``: ``word<TAB>source<TAB>zipf<TAB>uses`` (header), source ``cmudict`` or
  ``g2p:bias_lists`` / ``g2p:transcripts``;
- ``distractors.txt``: entries of ``bias_lists/distractor_list.txt`` that share no word
  with the picked words and are not said in any sentence.

    python -m recipes.names_tune      # needs python -m recipes.earnings21_dev.select first

Deterministic for a given ``--seed`` (and wordfreq / cmudict versions); see
``recipes/earnings21_tune/README.md``. The split exists to choose defaults: never report
results on it.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import random
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from biasing.paths import cache_root, checkout_root, write_text_atomic
from recipes.earnings21_dev.select import (
    DEFAULT_EARNINGS21,
    normalise_for_match,
    read_list,
    read_nlp,
    wordfreq_rarity,
)
from recipes.earnings21_dev.select import DEFAULT_OUT as DEV_TEXT
from recipes.earnings21_tune.select import PREPARE_ARGS, TUNE_VOICES

DEFAULT_OUT = cache_root() / "names_tune_text"
AUDIO_OUT = cache_root() / "names_tune"  # where the README's make-testset command writes
EXAMPLES = checkout_root() / "data" / "examples" / "entities.txt"
# sha256 of sentences.tsv with the default arguments (wordfreq 3.1.1, cmudict 1.1.3).
PINNED_SHA256 = "2ed0392986586764b21516e83c4763bfed035e24b997349eeec30a5ae4eb3f12"
_DEFAULTS = {"words": 300, "sentences": 200, "mentions": 300, "zipf": 2.0, "seed": 2024}
__all__ = ["AUDIO_OUT", "DEFAULT_OUT", "TUNE_VOICES", "NameEntity", "build_entities",
           "build_sentences", "g2p_candidates", "heard_words", "is_derived", "letter_words",
           "main", "name_like", "readable"]

# ------------------------------------------------------------------------------- words

# Common first names for people whose surname alone is rare (the model knows these).
FIRST_NAMES = ("Maria", "James", "Sarah", "David", "Laura", "Michael", "Anna", "Peter",
               "Emily", "Daniel", "Susan", "Robert", "Linda", "Thomas", "Karen", "Paul",
               "Nancy", "Mark", "Helen", "George", "Rachel", "Steven", "Julia", "Brian",
               "Kevin", "Lisa", "Andrew", "Carol", "Eric", "Jennifer")
COMPANY_SUFFIXES = ("Holdings", "Labs", "Therapeutics", "Systems", "Partners", "Capital")
# Endings and beginnings of English derivations: "quenchers" is "quench" + "ers", a word
# rather than a name. A word is derived when what is left is a common word.
_SUFFIXES = ("s", "es", "ed", "er", "ers", "ing", "ings", "ly", "ally", "ness", "ment",
             "ments", "tion", "tions", "ation", "ations", "ity", "ities", "ism", "isms", "ist",
             "ists", "ize", "ized", "izes", "ise", "ised", "ous", "ful", "less", "ship",
             "ward", "wards", "wise", "able", "ible", "ic", "ical", "al", "ate", "ated",
             "ates", "ian", "ians", "ish", "like", "y", "ery", "ry", "ence", "ance", "ant",
             "ent", "ive", "oid", "ology", "ologist", "ory", "ary", "ships", "ine", "mania")
_PREFIXES = ("un", "re", "mis", "non", "pre", "over", "under", "anti", "extra", "micro",
             "inter", "super", "sub", "semi", "counter", "out", "multi", "hyper", "dis", "de",
             "in", "im", "en", "neo", "tele")
_VOWELS = "aeiouy"
# Two consonants a word may start with (a word starting with others, "nmbtu", "lmoats", is
# an acronym or a code, not a name a voice can read).
_ONSETS = frozenset({
    "bh", "bj", "bl", "br", "ch", "cl", "cr", "dh", "dr", "dw", "fl", "fr", "gh", "gl", "gn",
    "gr", "kh", "kl", "kn", "kr", "ph", "pl", "pr", "ps", "qu", "rh", "sc", "sh", "sk", "sl",
    "sm", "sn", "sp", "sr", "st", "sv", "sw", "sz", "th", "tr", "ts", "tw", "vl", "wh", "wr",
    "zh", "zw"})


def letter_words(text: str) -> set[str]:
    """The runs of letters of ``text``, lower case ("O'Malley-Smith" gives o, malley,
    smith)."""
    return set(re.findall(r"[^\W\d_]+", text.lower()))


def is_derived(word: str, zipf: Callable[[str], float], common: float = 2.5,
               part: float | None = 3.5) -> bool:
    """Whether ``word`` looks like an English derivation or compound rather than a name:
    a common word (Zipf >= ``common``) plus a suffix or after a prefix ("misreported",
    "quandaries"), or (unless ``part`` is None) two frequent words (Zipf >= ``part``)
    joined ("knifepoint")."""
    for suffix in _SUFFIXES:
        stem = word[:-len(suffix)]
        if not word.endswith(suffix) or len(stem) < 3:
            continue
        stems = [stem, stem + "e"]
        if len(stem) > 3 and stem[-1] == stem[-2]:
            stems.append(stem[:-1])  # "running"
        if stem.endswith("i"):
            stems.append(stem[:-1] + "y")  # "quandaries"
        if any(zipf(s) >= common for s in stems):
            return True
    for prefix in _PREFIXES:
        rest = word[len(prefix):]
        if word.startswith(prefix) and len(rest) >= 4 and zipf(rest) >= common:
            return True
    return part is not None and any(zipf(word[:i]) >= part and zipf(word[i:]) >= part
                                    for i in range(3, len(word) - 2))


def readable(word: str) -> bool:
    """Whether a voice can read ``word`` (lower case) as a word: it has a vowel, starts with
    a vowel, one consonant or a usual pair of them, and has no run of six consonants."""
    return (any(c in _VOWELS for c in word) and
            (word[0] in _VOWELS or word[1] in _VOWELS or word[:2] in _ONSETS) and
            not re.search(f"[^{_VOWELS}]{{6}}", word))


def name_like(word: str, is_rare: Callable[[str], bool], zipf: Callable[[str], float],
              compounds: bool = True) -> bool:
    """A rare, readable word of at least 5 ASCII letters that is not an English derivation
    (nor, with ``compounds``, two frequent words joined: names from a list of names may
    be, "Brighthouse")."""
    return (len(word) >= 5 and word.isascii() and word.isalpha() and readable(word) and
            is_rare(word) and not is_derived(word, zipf, part=3.5 if compounds else None))


def g2p_candidates(earnings21: Path) -> dict[str, str]:
    """Lower-case words of the Earnings-21 bias lists and of the capitalised tokens inside
    the transcripts' sentences (not their first word; "Orsted", not "GILTI" or "WebEx")
    -> ``"bias_lists"`` / ``"transcripts"``."""
    found: dict[str, str] = {}
    for name in ("oracle_list.txt", "distractor_list.txt"):
        for entry in read_list(earnings21 / "bias_lists" / name):
            for word in sorted(letter_words(entry)):
                found.setdefault(word, "bias_lists")
    for path in sorted((earnings21 / "transcripts" / "nlp_references").glob("*.nlp")):
        tokens = read_nlp(path)
        for before, token in itertools.pairwise(tokens):
            if token.text[:1].isupper() and not any(c.isupper() for c in token.text[1:]) \
                    and before.punct not in (".", "?", "!"):
                for word in sorted(letter_words(token.text)):
                    found.setdefault(word, "transcripts")
    return found


def heard_words() -> tuple[set[str], dict[str, int]]:
    """Every word the new names must avoid, and how many come from each source: the default
    model's training text (prepare's sentences and all of speechocean762 train), the dev
    benchmark's entities and sentences, and the example entity list.

    Raises:
        SystemExit: the dev text (``python -m recipes.earnings21_dev.select``) is missing.
    """
    from recipes.default_model.prepare import training_sentences
    from recipes.dev_lm import speechocean_train_texts

    if not (DEV_TEXT / "entities.txt").is_file():
        sys.exit(f"names_tune: run python -m recipes.earnings21_dev.select first "
                 f"({DEV_TEXT} is missing)")
    sources = {
        "training text": [t for _, t in training_sentences(**PREPARE_ARGS)]
        + speechocean_train_texts(),
        "dev entities": read_list(DEV_TEXT / "entities.txt"),
        "dev sentences": [line.split("\t")[1] for line in
                          read_list(DEV_TEXT / "sentences.tsv")],
        "example entities": read_list(EXAMPLES),
    }
    words: set[str] = set()
    counts = {}
    for name, texts in sources.items():
        found = set().union(*(letter_words(t) for t in texts))
        counts[name] = len(found)
        words |= found
    return words, counts


def pick_words(pool: Sequence[str], n: int, rng: random.Random) -> list[str]:
    """``n`` words of ``pool`` (all when it has fewer) drawn with ``rng``, in pool order."""
    chosen = set(rng.sample(sorted(pool), min(n, len(pool))))
    return [w for w in sorted(pool) if w in chosen]


# ---------------------------------------------------------------------------- entities

_CLASSES = {"P": "PERSON", "C": "ORG", "L": "GPE", "D": "PRODUCT"}
# Shares of the entities of each kind: people, companies, places, drugs.
_KIND_WEIGHTS = {"P": 0.4, "C": 0.25, "L": 0.15, "D": 0.2}


@dataclass(frozen=True)
class NameEntity:
    """One made-up entity."""

    text: str  # as written in the sentences: "Maria Waskow", "Granzow Therapeutics"
    kind: str  # P (person), C (company), L (place) or D (drug)
    rare: tuple[str, ...]  # its picked rare words, lower case

    @property
    def entity_class(self) -> str:
        return _CLASSES[self.kind]


def build_entities(words: Sequence[str], rng: random.Random) -> list[NameEntity]:
    """Entities that use each word of ``words`` once, in a seeded order: people (half with a
    common first name), companies with a suffix, places and drug-like names."""
    queue = list(words)
    rng.shuffle(queue)
    kinds, weights = zip(*_KIND_WEIGHTS.items())
    entities = []
    while queue:
        kind = rng.choices(kinds, weights)[0]
        first = queue.pop().capitalize()
        if kind == "P" and queue and rng.random() < 0.5:
            last = queue.pop()
            entities.append(NameEntity(f"{first} {last.capitalize()}", kind,
                                       (first.lower(), last)))
        elif kind == "P":
            entities.append(NameEntity(f"{rng.choice(FIRST_NAMES)} {first}", kind,
                                       (first.lower(),)))
        elif kind == "C":
            entities.append(NameEntity(f"{first} {rng.choice(COMPANY_SUFFIXES)}", kind,
                                       (first.lower(),)))
        else:
            entities.append(NameEntity(first, kind, (first.lower(),)))
    return entities


# --------------------------------------------------------------------------- sentences

# Templates by the kinds they hold ({P} person, {C} company, {L} place, {D} drug), filled in
# order. Each gives 8 to 20 words with its names in.
TEMPLATES: tuple[str, ...] = (
    # one person
    "I spoke with {P} about the new supply contract yesterday afternoon.",
    "Our chief financial officer, {P}, will walk you through the numbers.",
    "The next question comes from {P}, please go ahead.",
    "Thank you, {P}, and good morning to everyone on the call.",
    "We are pleased to welcome {P} as our new head of research.",
    "Please send the final draft to {P} before the end of the week.",
    "{P} led the team that rebuilt our online ordering system.",
    "I would like to thank {P} for many years of service to the company.",
    "As {P} mentioned earlier, demand stayed strong through the whole quarter.",
    "Let me hand the call over to {P} for closing remarks.",
    "Our board has appointed {P} as chair of the audit committee.",
    "Could you ask {P} to call me back this evening?",
    "Good morning, this is {P}, and I run our investor relations team.",
    "We owe a lot of this progress to {P} and the people in the warehouses.",
    # one company
    "We signed a long term supply agreement with {C} last month.",
    "Revenue from our partnership with {C} more than doubled this year.",
    "{C} has agreed to buy our European packaging business.",
    "The new plant will be built together with {C} next spring.",
    "Our team met with the founders of {C} to discuss a joint venture.",
    "Shares of {C} rose sharply after the announcement this morning.",
    "We expect the acquisition of {C} to close early next year.",
    "Most of the growth came from our largest customer, {C}.",
    "The licensing deal with {C} gives us access to several new markets.",
    "Analysts believe {C} will report strong results on Thursday.",
    "We are still waiting for a final answer from {C} on the pricing.",
    # one place
    "We opened a new distribution center in {L} earlier this year.",
    "Sales in {L} were weaker than we had expected.",
    "The team flew to {L} to meet our local partners.",
    "Our second factory near {L} is now running at full capacity.",
    "Heavy rain in {L} delayed several of our shipments last month.",
    "We plan to hire about a hundred engineers in {L} next year.",
    "The conference will be held in {L} at the end of September.",
    "Customers around {L} have responded very well to the new stores.",
    "The road to {L} was closed for most of the winter.",
    # one drug
    "The trial of {D} met its main goal in patients with severe asthma.",
    "We expect the agency to approve {D} in the second half of the year.",
    "Doctors have started to prescribe {D} for chronic migraine.",
    "Early data show that {D} lowers blood pressure without serious side effects.",
    "Sales of {D} grew faster than any other product in our portfolio.",
    "The next study will compare {D} with the current standard of care.",
    "We have filed for approval of {D} in Europe and Japan.",
    "Patients taking {D} reported fewer headaches than those on placebo.",
    "Our supply of {D} should be back to normal by the summer.",
    "A higher dose of {D} did not add any benefit in the trial.",
    # two people
    "{P} and {P} will join us for the question and answer session.",
    "Thanks, {P}. Now I will turn it over to {P}.",
    "{P} replaces {P} as head of our retail business.",
    "Did you hear what {P} said to {P} after the meeting?",
    "The report was written by {P} and reviewed by {P}.",
    "Please welcome {P}, who takes over from {P} next month.",
    "I asked {P} and {P} to review the budget again.",
    # person and company
    "{P} is now the chief executive of {C}.",
    "The next question comes from {P} with {C}.",
    "{P} from {C} asked about our pricing for next year.",
    "We hired {P}, who spent ten years at {C}.",
    "Our deal with {C} was negotiated by {P} and the legal team.",
    "{P}, the founder of {C}, will speak at our investor day.",
    "I had dinner with {P} of {C} on Tuesday.",
    "{C} named {P} as its new head of sales.",
    # person and place
    "{P} will run our new office in {L}.",
    "I met {P} at the trade fair in {L} last spring.",
    "{P} moved to {L} to lead the regional sales team.",
    "Our plant manager in {L}, {P}, retires at the end of the year.",
    "{P} grew up in {L} and still spends the summers there.",
    # person and drug
    "{P} presented the latest results for {D} at the conference.",
    "According to {P}, {D} could reach patients within two years.",
    "{P} led the clinical program that developed {D}.",
    "We asked {P} whether {D} works better in older patients.",
    "The first paper on {D} was written by {P} and her students.",
    "{P} thinks {D} will become our best selling medicine.",
    # two companies
    "{C} and {C} announced a merger this morning.",
    "We compete mostly with {C} and, in some regions, with {C}.",
    "{C} bought a stake in {C} for an undisclosed sum.",
    "Last year {C} lost a large contract to {C}.",
    # company and place
    "{C} is building a large warehouse just outside {L}.",
    "We bought the {L} factory from {C} last year.",
    "{C} moved its headquarters to {L} in the spring.",
    "The biggest employer in {L} is still {C}.",
    # company and drug
    "{C} will sell {D} in North America under a new license.",
    "The rights to {D} belong to {C} until the end of the decade.",
    "{C} expects to launch {D} before the end of next year.",
    "We licensed {D} from {C} after a long search.",
    # two places
    "Our trucks now drive from {L} to {L} twice a week.",
    "We closed the store in {L} and opened a bigger one in {L}.",
    "The new rail line between {L} and {L} cut our delivery times.",
    # place and drug
    "The first patients in {L} received {D} last month.",
    "{D} is made at our plant in {L}.",
    "Hospitals in {L} have started to stock {D}.",
    # two drugs
    "The study combined {D} with {D} in patients with advanced disease.",
    "Unlike {D}, {D} can be taken once a week.",
    "Doctors often switch patients from {D} to {D} after a year.",
)
_SLOT = re.compile(r"\{([PCLD])\}")


def template_key(template: str) -> str:
    """The kinds of a template's slots, sorted ("CP" for a person and a company)."""
    return "".join(sorted(_SLOT.findall(template)))


def fill(template: str, entities: Sequence[NameEntity]) -> str:
    """``template`` with its slots filled by ``entities`` of the matching kinds, in order."""
    left = list(entities)

    def take(match: re.Match[str]) -> str:
        entity = next(e for e in left if e.kind == match.group(1))
        left.remove(entity)
        return entity.text

    return _SLOT.sub(take, template)


def _pairs(mentions: list[NameEntity], n_pairs: int) -> list[list[NameEntity]]:
    """Group ``mentions`` (in their order) into ``n_pairs`` pairs of different entities
    whose kinds have a template, then singles."""
    keys = {template_key(t) for t in TEMPLATES}
    left = list(mentions)
    groups: list[list[NameEntity]] = []
    while left and len(groups) < n_pairs:
        first = left.pop(0)
        partner = next((m for m in left if m != first and
                        "".join(sorted(first.kind + m.kind)) in keys), None)
        if partner is None:
            groups.append([first])
            continue
        left.remove(partner)
        groups.append([first, partner])
    return groups + [[m] for m in left]


def build_sentences(entities: Sequence[NameEntity], n_sentences: int, n_mentions: int,
                    rng: random.Random, min_words: int = 8, max_words: int = 20,
                    ) -> list[tuple[str, list[NameEntity]]]:
    """(text, entities) of ``n_sentences`` sentences with ``n_mentions`` entity mentions in
    all: every entity once, ``n_mentions - len(entities)`` of them twice (in different
    sentences), one or two per sentence; each kind combination takes its least used
    template (seeded ties).

    Raises:
        ValueError: the counts do not fit (fewer mentions than entities, more than two per
            sentence) or a filled template falls outside ``min_words..max_words``.
    """
    repeats = n_mentions - len(entities)
    if repeats < 0 or repeats > len(entities) or not n_sentences <= n_mentions <= 2 * n_sentences:
        raise ValueError(f"cannot put {n_mentions} mentions of {len(entities)} entities into "
                         f"{n_sentences} sentences")
    mentions = list(entities) + rng.sample(list(entities), repeats)
    rng.shuffle(mentions)
    groups = _pairs(mentions, n_mentions - n_sentences)
    by_key: dict[str, list[str]] = {}
    for template in TEMPLATES:
        by_key.setdefault(template_key(template), []).append(template)
    used: Counter[str] = Counter()
    sentences = []
    for group in groups:
        options = by_key["".join(sorted(e.kind for e in group))]
        template = min(options, key=lambda t: (used[t], rng.random()))
        used[template] += 1
        rng.shuffle(group)
        text = fill(template, group)
        if not min_words <= len(text.split()) <= max_words:
            raise ValueError(f"{text!r} has {len(text.split())} words")
        ordered = sorted(group, key=lambda e: text.index(e.text))
        sentences.append((text, ordered))
    if len(sentences) != n_sentences:
        raise ValueError(f"made {len(sentences)} sentences, not {n_sentences}: too few kinds "
                         "pair up; try another seed")
    rng.shuffle(sentences)
    return sentences


# ------------------------------------------------------------------------------ output

def write_outputs(out: Path, sentences: Sequence[tuple[str, list[NameEntity]]],
                  words: dict[str, str], zipf: Callable[[str], float],
                  distractors: Sequence[str]) -> str:
    """Write the files the module docstring lists; returns sentences.tsv's sha256."""
    rows = "".join(f"names_{i:03d}\t{text}\t{'|'.join(e.text for e in ents)}\n"
                   for i, (text, ents) in enumerate(sentences))
    write_text_atomic(out / "sentences.tsv", rows)
    counts: Counter[NameEntity] = Counter(e for _, ents in sentences for e in ents)
    names = sorted(counts, key=lambda e: (e.text.casefold(), e.text))
    write_text_atomic(out / "entities.txt", "".join(e.text + "\n" for e in names))
    write_text_atomic(out / "entity_classes.tsv", "entity\tclasses\trare\tsentences\n" + "".join(
        f"{e.text}\t{e.entity_class}\t1\t{counts[e]}\n" for e in names))
    uses = Counter(w for e, n in counts.items() for w in e.rare for _ in range(n))
    write_text_atomic(out / "words.tsv", "word\tsource\tzipf\tuses\n" + "".join(
        f"{w}\t{words[w]}\t{zipf(w):.2f}\t{uses[w]}\n" for w in sorted(words)))
    write_text_atomic(out / "distractors.txt", "".join(d + "\n" for d in distractors))
    return hashlib.sha256(rows.encode("utf-8")).hexdigest()


def clean_distractors(distractors: Iterable[str], words: Iterable[str],
                      sentences: Iterable[str]) -> list[str]:
    """Distractor entries with none of ``words`` in them and not said in any sentence
    (whole words, any case), without repeats, in their order."""
    said = [normalise_for_match(text) for text in sentences]
    picked = set(words)
    kept, seen = [], set()
    for entry in distractors:
        key = normalise_for_match(entry)
        if not key.strip() or key in seen or letter_words(entry) & picked or \
                any(key in text for text in said):
            continue
        seen.add(key)
        kept.append(entry.strip())
    return kept


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--earnings21", type=Path, default=DEFAULT_EARNINGS21,
                        help="Earnings-21 folder with transcripts/ and bias_lists/ "
                             "(default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder (default: %(default)s)")
    parser.add_argument("--words", type=int, default=_DEFAULTS["words"],
                        help="rare words to pick, half of them outside CMUdict (default 300)")
    parser.add_argument("--sentences", type=int, default=_DEFAULTS["sentences"],
                        help="number of sentences (default 200)")
    parser.add_argument("--mentions", type=int, default=_DEFAULTS["mentions"],
                        help="entity mentions in all sentences (default 300)")
    parser.add_argument("--zipf", type=float, default=_DEFAULTS["zipf"],
                        help="a word is rare below this wordfreq Zipf frequency (default 2.0)")
    parser.add_argument("--seed", type=int, default=_DEFAULTS["seed"])
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        from wordfreq import zipf_frequency

        from biasing.lexicon._resources import load_cmudict
        cmudict = load_cmudict()
        is_rare = wordfreq_rarity(args.zipf)
    except ImportError as err:
        print(f"names_tune: {err} (needs wordfreq and cmudict)", file=sys.stderr)
        return 2

    def zipf(word: str) -> float:
        return zipf_frequency(word, "en")

    heard, heard_counts = heard_words()
    try:
        outside = g2p_candidates(args.earnings21)
        distractor_list = read_list(args.earnings21 / "bias_lists" / "distractor_list.txt")
    except (OSError, ValueError) as err:
        print(f"names_tune: {err}", file=sys.stderr)
        return 2
    cmu_pool = [w for w in cmudict if w not in heard and name_like(w, is_rare, zipf)]
    g2p_pool = [w for w in outside if w not in cmudict and w not in heard and
                name_like(w, is_rare, zipf, compounds=False)]
    rng = random.Random(args.seed)
    n_g2p = min(args.words // 2, len(g2p_pool))
    picked = {w: "cmudict" for w in pick_words(cmu_pool, args.words - n_g2p, rng)}
    picked |= {w: f"g2p:{outside[w]}" for w in pick_words(g2p_pool, n_g2p, rng)}
    entities = build_entities(sorted(picked), rng)
    try:
        sentences = build_sentences(entities, args.sentences, args.mentions, rng)
    except ValueError as err:
        print(f"names_tune: {err}", file=sys.stderr)
        return 2
    distractors = clean_distractors(distractor_list, picked, [t for t, _ in sentences])
    digest = write_outputs(args.out, sentences, picked, zipf, distractors)

    said = Counter(w for _, ents in sentences for e in ents for w in e.rare)
    assert not set(picked) & heard and max(said.values()) <= 2 and set(said) == set(picked)
    if all(getattr(args, k) == v for k, v in _DEFAULTS.items()) and digest != PINNED_SHA256:
        print(f"names_tune: warning: sentences.tsv (sha256 {digest}) differs from the pinned "
              f"one ({PINNED_SHA256}); other wordfreq or cmudict versions?", file=sys.stderr)
    kinds = Counter(e.entity_class for _, ents in sentences for e in ents)
    sources = Counter(picked.values())
    print(f"names_tune: avoided {len(heard)} heard words ({heard_counts}); pools: "
          f"{len(cmu_pool)} rare CMUdict words, {len(g2p_pool)} outside CMUdict; picked "
          f"{len(picked)} ({dict(sorted(sources.items()))}); {len(sentences)} sentences, "
          f"{sum(len(t.split()) for t, _ in sentences)} words, "
          f"{sum(len(ents) for _, ents in sentences)} entity mentions "
          f"({dict(sorted(kinds.items()))}) of {len(entities)} entities; "
          f"{len(distractors)} distractors; sha256 {digest} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
