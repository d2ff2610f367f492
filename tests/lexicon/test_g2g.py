"""G2G spelling variants: known cases, filters, multi-word entities, caching, validation."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

from biasing.entities import UnitInventory
from biasing.lexicon import G2GOptions, Lexicon, spelling_variants, word_variants
from biasing.lexicon.g2g import _edit_distance

LOWER = frozenset(string.ascii_lowercase + "'")


def _variants(*entities: str, **kwargs: object) -> dict[str, list[tuple[str, float]]]:
    return spelling_variants(list(entities), use_cache=False, **kwargs)  # type: ignore[arg-type]


def test_zelenskyy_gets_the_usual_transliteration() -> None:
    spellings = [v for v, _ in _variants("zelenskyy")["zelenskyy"]]
    assert {"zelensky", "zelenski"} & set(spellings), spellings


def test_fremont_variants_are_clean() -> None:
    variants = _variants("fremont", options=G2GOptions(k=5))["fremont"]
    assert 1 <= len(variants) <= 5
    scores = [s for _, s in variants]
    assert scores == sorted(scores, reverse=True) and all(s <= 0 for s in scores)
    for spelling, _ in variants:
        assert spelling != "fremont"
        assert set(spelling) <= LOWER
        assert not any(spelling[i] == spelling[i + 1] == spelling[i + 2]
                       for i in range(len(spelling) - 2))
        assert _edit_distance(spelling, "fremont", 10) <= 3


def test_variants_stay_within_the_inventory_and_keep_case() -> None:
    no_k = set(string.ascii_lowercase) - {"k"}
    for spelling, _ in _variants("zelenskyy", inventory=no_k)["zelenskyy"]:
        assert "k" not in spelling
    mixed = UnitInventory(chars=frozenset(string.ascii_letters), lower_case=False,
                          has_space=True)
    variants = _variants("Zelenskyy", inventory=mixed)["Zelenskyy"]
    assert variants and all(v[0] == "Z" and v[1:].islower() for v, _ in variants)


def test_multi_word_entities_vary_word_by_word() -> None:
    out = _variants("volodymyr zelenskyy", "acme 3m", options=G2GOptions(k=4))
    variants = out["volodymyr zelenskyy"]
    assert 1 <= len(variants) <= 4
    assert all(len(v.split(" ")) == 2 and v != "volodymyr zelenskyy" for v, _ in variants)
    # a word without letters is kept as written
    assert all(v.endswith(" 3m") for v, _ in out["acme 3m"])


def test_user_pronunciations_drive_the_variants() -> None:
    lexicon = Lexicon([("dapagliflozin", "D AE2 P AH0 G L IH0 F L OW1 Z IH0 N")])
    variants = _variants("dapagliflozin", lexicon=lexicon)["dapagliflozin"]
    assert variants and all(_edit_distance(v, "dapagliflozin", 10) <= 6 for v, _ in variants)


def test_word_variants_may_include_the_canonical_spelling() -> None:
    spellings = [w for w, _ in word_variants("fremont", [("F", "R", "IY1", "M", "AA0", "N", "T")])]
    assert spellings and spellings[0] in {"fremont", "fremant"}


def test_results_are_cached_on_disk(tmp_path: Path) -> None:
    first = spelling_variants(["fremont", "zelenskyy"], cache_dir=tmp_path)
    assert len(list(tmp_path.glob("variants-*.json"))) == 1
    assert spelling_variants(["fremont", "zelenskyy"], cache_dir=tmp_path) == first
    assert _variants("fremont", "zelenskyy") == first
    spelling_variants(["fremont"], options=G2GOptions(k=1), cache_dir=tmp_path)
    assert len(list(tmp_path.glob("variants-*.json"))) == 2


@pytest.mark.parametrize(("entities", "error", "message"), [
    ([""], ValueError, "non-empty strings"),
    (["fremont", "  "], ValueError, "non-empty strings"),
    ("fremont", TypeError, "sequence of strings"),
])
def test_bad_entities(entities: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        spelling_variants(entities, use_cache=False)  # type: ignore[arg-type]


def test_digits_only_entities_have_no_variants() -> None:
    assert _variants("2024")["2024"] == []


@pytest.mark.parametrize("bad", [{"k": 0}, {"min_logp": 1.0}, {"min_logp": float("nan")},
                                 {"beam": 0}, {"edit_weight": -1.0},
                                 {"max_edit_fraction": 0.0}])
def test_bad_options(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="G2GOptions"):
        G2GOptions(**bad)  # type: ignore[arg-type]


def test_bad_inventory() -> None:
    with pytest.raises(ValueError, match="no letters"):
        _variants("fremont", inventory="0123")
