"""Pronunciations on a phone head's labels: of an entity list (compiled from per-name
caches, and kept on disk by content hash for lists of ``DISK_MIN_ENTITIES`` or more; the
decoder keeps the compiled list in its list cache, :mod:`.lists`) and of ordinary words
(cached per word).

Pronunciations come from a :class:`~biasing.lexicon.Lexicon`: the user's entries first, then
every CMUdict pronunciation, then g2p_en's prediction; stress digits are dropped and each
phone becomes its index among the head's labels (``model.head_labels["phones"]``). A
multi-word entity's words are concatenated (the phone head has no word boundary). An
entity the lexicon cannot pronounce (digits, symbols) or with a phone the head lacks is
left out of the phonetic techniques with one warning naming it; subword boosting still
spells it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..entities import EntityList
from ..paths import cache_root, write_text_atomic
from .spotting import UnitTrie

__all__ = ["ListPronunciations", "PhoneSet", "UnpronounceableEntityWarning"]

PhoneUnits = tuple[int, ...]
_WORD_CACHE = 100_000
_DISK_FORMAT = 1
DISK_MIN_ENTITIES = 2000  # smaller lists compile in well under a second from the per-word
# caches; only larger ones are worth a file (per-request lists would fill the disk)


class UnpronounceableEntityWarning(UserWarning):
    """Entities left out of the phonetic techniques (still boosted by spelling)."""


@dataclass(frozen=True)
class ListPronunciations:
    """An entity list's pronunciations on one phone set."""

    key: str  # content hash: list, lexicon, G2P version, phone labels
    units: tuple[tuple[PhoneUnits, ...], ...]  # per entity: alternatives (may be empty)
    skipped: tuple[str, ...]  # entities without a pronunciation
    trie: UnitTrie  # every alternative, keyed by entity index


