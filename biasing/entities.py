"""Entity lists: the names a caller wants recognised, validated once, normalised per model.

An :class:`EntityList` holds what the caller wrote (original spelling + weight). It knows
nothing about a model; :func:`normalize_entity` maps one entry onto a model's unit
inventory (the characters its labels can spell) when a decoder compiles the list.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Union

MAX_ENTITIES = 100_000
MAX_ENTITY_CHARS = 200
MAX_ENTITY_WEIGHT = 1000.0  # multiplies bonuses in nats: more is a typo, not a setting

# Punctuation that separates words when spoken ("Jean-Luc", "AC/DC"): becomes a space when
# the model cannot spell it, while other missing punctuation ("O'Neil" without "'") is dropped.
_WORD_SEPARATORS = frozenset("-‐‑‒–—―/_")
# Punctuation by Unicode's categories that is nevertheless spoken ("AT&T", "#1"): the model
# must be able to spell it, like a symbol or a digit.
_SPOKEN_PUNCTUATION = frozenset("&#%@*")

OnError = Literal["raise", "skip"]


class UnrepresentableEntityWarning(UserWarning):
    """Entities of a list made with ``on_unrepresentable="skip"`` were dropped because the
    model's units cannot spell them (the message names them)."""


class UnrepresentableEntitiesError(ValueError):
    """Entities the model's units cannot spell, in a list that does not skip them.

    ``problems`` holds ``(entity, why)`` for each: the offending characters, or that no
    segmentation into the model's units exists.
    """

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__(f"{describe_unrepresentable(self.problems)}. Pass "
                         f"on_unrepresentable='skip' (CLI: --skip-unrepresentable) to drop "
                         f"them.")

    def __reduce__(self) -> tuple[type, tuple[list[tuple[str, str]]]]:
        return (type(self), (self.problems,))  # crosses process boundaries intact


def describe_unrepresentable(problems: Sequence[tuple[str, str]]) -> str:
    """"2 entities cannot be spelled with the model's units: 'AT&T' ('&'); ..." (the first
    ten named)."""
    shown = "; ".join(f"{text!r} ({why})" for text, why in problems[:10])
    return (f"{len(problems)} entit{'y' if len(problems) == 1 else 'ies'} cannot be spelled "
            f"with the model's units: {shown}" + (" ..." if len(problems) > 10 else ""))


@dataclass(frozen=True)
class Entity:
    """One listed name.

    >>> Entity("Zelenskyy", 2.0)
    Entity(text='Zelenskyy', weight=2.0)
    """

    text: str  # the spelling to output, as the caller wrote it (NFKC, whitespace collapsed)
    weight: float = 1.0  # multiplies every bonus this entity earns; > 0


EntityInput = Union["EntityList", Iterable[str | Entity | tuple[str, float]]]


class EntityList:
    """A validated, de-duplicated list of entities (up to 100,000).

    Built from an iterable of strings, ``(text, weight)`` pairs or :class:`Entity`, or from a
    file with :meth:`from_file`. Entries are NFKC-normalised and whitespace-collapsed;
    duplicates (same text ignoring case) keep the first spelling and the larger weight.
    Empty entries raise ``ValueError``.

    Args:
        entries: the entities.
        on_unrepresentable: what a decoder does with an entity its units cannot spell:
            ``"raise"`` (default) raises ``ValueError`` naming it, ``"skip"`` drops it with a
            warning.
    """

    def __init__(self, entries: Iterable[str | Entity | tuple[str, float]] = (),
                 on_unrepresentable: OnError = "raise") -> None:
        if on_unrepresentable not in ("raise", "skip"):
            raise ValueError(
                f"on_unrepresentable must be 'raise' or 'skip', got {on_unrepresentable!r}")
        if isinstance(entries, (str, bytes)):
            raise TypeError(
                "entities must be an iterable of strings, not a single "
                f"{type(entries).__name__} ({entries[:40]!r}); wrap it in a list")
        self.on_unrepresentable: OnError = on_unrepresentable
        by_key: dict[str, Entity] = {}
        for position, entry in enumerate(entries):
            entity = _to_entity(entry, position)
            key = entity.text.casefold()
            previous = by_key.get(key)
            if previous is None:
                by_key[key] = entity
            elif entity.weight > previous.weight:
                by_key[key] = Entity(previous.text, entity.weight)
            if len(by_key) > MAX_ENTITIES:
                raise ValueError(f"too many entities: more than {MAX_ENTITIES:,} distinct entries")
        self._entities: tuple[Entity, ...] = tuple(by_key.values())
        digest = hashlib.sha1()
        for entity in self._entities:
            digest.update(f"{entity.text}\t{entity.weight!r}\n".encode())
        self._key = digest.hexdigest()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str],
                  on_unrepresentable: OnError = "raise") -> EntityList:
        """Read a UTF-8 file: one entity per line, optional ``<TAB>weight``.

        Lines starting with ``#`` and blank lines are ignored. A bad weight or non-UTF-8 bytes
        raise ``ValueError`` naming the file and line; a missing file ``FileNotFoundError``; a
        folder, FIFO, device or a file over 64 MiB ``ValueError`` before anything is read.
        """
        from .readers import read_lines

        entries: list[Entity] = []
        for where, line in read_lines(path, "entity file"):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            name, _, weight_text = line.partition("\t")
            weight = 1.0
            if weight_text.strip():
                try:
                    weight = float(weight_text)
                except ValueError:
                    raise ValueError(
                        f"{where}: weight {weight_text.strip()!r} of {name.strip()!r} "
                        "is not a number (expected 'entity<TAB>weight')") from None
            try:
                entries.append(_to_entity((name, weight), len(entries)))
            except (TypeError, ValueError) as error:
                raise ValueError(f"{where}: {error}") from None
            if len(entries) > 2 * MAX_ENTITIES:  # duplicates aside, too many: stop reading
                raise ValueError(f"{where}: more than {2 * MAX_ENTITIES:,} entries (at most "
                                 f"{MAX_ENTITIES:,} distinct entities)")
        return cls(entries, on_unrepresentable=on_unrepresentable)

    @property
    def key(self) -> str:
        """Content hash: equal lists share compiled context graphs."""
        return self._key

    def __len__(self) -> int:
        return len(self._entities)

    def __iter__(self) -> Iterator[Entity]:
        return iter(self._entities)

    def __getitem__(self, index: int) -> Entity:
        return self._entities[index]

    def __bool__(self) -> bool:
        return bool(self._entities)

    def __repr__(self) -> str:
        shown = ", ".join(repr(e.text) for e in self._entities[:3])
        more = ", ..." if len(self._entities) > 3 else ""
        return f"EntityList([{shown}{more}], n={len(self._entities)})"


