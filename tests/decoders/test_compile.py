"""Compiling an entity list against a vocabulary: normalised spellings, graph paths, words
for LM boosting, the map back to the listed spelling, and what cannot be spelled."""

from __future__ import annotations

import pytest
from conftest import CHAR_LABELS

from biasing.decoders.compile import compile_entities
from biasing.decoders.context_graph import BOUNDARY
from biasing.entities import EntityList, UnrepresentableEntityWarning
from biasing.tokenizer import CharTokenizer, LabelTokenizer

SPACE = CHAR_LABELS.index(" ")


def _compile(entities: EntityList, labels: list[str] = CHAR_LABELS, **kwargs):
    is_bpe = any(label.startswith("▁") for label in labels)
    tokenizer = LabelTokenizer(labels) if is_bpe else CharTokenizer(labels)
    return compile_entities(entities, tokenizer, labels, is_bpe=is_bpe, **kwargs)


def test_characters() -> None:
    compiled = _compile(EntityList(["New York", ("Müller", 2.0), "Jean-Luc"]))
    assert compiled.normalized == ("new york", "muller", "jean luc")
    assert compiled.spelling == {("new", "york"): "New York", ("muller",): "Müller",
                                 ("jean", "luc"): "Jean-Luc"}
    assert compiled.words == {"new", "york", "muller", "jean", "luc"}
    assert compiled.letters == (7, 6, 7) and compiled.max_words == 2
    assert compiled.skipped == ()
    # one path per entity, boundary (space) on both sides: 3 paths share only the root
    graph = compiled.graph
    node = graph.start
    for char in "muller ":
        node, continued = graph.step(node, CHAR_LABELS.index(char))
        assert continued
    assert graph.entity[node] == 1 and graph.weight[node] == 2.0


def test_unspellable_entities_raise_or_are_skipped_with_a_warning() -> None:
    with pytest.raises(ValueError, match=r"1 entity cannot be spelled.*'R2-D2' \('2'\)"):
        _compile(EntityList(["R2-D2", "Fremont"]))
    with pytest.warns(UnrepresentableEntityWarning, match="R2-D2"):
        compiled = _compile(EntityList(["R2-D2", "Fremont"], on_unrepresentable="skip"))
    assert compiled.normalized == ("", "fremont") and compiled.skipped == ("R2-D2",)


def test_variants_enter_the_graph_as_the_same_entity() -> None:
    compiled = _compile(EntityList(["Zelenskyy"]),
                        variants=lambda norms: {"zelenskyy": ["zelensky", "zelenski"]})
    assert compiled.spelling[("zelensky",)] == "Zelenskyy"
    assert compiled.spelling[("zelenski",)] == "Zelenskyy"
    assert compiled.graph.stats.n_paths == 3


def test_subword_paths_break_where_the_decoder_breaks_words() -> None:
    labels = ["▁new", "▁york", "▁yo", "rk", "▁", "n", "ew", ""]
    compiled = _compile(EntityList(["New York"]), labels)
    graph, node = compiled.graph, compiled.graph.start
    for unit in (labels.index("▁new"), BOUNDARY, labels.index("▁york"), BOUNDARY):
        node, continued = graph.step(node, unit)
        assert continued
    assert graph.entity[node] == 0


def test_character_labels_need_a_space() -> None:
    labels = [c for c in CHAR_LABELS if c != " "]
    with pytest.raises(ValueError, match="no ' '"):
        _compile(EntityList(["abc"]), labels)