class PhoneSet:
    """A phone head's labels and the pronunciations expressed in them.

    Args:
        labels: the head's labels: stressless ARPAbet phones and ``""`` for the blank.
        lexicon: user pronunciations (``biasing.lexicon.Lexicon``); default: CMUdict + G2P.
        cache_dir: folder for compiled lists; default ``<cache root>/pronunciations``;
            ``False`` writes none.

    Raises:
        ValueError: no blank among the labels, or duplicate labels.
    """

    def __init__(self, labels: Sequence[str], lexicon: Any = None,
                 cache_dir: str | os.PathLike[str] | bool | None = None) -> None:
        labels = [str(label) for label in labels]
        if "" not in labels:
            raise ValueError(f"phone labels need a CTC blank ''; got {len(labels)} labels "
                             f"{labels[:8]}...")
        if len(set(labels)) != len(labels):
            raise ValueError("phone labels contain duplicates")
        if lexicon is None:
            from ..lexicon import Lexicon

            lexicon = Lexicon()
        self.labels = labels
        self.blank = labels.index("")
        self.lexicon = lexicon
        self._index = {label: i for i, label in enumerate(labels) if label}
        self._use_disk = cache_dir is not False
        self._cache_dir = None if cache_dir is None or isinstance(cache_dir, bool) \
            else Path(cache_dir)
        self._words: dict[str, list[PhoneUnits]] = {}
        self._entity_units: dict[str, tuple[PhoneUnits, ...]] = {}
        self._known: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._confusion: Any = None

    @property
    def confusion(self) -> Any:
        """(labels, labels) phone substitution costs (:mod:`biasing.lexicon.confusion`)."""
        if self._confusion is None:
            from ..lexicon.confusion import confusion_costs

            self._confusion = confusion_costs(self.labels)
        return self._confusion

    # ------------------------------------------------------------------- entity lists

    def compile(self, entities: EntityList) -> ListPronunciations:
        """The list's pronunciations (from the disk cache, or the lexicon through the
        per-name cache); warns once naming the entities without one."""
        key = self._list_key(entities)
        units = self._read_disk(key, len(entities))
        if units is None:
            units = self._pronounce_entities([e.text for e in entities])
            self._write_disk(key, units)
        skipped = tuple(e.text for e, alts in zip(entities, units) if not alts)
        if skipped:
            warnings.warn(f"{len(skipped)} entit{'y' if len(skipped) == 1 else 'ies'} without "
                          f"a pronunciation, left out of the phonetic techniques (still "
                          f"boosted by spelling): {', '.join(repr(s) for s in skipped[:10])}"
                          + (" ..." if len(skipped) > 10 else ""),
                          UnpronounceableEntityWarning, stacklevel=3)
        trie = UnitTrie((i, alt) for i, alts in enumerate(units) for alt in alts)
        return ListPronunciations(key, tuple(units), skipped, trie)

    def _list_key(self, entities: EntityList) -> str:
        from ..lexicon.g2p import g2p_version

        digest = hashlib.sha1(f"{_DISK_FORMAT}\n{entities.key}\n{self.lexicon.key}\n"
                              f"{self.lexicon.max_pronunciations}\n{g2p_version()}\n"
                              f"{json.dumps(self.labels)}".encode())
        return digest.hexdigest()[:24]

    def _pronounce_entities(self, texts: list[str]) -> list[tuple[PhoneUnits, ...]]:
        """Per entity, its pronunciations as label indices; cached per entity, so lists
        that share names (a server's callers, per-utterance eval lists) pronounce each
        name once."""
        from ..lexicon import entity_words

        known = {t: self._entity_units.get(t) for t in dict.fromkeys(texts)}
        missing = [t for t, units in known.items() if units is None]
        if missing:
            pronounceable = [t for t in missing if entity_words(t)]
            per_text = dict(zip(pronounceable, _safe_batch(self.lexicon, pronounceable)))
            for text in missing:
                alternatives: list[PhoneUnits] = []
                for pron in per_text.get(text, []):
                    mapped = self._map([p for word in pron for p in word])
                    if mapped and mapped not in alternatives:
                        alternatives.append(mapped)
                known[text] = tuple(alternatives)
            with self._lock:
                if len(self._entity_units) + len(missing) > _WORD_CACHE:
                    self._entity_units.clear()
                self._entity_units.update((t, known[t] or ()) for t in missing)
        return [known[t] or () for t in texts]

    def _map(self, phones: Sequence[str]) -> PhoneUnits | None:
        """ARPAbet phones (stress allowed) as label indices; None if the head lacks one."""
        out = []
        for phone in phones:
            index = self._index.get(phone.rstrip("012"))
            if index is None:
                return None
            out.append(index)
        return tuple(out)

    def _disk_path(self, key: str, size: int) -> Path | None:
        if not self._use_disk or size < DISK_MIN_ENTITIES:
            return None
        return (self._cache_dir or cache_root() / "pronunciations") / f"list-{key}.json"

    def _read_disk(self, key: str, size: int) -> list[tuple[PhoneUnits, ...]] | None:
        path = self._disk_path(key, size)
        if path is None or not path.is_file():
            return None
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            if len(stored) != size:
                return None
            return [tuple(tuple(int(p) for p in alt) for alt in alts) for alts in stored]
        except (OSError, ValueError, TypeError):
            return None  # damaged entry: recompute and overwrite

    def _write_disk(self, key: str, units: list[tuple[PhoneUnits, ...]]) -> None:
        path = self._disk_path(key, len(units))
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, json.dumps([[list(a) for a in alts] for alts in units],
                                               separators=(",", ":")))
        except OSError as error:
            warnings.warn(f"cannot cache pronunciations in {path}: {error}", RuntimeWarning,
                          stacklevel=4)

    # ----------------------------------------------------------------- ordinary words

    def known(self, word: str) -> bool:
        """Whether ``word`` is in the lexicon: a user entry or CMUdict (not only guessed)."""
        found = self._known.get(word)
        if found is None:
            from ..lexicon.g2p import in_dictionary

            found = word in self.lexicon or in_dictionary(word)
            if len(self._known) > _WORD_CACHE:
                self._known.clear()
            self._known[word] = found
        return found

    def words(self, words: Sequence[str]) -> list[list[PhoneUnits]]:
        """Per word, its alternative pronunciations as label indices (``[]`` when it has
        none: digits, symbols). Cached per word."""
        missing = sorted({w for w in words if w not in self._words})
        if missing:
            from ..lexicon import entity_words

            found: dict[str, list[PhoneUnits]] = {}
            split = {w: entity_words(w) for w in missing}
            speakable = [w for w in missing if split[w]]
            for word, pron_list in zip(speakable, _safe_batch(self.lexicon, speakable)):
                alts: list[PhoneUnits] = []
                for pron in pron_list:
                    mapped = self._map([p for part in pron for p in part])
                    if mapped and mapped not in alts:
                        alts.append(mapped)
                found[word] = alts
            with self._lock:
                if len(self._words) + len(missing) > _WORD_CACHE:
                    self._words.clear()
                for word in missing:
                    self._words[word] = found.get(word, [])
        return [self._words.get(w) or [] for w in words]


def _safe_batch(lexicon: Any, texts: list[str]) -> list[list[Any]]:
    """``lexicon.pronounce_batch`` where an unpronounceable text (a word with digits or
    symbols and no user entry) gives ``[]`` instead of an error."""
    if not texts:
        return []
    per_word = lexicon.word_pronunciations_batch(texts)
    ok = [t for t, words in zip(texts, per_word) if t in lexicon or all(words)]
    found = dict(zip(ok, lexicon.pronounce_batch(ok))) if ok else {}
    return [list(found.get(t, [])) for t in texts]
