"""Each utterance's entity list: own entities, global list, distractors, auto."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from biasing.datasets import Utterance
from biasing.evaluation import ListSpec, auto_entities, build_lists, split_rarity, with_distractors

DATASET = [Utterance(f"u{i}", Path(f"u{i}.wav"), text, text.lower()) for i, text in
           enumerate(["We met Ann Smith in Fremont.", "The city said so.", "Hello Zork."])]


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_own_then_global_then_seeded_distractors(tmp_path: Path) -> None:
    spec = ListSpec(entities=_file(tmp_path, "global.txt", "Acme\n"),
                    entities_per_utt=_file(tmp_path, "own.tsv", "u0\tFremont|Ann Smith\n"),
                    distractors=_file(tmp_path, "pool.txt", "A1\nB1\nC1\nD1\nfremont\n"),
                    list_size=4, seed=3)
    lists = build_lists(DATASET, spec)
    assert [e.text for e in lists["u0"]][:3] == ["Fremont", "Ann Smith", "Acme"]
    assert [e.text for e in lists["u1"]][:1] == ["Acme"]
    assert all(len(v) == 4 for v in lists.values())
    assert "fremont" not in [e.text for e in lists["u0"]]  # not drawn again as a distractor
    assert _texts(build_lists(DATASET, spec)) == _texts(lists)  # same seed, same lists
    assert _texts(build_lists(DATASET, replace(spec, seed=4))) != _texts(lists)


def _texts(lists: dict) -> list[list[str]]:
    return [[e.text for e in entities] for entities in lists.values()]


def test_auto_entities_from_reference_texts() -> None:
    # a word is rare when the reference texts have it at most once
    spec = ListSpec(auto=True, auto_reference=["we met the mayor", "we saw the city"])
    lists = build_lists(DATASET, spec)
    assert [e.text for e in lists["u0"]] == ["Ann Smith", "Fremont"]
    assert [e.text for e in lists["u2"]] == ["Hello Zork"]  # a rare first word joins the run
    assert len(lists["u1"]) == 0


@pytest.mark.parametrize("spec, message", [
    (ListSpec(list_size=10), "go together"),
    (ListSpec(distractors=Path("pool.txt")), "go together"),
    (ListSpec(distractors=Path("pool.txt"), list_size=0), "at least 1"),
    (ListSpec(entities=Path("g.txt"), auto=True), "not both"),
])
def test_bad_specs(spec: ListSpec, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_lists(DATASET, spec)


def test_helpers() -> None:
    rare = split_rarity(["the city is big", "we met the mayor in paris"], max_count=0)
    assert auto_entities("We met Ann Smith in Fremont. The City said so.", rare) == [
        "Ann Smith", "Fremont"]
    listed = with_distractors(["Fremont"], ["A", "B", "fremont", "C"], 3, random.Random(0))
    assert listed[0] == "Fremont" and len(listed) == 3 and "fremont" not in listed
    assert with_distractors(["X", "Y"], ["A"], 1, random.Random(0)) == ["X", "Y"]
