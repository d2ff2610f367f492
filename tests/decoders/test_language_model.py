"""Word-level KenLM scoring (pyctcdecode's rules) and the BOOST class: listed words the LM
does not know get the class score."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

kenlm = pytest.importorskip("kenlm", reason="the LM tests need the lm extra")

from biasing.decoders.language_model import (
    LOG_BASE_CHANGE_FACTOR,
    BoostedLanguageModel,
    BoostWords,
    LanguageModel,
    load_unigrams_from_arpa,
)


@pytest.fixture(scope="module")
def base(arpa_path: Path) -> LanguageModel:
    return LanguageModel(kenlm.Model(str(arpa_path)), load_unigrams_from_arpa(arpa_path),
                         alpha=0.7, beta=1.5)


def test_word_and_partial_scores(base: LanguageModel) -> None:
    start = base.get_start_state()
    score, state = base.score(start, "city")
    raw = base.kenlm_model.BaseScore(start, "city", kenlm.State())
    assert score == pytest.approx(0.7 * raw * LOG_BASE_CHANGE_FACTOR + 1.5)
    unknown, _ = base.score(start, "qqq")
    raw_unknown = base.kenlm_model.BaseScore(start, "qqq", kenlm.State())
    assert unknown == pytest.approx(0.7 * (raw_unknown - 10.0) * LOG_BASE_CHANGE_FACTOR + 1.5)
    last, _ = base.score(start, "city", is_last_word=True)
    assert last == pytest.approx(score + 0.7 * base.raw_end_score(state) * LOG_BASE_CHANGE_FACTOR)
    assert base.score_partial_token("cit") == 0.0  # starts a known word
    assert base.score_partial_token("qq") == -10.0  # unscaled, as pyctcdecode adds it
    assert base.score_partial_token("qqqqqqqqq") == -10.0 * 9 / 6  # long: proportionally more


def test_remembered_partial_scores_follow_the_unknown_penalty(arpa_path: Path) -> None:
    model = LanguageModel(kenlm.Model(str(arpa_path)), load_unigrams_from_arpa(arpa_path))
    assert model.score_partial_token("qq") == -10.0
    model.reset_params(unk_score_offset=-4.0)
    assert model.score_partial_token("qq") == -4.0
    model.unk_score_offset = -2.0  # set directly, as some callers do
    assert model.score_partial_token("qq") == -2.0
    assert model.score_partial_token("cit") == 0.0


def test_directory_round_trip_and_reset(base: LanguageModel, tmp_path: Path) -> None:
    base.save_to_dir(tmp_path / "lm")
    assert sorted(p.name for p in (tmp_path / "lm").iterdir()) == [
        "attrs.json", "tiny.arpa", "unigrams.txt"]
    copy = LanguageModel.load_from_dir(tmp_path / "lm")
    assert copy.unigrams == base.unigrams and (copy.alpha, copy.beta) == (0.7, 1.5)
    start = base.get_start_state()
    assert copy.score(copy.get_start_state(), "city")[0] == base.score(start, "city")[0]
    copy.reset_params(alpha=1.0, beta=None, score_boundary=False)
    assert (copy.alpha, copy.beta, copy.score_boundary) == (1.0, 1.5, False)
    with pytest.raises(ValueError, match="alpha must be a float"):
        copy.reset_params(alpha=1)
    (tmp_path / "lm" / "extra.txt").write_text("x")
    with pytest.raises(ValueError, match="expected 3 files"):
        LanguageModel.load_from_dir(tmp_path / "lm")


def test_only_unknown_words_join_the_class(base: LanguageModel) -> None:
    words = BoostWords(["zelensky", "city", "president", "fremont"], base)
    assert words.words == {"zelensky", "fremont"}
    assert words.is_prefix("zel") and words.is_prefix("fremont") and not words.is_prefix("cit")
    assert not BoostWords(["city"], base)


def test_class_score_replaces_the_unknown_penalty(base: LanguageModel) -> None:
    boosted = BoostedLanguageModel(base, BoostWords(["zelensky"], base), boost_logp=-8.0)
    start = boosted.get_start_state()
    score, _ = boosted.score(start, "zelensky")
    assert score == pytest.approx(0.7 * (-8.0 / math.log(10)) * LOG_BASE_CHANGE_FACTOR + 1.5)
    unboosted, _ = base.score(start, "zelensky")
    assert score > unboosted  # the unknown-word penalty is gone
    assert boosted.score(start, "city") == base.score(start, "city")  # known words unchanged
    assert boosted.score(start, "zelinsky")[0] == base.score(start, "zelinsky")[0]


def test_partial_words_on_the_way_to_a_listed_word_are_free(base: LanguageModel) -> None:
    boosted = BoostedLanguageModel(base, BoostWords(["zelensky"], base), boost_logp=-8.0)
    assert boosted.score_partial_token("zelen") == 0.0
    assert boosted.score_partial_token("qqq") == base.score_partial_token("qqq")
    assert boosted.order == base.order
