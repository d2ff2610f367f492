"""The Earnings-21 dev benchmark's sentence selection (recipes.earnings21_dev.select)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from biasing.testset.text import missing_entities, normalize_text, parse_sentences
from recipes.earnings21_dev import select

_NLP = """token|speaker|ts|endTs|punctuation|case|tags|wer_tags
Our|0||||UC|[]|[]
next|0||||LC|[]|[]
question|0||||LC|[]|[]
is|0||||LC|[]|[]
from|0||||LC|[]|[]
Brett|0||||UC|[]|['1']
Ponton's|0||||UC|[]|['1']
team|0||||LC|[]|[]
at|0||||LC|[]|[]
the|0||||LC|[]|['2']
Monro|0||||UC|[]|['2']
Inc|0|||.|UC|[]|['2']
We|0||||UC|[]|[]
sold|0||||LC|[]|[]
2020|0||||CA|[]|['3']
units|0||||LC|[]|[]
in|0||||LC|[]|[]
Rochester|0|||.|UC|[]|['4']
So|1||||UC|[]|[]
uh|1||||LC|[]|[]
we|1||||LC|[]|[]
met|1||||LC|[]|[]
the|1||||LC|[]|[]
Zaslow|1||||UC|[]|['5']
family|1||||LC|[]|[]
today|1|||.|LC|[]|[]
The|1||||UC|[]|[]
GAAP|1||||CA|[]|['6']
results|1||||LC|[]|[]
came|1||||LC|[]|[]
from|1||||LC|[]|[]
Monro|1|||.|UC|[]|['7']
"""
_TAGS = {"1": "PERSON", "2": "ORG", "3": "YEAR", "4": "GPE", "5": "PERSON", "6": "ORG",
         "7": "ORG"}


@pytest.fixture()
def call(tmp_path: Path) -> tuple[list, dict[str, str]]:
    nlp = tmp_path / "1234.nlp"
    nlp.write_text(_NLP.replace("\n", "\r\n"), encoding="utf-8")
    tags = tmp_path / "1234.wer_tag.json"
    tags.write_text(json.dumps({k: {"entity_type": v} for k, v in _TAGS.items()}))
    return select.read_nlp(nlp), select.read_entity_classes(tags)


def test_split_and_reconstruct_sentences(call: tuple[list, dict]) -> None:
    tokens, _ = call
    spans = select.split_sentences(tokens)
    texts = [select.sentence_text(tokens[s.start:s.stop]) for s in spans]
    assert texts == ["Our next question is from Brett Ponton's team at the Monro Inc.",
                     "We sold 2020 units in Rochester.", "So uh we met the Zaslow family today.",
                     "The GAAP results came from Monro."]


def test_call_sentences_keeps_clean_ones_with_entity_spelling(
    call: tuple[list, dict]
) -> None:
    tokens, classes = call
    found = select.call_sentences(tokens, classes, "1234", min_words=4, max_words=30)
    assert [(s.sentence_id, [(e.text, e.entity_class) for e in s.entities]) for s in found] == [
        ("e21_1234_0", [("Brett Ponton", "PERSON"), ("Monro Inc", "ORG")])]


def test_sentence_filters() -> None:
    def tokens(*words: str) -> list:
        return [select.Token(w, "0", "." if i == len(words) - 1 else "", "LC", ())
                for i, w in enumerate(words)]

    assert select.is_clean_sentence(tokens("we", "met", "O'Neal", "at", "e-commerce", "day"), 6, 30)
    assert not select.is_clean_sentence(tokens("we", "met", "him", "in", "Q4", "today"), 6, 30)
    assert not select.is_clean_sentence(tokens("we", "met", "the", "DSOs", "there", "today"), 6, 30)
    assert not select.is_clean_sentence(tokens("we", "were-", "met", "him", "there", "today"), 6, 30)
    assert not select.is_clean_sentence(tokens("we", "met", "him"), 6, 30)


def test_rarity_and_entity_spelling() -> None:
    rare = select.corpus_rarity(["the", "the", "Monro", "team", "team"], max_count=1)
    assert select.is_rare_entity("the Monro team", rare) and not select.is_rare_entity("the team", rare)
    assert select.entity_spelling(["the", "Monro", "Forward", "of"]) == "Monro Forward"
    assert select.entity_spelling(["Chavez'"]) == "Chavez"


def test_select_sentences_spreads_calls_and_prefers_rare() -> None:
    def sentence(call_id: str, index: int, *names: str):
        return select.Sentence(call_id, index, "text", tuple(select.Entity(n, "ORG") for n in names))

    pool = [sentence("a", i, f"Rare{i}") for i in range(5)] + [
        sentence("b", 0, "Common"), sentence("b", 1, "RareB"), sentence("c", 0, "RareC")]
    rare = {f"Rare{i}" for i in range(5)} | {"RareB", "RareC"}
    chosen = select.select_sentences(pool, rare, target=4, seed=1)
    assert [s.call_id for s in chosen].count("a") == 2  # even cap: 2 per call reaches 4
    assert all(any(e.text in rare for e in s.entities) for s in chosen)
    assert chosen == select.select_sentences(pool, rare, target=4, seed=1)
    assert select.even_cap([10, 2, 10], 12) == 5


def test_pick_distractors() -> None:
    kept = select.pick_distractors(["3M", "ACME CORP", "MONRO", "ZASLOW", "Acme Corp"],
                                ["MONRO"], ["We met the Zaslow family."])
    assert kept == ["3M", "ACME CORP"]


def test_generated_dev_set_is_consistent() -> None:
    folder = select.DEFAULT_OUT
    if not (folder / "sentences.tsv").is_file():
        pytest.skip(f"{folder}/sentences.tsv not generated (python -m recipes.earnings21_dev.select)")
    rows = parse_sentences((folder / "sentences.tsv").read_text(encoding="utf-8")
                               .splitlines(), "sentences.tsv")
    assert [row.utt_id for row in rows] == select.PINNED_IDS.read_text().split()
    assert all(not re.search(r"\d", row.text) and row.entities for row in rows)
    assert all(not missing_entities(row) for row in rows)
    entities = (folder / "entities.txt").read_text(encoding="utf-8").splitlines()
    assert set(entities) == {e for row in rows for e in row.entities}
    said = " ".join(normalize_text(row.text) for row in rows)
    for entry in (folder / "distractors.txt").read_text(encoding="utf-8").splitlines():
        assert f" {normalize_text(entry)} " not in f" {said} "
