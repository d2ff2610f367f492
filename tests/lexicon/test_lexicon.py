"""Lexicon: user entries over CMUdict and G2P, multi-word entities, the lexicon file."""

from __future__ import annotations

from pathlib import Path

import pytest

from biasing.lexicon import Lexicon, entity_words, parse_pronunciation

FREMONT = ("F", "R", "IY1", "M", "AA0", "N", "T")


def test_entity_words() -> None:
    assert entity_words("Jean-Luc  Picard, Inc.") == ["jean", "luc", "picard", "inc"]
    assert entity_words("O’Neil") == ["o'neil"]
    assert entity_words("Müller") == ["muller"]


def test_multi_word_entities_are_products_of_word_pronunciations() -> None:
    lexicon = Lexicon(max_pronunciations=3)
    prons = lexicon.pronounce("Hello Fremont")
    assert prons[0] == (("HH", "AH0", "L", "OW1"), FREMONT)
    assert prons[1] == (("HH", "EH0", "L", "OW1"), FREMONT)
    assert all(len(p) == 2 for p in prons)
    assert len(Lexicon(max_pronunciations=1).pronounce("Hello Hello")) == 1


def test_user_entries_come_first_and_serve_words_of_other_entities() -> None:
    lexicon = Lexicon([("Zelenskyy", "Z EH0 L EH1 N S K IY0"),
                       ("New York", "N UW1 | Y AO1 R K")])
    assert lexicon.pronounce("zelenskyy") == [(("Z", "EH0", "L", "EH1", "N", "S", "K", "IY0"),)]
    per_word = lexicon.word_pronunciations("Volodymyr Zelenskyy")
    assert per_word[1] == [("Z", "EH0", "L", "EH1", "N", "S", "K", "IY0")]
    assert lexicon.pronounce("new-york") == [(("N", "UW1"), ("Y", "AO1", "R", "K"))]
    assert "NEW YORK" in lexicon and "Fremont" not in lexicon


def test_unpronounceable_words_need_a_user_entry() -> None:
    with pytest.raises(ValueError, match="'11'.*Windows 11"):
        Lexicon().pronounce("Windows 11")
    assert Lexicon().word_pronunciations("Windows 11")[1] == []
    lexicon = Lexicon([("Windows 11", "W IH1 N D OW0 Z | IH0 L EH1 V AH0 N")])
    assert lexicon.pronounce("windows 11")[0][1] == ("IH0", "L", "EH1", "V", "AH0", "N")


def test_save_load_round_trip(tmp_path: Path) -> None:
    lexicon = Lexicon([("Zelenskyy", "Z EH0 L EH1 N S K IY0"),
                       ("Zelenskyy", "Z AH0 L EH1 N S K IY"),
                       ("New York", (("N", "UW1"), ("Y", "AO1", "R", "K")))])
    path = tmp_path / "lexicon.tsv"
    lexicon.save(path)
    text = path.read_text(encoding="utf-8")
    assert "New York\tN UW1 | Y AO1 R K\n" in text
    loaded = Lexicon.load(path)
    assert list(loaded) == list(lexicon)
    assert loaded.key == lexicon.key and len(loaded) == 3


@pytest.mark.parametrize(("line", "message"), [
    ("Fremont\tF R IY1 M AA0 N TT", r"lexicon.tsv:2: entity 'Fremont'.*'TT' is not an ARPAbet"),
    ("Fremont\tf r iy1 m aa0 n t", r"'f' is not an ARPAbet phone \(ARPAbet phones are upper"),
    ("Fremont\tF1 R IY1 M AA0 N T", r"consonants carry no stress digit"),
    ("Fremont\tF R IY1 M AA0 N T |", r"empty pronunciation"),
    ("New York\tN UW1 Y AO1 R K", r"'New York' has 2 words .* separate the words"),
    ("Fremont F R IY1", r"lexicon.tsv:2: expected 'entity<TAB>ARPAbet phones'"),
])
def test_bad_lexicon_files_name_the_entry(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "lexicon.tsv"
    path.write_text(f"# comment\n{line}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        Lexicon.load(path)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_pronunciations"):
        Lexicon(max_pronunciations=0)
    with pytest.raises(ValueError, match="no words"):
        Lexicon().pronounce("  ...  ")
    with pytest.raises(ValueError, match="'AX' is not an ARPAbet phone"):
        parse_pronunciation("AX B")
    with pytest.raises(FileNotFoundError, match="lexicon file not found"):
        Lexicon.load("/nonexistent/lexicon.tsv")
