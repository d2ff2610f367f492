"""Compile an :class:`EntityList` for one decoder: normalise, tokenise, build the graph.

The result (:class:`CompiledEntities`) is what a decode call needs: the context graph, the
words for LM boosting, and the map from decoded (normalised) words back to the entity's
original spelling. Decoders cache it per list content hash.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..entities import (
    EntityList,
    UnrepresentableEntitiesError,
    UnrepresentableEntityWarning,
    describe_unrepresentable,
    normalize_entity,
)
from ..tokenizer import BPE_MARK, Tokenizer
from .context_graph import BOUNDARY, ContextGraph


@dataclass(frozen=True)
class CompiledEntities:
    """An entity list compiled against one vocabulary."""

    entities: EntityList  # the list as given
    normalized: tuple[str, ...]  # per entity: its spelling in the model's units ("" if skipped)
    graph: ContextGraph  # prefix tree + failure links over all spellings
    words: frozenset[str]  # every word of every normalised entity (for LM boosting)
    spelling: dict[tuple[str, ...], str]  # normalised words -> original spelling
    max_words: int  # longest entity in words
    letters: tuple[int, ...]  # per entity: characters of its normalised spelling, no spaces
    skipped: tuple[str, ...]  # entities dropped as unrepresentable (on_unrepresentable="skip")
    units: tuple[tuple[int, tuple[int, ...]], ...] = ()  # (entity index, label indices) per
    # spelling (variants included), without the word boundaries around it: what the unit
    # spotter looks for


VariantsFn = Callable[[list[str]], Mapping[str, Sequence[str]]]


def compile_entities(entities: EntityList, tokenizer: Tokenizer, labels: Sequence[str],
                     is_bpe: bool, variants: VariantsFn | None = None) -> CompiledEntities:
    """:func:`_compile` without the cyclic garbage collector, which would otherwise walk
    every live object again and again while a large list makes its many small objects
    (none of them cyclic)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _compile(entities, tokenizer, labels, is_bpe, variants)
    finally:
        if collecting:
            gc.enable()


def _compile(entities: EntityList, tokenizer: Tokenizer, labels: Sequence[str],
             is_bpe: bool, variants: VariantsFn | None = None) -> CompiledEntities:
    """Normalise and tokenise every entity, and build the context graph.

    ``variants`` maps the normalised spellings to extra spellings (e.g. G2G sound-alikes);
    they enter the graph as the same entity and decode to its original spelling.

    Raises :class:`~biasing.entities.UnrepresentableEntitiesError` (a ``ValueError``) naming
    the entities the units cannot spell (with the offending characters), unless the list
    was made with ``on_unrepresentable="skip"``, in which case they are dropped with a
    warning.
    """
    boundary = BOUNDARY if is_bpe else _space_index(labels)
    starts = [label.startswith(BPE_MARK) for label in labels]
    ends = [label.endswith(BPE_MARK) for label in labels]
    paths: list[tuple[int, list[int], float]] = []
    normalized: list[str] = []
    problems: list[tuple[str, str]] = []
    spelling: dict[tuple[str, ...], str] = {}

    def spell(text: str) -> tuple[str, list[str], list[list[int]]]:
        """Normalised text, offending characters, and its graph paths (none if unspellable)."""
        norm, offending = normalize_entity(text, tokenizer.inventory)
        segmentations = [] if offending or not norm else tokenizer.segmentations(norm)
        found = [_with_boundaries(seg, boundary, starts, ends) for seg in segmentations]
        return norm, offending, [path for path in found if path]

    for index, entity in enumerate(entities):
        norm, offending, symbol_paths = spell(entity.text)
        if not symbol_paths:
            why = (", ".join(repr(c) for c in offending) if offending
                   else "no segmentation into the model's units")
            problems.append((entity.text, why))
            normalized.append("")
            continue
        normalized.append(norm)
        spelling.setdefault(tuple(norm.split(" ")), entity.text)
        paths.extend((index, path, entity.weight) for path in symbol_paths)
    if problems:
        if entities.on_unrepresentable == "raise":
            raise UnrepresentableEntitiesError(problems)
        warnings.warn(describe_unrepresentable(problems) + "; skipped.",
                      UnrepresentableEntityWarning, stacklevel=3)
    if variants is not None:
        extra = variants([n for n in normalized if n])
        for index, (entity, norm) in enumerate(zip(entities, normalized)):
            for variant in extra.get(norm, ()) if norm else ():
                variant_norm, _, variant_paths = spell(variant)
                if variant_paths:
                    paths.extend((index, path, entity.weight) for path in variant_paths)
                    spelling.setdefault(tuple(variant_norm.split(" ")), entity.text)
    graph, units = ContextGraph.build_with_units(paths, boundary, [e.weight for e in entities])
    words = frozenset(w for norm in normalized if norm for w in norm.split(" "))
    return CompiledEntities(
        entities=entities, normalized=tuple(normalized), graph=graph, words=words,
        spelling=spelling, max_words=max((len(k) for k in spelling), default=0),
        letters=tuple(len(n.replace(" ", "")) for n in normalized),
        skipped=tuple(e.text for e, n in zip(entities, normalized) if not n), units=units)


def g2g_variants(tokenizer: Tokenizer, k: int) -> VariantsFn:
    """Up to ``k`` sound-alike spellings per entity that ``tokenizer``'s units can spell
    (G2P + grapheme-phoneme alignment, :mod:`biasing.lexicon.g2g`; the g2p extra)."""
    inventory = tokenizer.inventory

    def variants(texts: list[str]) -> dict[str, list[str]]:
        from ..lexicon import G2GOptions, spelling_variants

        found = spelling_variants(texts, inventory, G2GOptions(k=k))
        return {text: [v for v, _ in spellings] for text, spellings in found.items()}
    return variants


def _space_index(labels: Sequence[str]) -> int:
    try:
        return list(labels).index(" ")
    except ValueError:
        raise ValueError("character labels have no ' ' (word boundary): cannot bias whole "
                         "words with this vocabulary") from None


def _with_boundaries(units: list[int], boundary: int, starts: list[bool], ends: list[bool],
                     ) -> list[int]:
    """``boundary, units..., boundary``; for subwords, a boundary wherever pyctcdecode breaks
    words: before a "▁" piece (``starts``) and after one that ends with "▁" (``ends``)."""
    if boundary != BOUNDARY:
        return [boundary, *units, boundary]
    if not units or not starts[units[0]]:
        return []
    path: list[int] = []
    breaks = True
    for unit in units:
        if breaks or starts[unit]:
            path.append(BOUNDARY)
        path.append(unit)
        breaks = ends[unit]
    path.append(BOUNDARY)
    return path
