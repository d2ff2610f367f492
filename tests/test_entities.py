"""EntityList: construction, files, de-duplication, normalisation onto a unit inventory."""

from __future__ import annotations

from pathlib import Path

import pytest

from biasing import Entity, EntityList
from biasing.entities import MAX_ENTITIES, UnitInventory, normalize_entity

LOWER = UnitInventory(chars=frozenset("abcdefghijklmnopqrstuvwxyz'"), lower_case=True,
                      has_space=True)


def test_from_iterable_keeps_spelling_and_dedups() -> None:
    entities = EntityList(["Zelenskyy", " zelenskyy ", ("Fremont", 2.0), Entity("New  York")])
    assert [e.text for e in entities] == ["Zelenskyy", "Fremont", "New York"]
    assert entities[1].weight == 2.0
    # a duplicate keeps the first spelling and the larger weight
    assert EntityList(["ACME", ("acme", 3.0)])[0] == Entity("ACME", 3.0)


def test_nfkc_and_key() -> None:
    # full-width letters and the "ﬁ" ligature fold to plain letters
    assert EntityList(["Ｆｒｅｍｏｎｔ", "ﬁnance"])[0].text == "Fremont"
    assert EntityList(["a", "b"]).key == EntityList(["a", "b"]).key
    assert EntityList(["a", "b"]).key != EntityList(["a", ("b", 2.0)]).key


@pytest.mark.parametrize("bad", ["", "   ", "\t\n"])
def test_empty_entity_is_an_error(bad: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        EntityList(["ok", bad])


@pytest.mark.parametrize("weight", [0, -1, float("nan"), float("inf")])
def test_bad_weight(weight: float) -> None:
    with pytest.raises(ValueError, match="weight"):
        EntityList([("Fremont", weight)])


def test_bad_types() -> None:
    with pytest.raises(TypeError, match="single str"):
        EntityList("Fremont")
    with pytest.raises(TypeError, match="bytes"):
        EntityList([b"Fremont"])
    with pytest.raises(TypeError, match="expected a string"):
        EntityList([42])
    with pytest.raises(ValueError, match="surrogate"):
        EntityList(["bad\udc80"])
    with pytest.raises(ValueError, match="characters long"):
        EntityList(["x" * 500])


def test_too_many() -> None:
    with pytest.raises(ValueError, match="too many"):
        EntityList(f"name{i}" for i in range(MAX_ENTITIES + 1))


def test_from_file(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("\ufeff# comment\nFremont\t2.5\n\n  Zelenskyy  \nNew York City\n",
                    encoding="utf-8")
    entities = EntityList.from_file(path)
    assert [(e.text, e.weight) for e in entities] == [
        ("Fremont", 2.5), ("Zelenskyy", 1.0), ("New York City", 1.0)]


def test_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes("Fremont\nZ\xe9lensky\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"list.txt:2: .*not valid UTF-8"):
        EntityList.from_file(path)
    path.write_text("Fremont\tlots\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"list.txt:1: weight 'lots'"):
        EntityList.from_file(path)
    path.write_text("Fremont\t0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"list.txt:1: .*> 0"):
        EntityList.from_file(path)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        EntityList.from_file(tmp_path / "nope.txt")


@pytest.mark.parametrize("text, expected", [
    ("Fremont", "fremont"),
    ("Müller", "muller"),
    ("Jean-Luc Picard", "jean luc picard"),
    ("O'Neil", "o'neil"),
    ("Dr. Who?", "dr who"),
    ("AC/DC", "ac dc"),
])
def test_normalize(text: str, expected: str) -> None:
    assert normalize_entity(text, LOWER) == (expected, [])


def test_normalize_reports_offending_characters() -> None:
    assert normalize_entity("R2D2", LOWER)[1] == ["2"]
    assert normalize_entity("AT&T", LOWER)[1] == ["&"]
    assert normalize_entity("北京", LOWER)[1] == ["北", "京"]
    assert normalize_entity("...", LOWER)[1] == ["..."]
    cased = UnitInventory(chars=frozenset("abcABC"), lower_case=False, has_space=True)
    assert normalize_entity("Cab", cased) == ("Cab", [])
