"""Biasing options: grouped records, flat names, one range check, the docs table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biasing import build_biased_decoder
from biasing.decoders import BiasingOptions, Boosting, Spotting
from biasing.decoders.options import options_table

DOCS = Path(__file__).resolve().parents[2] / "docs" / "options.md"


def test_flat_names_reach_their_group() -> None:
    options = BiasingOptions.from_flat(weight=2.0, unit_bonus=0.4, merge_spots=False,
                                       lookup_margin=3.0)
    assert options.weight == 2.0
    assert options.boosting == Boosting(unit_bonus=0.4)
    assert options.spotting == Spotting(merge_spots=False)
    assert options.phonetic.lookup_margin == 3.0
    assert options.flat()["unit_bonus"] == 0.4
    assert BiasingOptions.from_flat(options.flat()) == options
    assert options.replace(unit_bonus=0.3).boosting == Boosting()


def test_every_field_has_one_flat_name_and_a_range() -> None:
    names = BiasingOptions.names()
    assert len(names) == len(set(names)) == 29
    assert set(BiasingOptions().flat()) == set(names)


@pytest.mark.parametrize(("name", "value", "says"), [
    ("unit_bonus", -0.1, "unit_bonus must be a number from 0 to 1000"),
    ("weight", float("nan"), "weight must be a number from 0 to 1000"),
    ("full_bonus_chars", 2.5, "full_bonus_chars must be an integer >= 0"),
    ("rescore_n_best", True, "rescore_n_best must be an integer >= 0"),
    ("spot_blank_gate", 0.0, r"spot_blank_gate must be a probability in \(0, 1\]"),
    ("lm_boost_logp", 0.5, "lm_boost_logp must be a log-probability from -1000 to 0, or None"),
])
def test_a_value_out_of_range_names_the_option(name: str, value: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        BiasingOptions.from_flat({name: value})
    with pytest.raises(ValueError, match=says):
        build_biased_decoder(["", " ", "a"], **{name: value})


def test_unknown_names_and_wrong_types_are_refused() -> None:
    with pytest.raises(TypeError, match="unknown option.*unit_bonuss.*known: .*unit_bonus"):
        BiasingOptions.from_flat(unit_bonuss=1.0)
    with pytest.raises(TypeError, match="merge_spots must be True or False"):
        BiasingOptions.from_flat(merge_spots=1)
    with pytest.raises(TypeError, match="boosting must be a Boosting"):
        BiasingOptions(boosting=Spotting())  # type: ignore[arg-type]


def test_numpy_numbers_are_numbers() -> None:
    options = BiasingOptions.from_flat(g2g_variants=np.int64(2), unit_bonus=np.float32(0.5))
    assert options.boosting.g2g_variants == 2


def test_the_docs_table_is_generated_from_the_fields() -> None:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("<!-- options-table:start -->\n") + len("<!-- options-table:start -->\n")
    end = text.index("<!-- options-table:end -->")
    assert text[start:end] == options_table(), (
        "docs/options.md is out of step with biasing/decoders/options.py: replace the table "
        "between the markers with biasing.decoders.options.options_table()")