def as_entity_list(entities: EntityInput | None) -> EntityList:
    """Accept an EntityList, an iterable of entries, or None (an empty list)."""
    if entities is None:
        return EntityList()
    if isinstance(entities, EntityList):
        return entities
    return EntityList(entities)


def _to_entity(entry: object, position: int) -> Entity:
    if isinstance(entry, Entity):
        text, weight = entry.text, entry.weight
    elif isinstance(entry, str):
        text, weight = entry, 1.0
    elif isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str):
        text, weight = entry[0], entry[1]
    elif isinstance(entry, bytes):
        raise TypeError(f"entity #{position} is bytes ({entry[:40]!r}); decode it to str first")
    else:
        raise TypeError(
            f"entity #{position} is {entry!r}: expected a string, (text, weight) or Entity")
    if isinstance(weight, str):
        try:
            weight = float(weight)
        except ValueError:
            raise ValueError(f"weight of entity {text!r} is {weight!r}: expected a number") \
                from None
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
        raise TypeError(f"weight of entity {text!r} is {weight!r}: expected a number")
    if not math.isfinite(weight) or not 0 < weight <= MAX_ENTITY_WEIGHT:
        raise ValueError(f"weight of entity {text[:40]!r} is {weight!r}: expected a number "
                         f"> 0 and at most {MAX_ENTITY_WEIGHT:g}")
    if "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise ValueError(f"entity #{position} {text!r} contains a NUL or a lone surrogate")
    clean = " ".join(unicodedata.normalize("NFKC", text).split())
    if not clean:
        raise ValueError(f"entity #{position} is empty ({text!r})")
    if len(clean) > MAX_ENTITY_CHARS:
        raise ValueError(
            f"entity #{position} {clean[:40]!r}... is {len(clean)} characters long "
            f"(at most {MAX_ENTITY_CHARS})")
    return Entity(clean, float(weight))


@dataclass(frozen=True)
class UnitInventory:
    """The characters a model's labels can spell, and how to fold text onto them."""

    chars: frozenset[str]  # characters that occur in the labels (word marker "▁" excluded)
    lower_case: bool  # labels have no upper-case letters: entities are case-folded
    has_space: bool  # the vocabulary writes word boundaries (space or "▁")
    upper_case: bool = False  # labels have upper-case letters and no lower-case ones
    # (wav2vec2's English vocabularies): entities are upper-cased


def normalize_entity(text: str, inventory: UnitInventory) -> tuple[str, list[str]]:
    """Map an entity's spelling onto the unit inventory.

    Returns ``(normalised, offending)``: the normalised spelling (words separated by single
    spaces) and the characters that could not be represented (empty when it is fine).
    Letters the vocabulary lacks are retried without diacritics ("Müller" -> "muller");
    punctuation it lacks is dropped, or becomes a space for word separators ("Jean-Luc");
    symbols ("&", "+") and digits it lacks are offending: nothing says how they are spoken.
    """
    if inventory.lower_case:
        text = text.casefold()
    elif inventory.upper_case:
        text = text.upper()
    out: list[str] = []
    offending: list[str] = []
    for char in text:
        if char in inventory.chars:
            out.append(char)
        elif char.isspace() or char in _WORD_SEPARATORS:
            out.append(" ")
        elif (unicodedata.category(char).startswith("P")
              and char not in _SPOKEN_PUNCTUATION):
            continue
        else:
            base = "".join(c for c in unicodedata.normalize("NFKD", char)
                           if not unicodedata.combining(c))
            if inventory.lower_case:
                base = base.casefold()
            elif inventory.upper_case:
                base = base.upper()
            if base and all(c in inventory.chars for c in base):
                out.append(base)
            elif char not in offending:
                offending.append(char)
    normalised = " ".join("".join(out).split())
    if not normalised and not offending:
        offending.append(text)
    if " " in normalised and not inventory.has_space:
        offending.append(" ")
    return normalised, offending
