"""The KenLM BOOST class: listed words the LM does not know get the class score."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

kenlm = pytest.importorskip("kenlm", reason="the LM tests need the lm extra")
from pyctcdecode.constants import LOG_BASE_CHANGE_FACTOR
from pyctcdecode.language_model import LanguageModel, load_unigram_set_from_arpa

from biasing.decoders.language_model import BoostedLanguageModel, BoostWords


@pytest.fixture(scope="module")
def base(arpa_path: Path) -> LanguageModel:
    return LanguageModel(kenlm.Model(str(arpa_path)), load_unigram_set_from_arpa(str(arpa_path)),
                         alpha=0.7, beta=1.5)


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
