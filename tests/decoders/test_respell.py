"""Decoded words back to the entities' original spelling, with their frames."""

from __future__ import annotations

from biasing.decoders.respell import EntityMatch, respell

WORDS = [("we", (0, 2)), ("met", (3, 5)), ("new", (6, 8)), ("york", (9, 12)),
         ("city", (13, 15)), ("and", (16, 17)), ("jean", (18, 20)), ("luc", (21, 23))]


def test_word_for_word_and_merged_spellings() -> None:
    spelling = {("new", "york"): "New York", ("jean", "luc"): "Jean-Luc"}
    words, matches = respell(WORDS, spelling, max_words=2)
    assert [w for w, _ in words] == ["we", "met", "New", "York", "city", "and", "Jean-Luc"]
    assert words[2:4] == [("New", (6, 8)), ("York", (9, 12))]  # each word keeps its frames
    assert words[6] == ("Jean-Luc", (18, 23))  # one word spanning the run
    assert matches == [EntityMatch("New York", 2, 3, 6, 12), EntityMatch("Jean-Luc", 6, 6, 18, 23)]


def test_longest_entity_wins_and_unlisted_words_pass_through() -> None:
    spelling = {("york",): "York", ("new", "york", "city"): "New York City"}
    words, matches = respell(WORDS, spelling, max_words=3)
    assert [w for w, _ in words][2:5] == ["New", "York", "City"]
    assert [m.text for m in matches] == ["New York City"]
    assert respell(WORDS, {}, max_words=0) == (WORDS, [])


def test_max_words_bounds_the_search() -> None:
    spelling = {("new", "york", "city"): "New York City"}
    assert respell(WORDS, spelling, max_words=2)[1] == []
