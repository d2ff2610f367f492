"""The entity list each utterance of an evaluation is decoded and scored with.

A list is built from up to four parts (:class:`ListSpec`): the utterance's own entities
(a per-utterance file, or ``auto``: rare capitalised words and phrases of its transcript),
a global list given to every utterance, and seeded random distractors from a pool that
fill the list up to a size. :func:`build_lists` does it for a whole dataset.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..datasets import Utterance, read_entities_per_utt
from ..entities import EntityList

__all__ = ["ListSpec", "auto_entities", "build_lists", "split_rarity", "with_distractors",
           "wordfreq_rarity"]


@dataclass(frozen=True)
class ListSpec:
    """How to build each utterance's list; every part is optional."""

    entities: Path | None = None  # a global entity file, added to every utterance's list
    auto: bool = False  # the utterance's own entities: rare capitalised words and phrases
    # with ``auto``: texts in which a word is rare when it occurs at most once (else wordfreq)
    auto_reference: Sequence[str] | None = None
    entities_per_utt: Path | None = None  # TSV: id<TAB>entity|entity...
    distractors: Path | None = None  # a pool of entities nobody says
    list_size: int | None = None  # with distractors: lists are filled up to this many entries
    seed: int = 0  # of the distractor draws

    def check(self) -> None:
        """Raise ValueError for combinations that cannot mean anything."""
        if self.auto and self.entities is not None:
            raise ValueError("give either a global entity file or auto entities, not both")
        if (self.distractors is None) != (self.list_size is None):
            raise ValueError("distractors and a list size go together: --distractors FILE "
                             "--list-size N (entities per utterance)")
        if self.list_size is not None and self.list_size < 1:
            raise ValueError(f"the list size must be at least 1, got {self.list_size}")


def build_lists(dataset: Sequence[Utterance], spec: ListSpec,
                known_ids: Collection[str] | None = None) -> dict[str, EntityList]:
    """Each utterance's list, keyed by utterance id, in ``dataset`` order.

    The order of entries is: the utterance's own, the global list, then distractors (drawn
    per utterance in dataset order from one ``random.Random(spec.seed)``, so a list depends
    on the seed and on the utterances before it). Entries the model cannot spell are left
    in: the decoder skips them (the lists are built with ``on_unrepresentable="skip"``).

    ``known_ids``: every utterance id of the split (``dataset`` may be its first few);
    per-utterance entities of other ids are an error (a file for another split).

    Raises:
        ValueError: a bad spec, a malformed file (named with its line), or per-utterance
            entities for ids the split does not have.
    """
    spec.check()
    own: dict[str, list[str]] = {u.id: [] for u in dataset}
    if spec.auto:
        is_rare = (split_rarity(spec.auto_reference) if spec.auto_reference is not None
                   else wordfreq_rarity())
        own = {u.id: auto_entities(u.text, is_rare) for u in dataset}
    global_list = [] if spec.entities is None else _read_list(spec.entities)
    if spec.entities_per_utt is not None:
        per_utt = read_entities_per_utt(spec.entities_per_utt)
        unknown = sorted(set(per_utt) - set(known_ids if known_ids is not None else own))
        if unknown:
            raise ValueError(f"{spec.entities_per_utt}: {len(unknown)} id(s) are not in the "
                             f"dataset, e.g. {unknown[:3]} (a file for another split?)")
        for utt_id in own:
            own[utt_id] = list(dict.fromkeys([*own[utt_id], *per_utt.get(utt_id, [])]))
    pool = [] if spec.distractors is None else _read_list(spec.distractors)
    rng = random.Random(spec.seed)
    lists = {}
    for utt in dataset:
        entries = list(dict.fromkeys([*own[utt.id], *global_list]))
        if pool and spec.list_size is not None:
            entries = with_distractors(entries, pool, spec.list_size, rng)
        lists[utt.id] = EntityList(entries, on_unrepresentable="skip")
    return lists


def mean_size(lists: Mapping[str, EntityList]) -> float:
    """Mean number of entries per list (0 for no lists)."""
    return sum(len(v) for v in lists.values()) / max(len(lists), 1)


def _read_list(path: Path) -> list[str]:
    return [e.text for e in EntityList.from_file(path, "skip")]


_CAPITALISED = re.compile(r"[A-Z][\w'’.&-]*")


def auto_entities(text: str, is_rare: Callable[[str], bool]) -> list[str]:
    """Rare capitalised words and phrases of a raw transcript.

    Runs of capitalised words form one candidate ("Jean-Luc Picard"); a run is kept when
    at least one of its words is rare. The first word of a sentence is only kept as part of
    such a run if it is rare itself.
    """
    found: list[str] = []
    for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
        words = sentence.split()
        run: list[str] = []
        for position, word in enumerate([*words, ""]):
            core = word.strip(",;:!?\"()[]")
            if core and _CAPITALISED.fullmatch(core) and not (position == 0 and
                                                                not is_rare(core)):
                run.append(core.rstrip("."))
                continue
            if run and any(is_rare(w) for w in run):
                found.append(" ".join(run))
            run = []
    return list(dict.fromkeys(found))


def wordfreq_rarity(threshold: float = 3.0) -> Callable[[str], bool]:
    """A word is rare when its Zipf frequency in English (``wordfreq``) is below ``threshold``."""
    try:
        from wordfreq import zipf_frequency
    except ImportError:
        raise ImportError("--entities auto needs wordfreq: pip install 'ctc-biasing[eval]' "
                          "(or pass --auto-reference-split to count words in a training split)"
                          ) from None
    return lambda word: zipf_frequency(word, "en") < threshold


def split_rarity(texts: Sequence[str], max_count: int = 1) -> Callable[[str], bool]:
    """A word is rare when it occurs at most ``max_count`` times in ``texts``."""
    counts: dict[str, int] = {}
    for text in texts:
        for word in text.lower().split():
            counts[word] = counts.get(word, 0) + 1
    return lambda word: counts.get(word.lower(), 0) <= max_count


def with_distractors(own: Sequence[str], pool: Sequence[str], size: int,
                     rng: random.Random) -> list[str]:
    """The utterance's own entities plus random distractors from ``pool`` up to ``size``."""
    own_keys = {e.casefold() for e in own}
    candidates = [d for d in pool if d.casefold() not in own_keys]
    extra = max(0, size - len(own))
    return [*own, *rng.sample(candidates, min(extra, len(candidates)))]
