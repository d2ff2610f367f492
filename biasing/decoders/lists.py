"""One cache of compiled entity lists: everything a list needs, compiled once per list.

A caller's list becomes a :class:`CompiledList`, a bundle that the techniques fill in as
they first need it: the spellings in the model's units with their context graph, BOOST-class
words and unit trie (per number of G2G variants), the pronunciations on a phone head, and
the contextual adapter's entity vectors. A :class:`ListCache` keeps the bundles of the last
few lists, keyed by the list's content and its unrepresentable-entry policy (the same names
with another policy compile differently), least recently used dropped first. A decoder, its
phone set and an adapter bound to the same :class:`~biasing.Transcriber` share one cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..entities import EntityList
from .compile import CompiledEntities
from .language_model import BoostWords
from .phonetic import ListTexts
from .spotting import UnitTrie

__all__ = ["DEFAULT_LIST_CACHE", "LRU", "CompiledList", "ListCache", "Spelled", "list_key"]

DEFAULT_LIST_CACHE = 16  # entity lists kept compiled
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A bounded mapping: the least recently used entry goes first when it is full.
    Thread-safe (a server's threads may share one)."""

    def __init__(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"cache size must be a positive integer, got {size!r}")
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The entry, marked as just used; None when absent."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The entry, made (outside the lock) and stored when absent."""
        found = self.get(key)
        if found is None:
            found = make()
            self.put(key, found)
        return found

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass
class Spelled:
    """A list spelled in one vocabulary with some number of G2G variants."""

    compiled: CompiledEntities  # spellings, context graph, words, original spellings
    boost: BoostWords | None  # the listed words the LM does not know (None without an LM)
    _trie: UnitTrie | None = None
    _alternatives: list[list[tuple[int, ...]]] | None = None
    _index: dict[str, int] | None = None
    _texts: ListTexts | None = None

    @property
    def trie(self) -> UnitTrie:
        """Every spelling as a sequence of output units, for the unit spotter."""
        if self._trie is None:
            self._trie = UnitTrie((i, u) for i, u in self.compiled.units if u)
        return self._trie

    @property
    def texts(self) -> ListTexts:
        """The entities' texts by index (with what the phonetic lookup derives from them)."""
        if self._texts is None:
            self._texts = ListTexts(e.text for e in self.compiled.entities)
        return self._texts

    @property
    def alternatives(self) -> list[list[tuple[int, ...]]]:
        """Per entity (by list index), its spellings as output units."""
        if self._alternatives is None:
            found: list[list[tuple[int, ...]]] = [[] for _ in self.compiled.entities]
            for i, units in self.compiled.units:
                if units:
                    found[i].append(units)
            self._alternatives = found
        return self._alternatives

    @property
    def index(self) -> dict[str, int]:
        """Entity text (as listed) -> its index in the list."""
        if self._index is None:
            self._index = {e.text: i for i, e in enumerate(self.compiled.entities)}
        return self._index


@dataclass
class CompiledList:
    """Everything compiled for one entity list, filled in by the techniques that need it."""

    entities: EntityList  # the list as given
    spelled: dict[int, Spelled] = field(default_factory=dict)  # per number of G2G variants
    pronunciations: Any = None  # ListPronunciations on the phone head, once needed
    adapter: Any = None  # the contextual adapter's (vectors, spot trie), once needed


def list_key(entities: EntityList) -> str:
    """The cache key of a list: its content and what to do with unspellable entries."""
    return f"{entities.key}:{entities.on_unrepresentable}"


class ListCache:
    """Compiled lists (:class:`CompiledList`) of the last ``size`` distinct lists."""

    def __init__(self, size: int = DEFAULT_LIST_CACHE) -> None:
        self._bundles: LRU[str, CompiledList] = LRU(size)

    @property
    def size(self) -> int:
        return self._bundles.size

    def get(self, entities: EntityList) -> CompiledList:
        """The bundle of ``entities`` (a new, empty one when the list is not cached)."""
        return self._bundles.get_or_make(list_key(entities), lambda: CompiledList(entities))

    def __len__(self) -> int:
        return len(self._bundles)

    def clear(self) -> None:
        self._bundles.clear()
