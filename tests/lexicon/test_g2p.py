"""Offline G2P: CMUdict lookups, the numpy port of g2p_en's model, input validation."""

from __future__ import annotations

import importlib
import sys
import types

import pytest

from biasing.lexicon import g2p
from biasing.lexicon.arpabet import PHONES, strip_stress


def test_import_and_predict_without_network(no_network: list[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # other tests may have imported g2p_en itself (to compare with it): start clean
    for name in [m for m in sys.modules if m.startswith(("biasing.lexicon", "g2p_en", "nltk"))]:
        monkeypatch.delitem(sys.modules, name)
    fresh = importlib.import_module("biasing.lexicon.g2p")
    assert fresh is not g2p
    assert fresh.pronounce("hello")
    assert fresh.pronounce("qwertzelensk")  # out of CMUdict: the neural model runs
    assert no_network == []
    assert "g2p_en" not in sys.modules and "g2p_en.g2p" not in sys.modules


def test_cmudict_words() -> None:
    assert g2p.pronounce("fremont") == [("F", "R", "IY1", "M", "AA0", "N", "T")]
    assert g2p.pronounce("Hello") == [("HH", "AH0", "L", "OW1"), ("HH", "EH0", "L", "OW1")]
    assert g2p.pronounce("Müller") == g2p.pronounce("muller")


def test_out_of_dictionary_names_sound_plausible() -> None:
    (phones,) = g2p.pronounce("zelenskyy")
    bare = strip_stress(phones)
    assert bare[0] == "Z" and "L" in bare and "N" in bare
    assert any(bare[i:i + 2] == ("S", "K") for i in range(len(bare)))
    assert all(p in PHONES for p in phones)


def test_batch_equals_single() -> None:
    words = ["zelenskyy", "fremont", "szczecin", "dapagliflozin", "zelenskyy", "o'neil"]
    assert g2p.pronounce_batch(words) == [g2p.pronounce(w) for w in words]


@pytest.mark.parametrize(("word", "message"), [
    ("", "empty"), ("   ", "empty"), ("123", "digits"), ("covid19", "digits"),
    ("new york", "several words"), ("'", "no letters"), ("a&b", "not a-z"),
])
def test_bad_words_raise(word: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        g2p.pronounce(word)


def test_strings_are_not_batches() -> None:
    with pytest.raises(TypeError, match="sequence of strings"):
        g2p.pronounce_batch("hello")  # type: ignore[arg-type]


def test_same_predictions_as_g2p_en(monkeypatch: pytest.MonkeyPatch) -> None:
    """The numpy port reproduces g2p_en's own ``G2p.predict`` (imported with stubs)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("no downloads")

    nltk = types.ModuleType("nltk")
    nltk.download = refuse  # type: ignore[attr-defined]
    nltk.pos_tag = lambda words: [(w, "NN") for w in words]  # type: ignore[attr-defined]
    nltk.data = types.SimpleNamespace(find=lambda *a: None)  # type: ignore[attr-defined]
    corpus = types.ModuleType("nltk.corpus")
    corpus.cmudict = types.SimpleNamespace(dict=dict)  # type: ignore[attr-defined]
    tokenize = types.ModuleType("nltk.tokenize")
    tokenize.TweetTokenizer = lambda: types.SimpleNamespace(  # type: ignore[attr-defined]
        tokenize=str.split)
    inflect = types.ModuleType("inflect")
    inflect.engine = lambda: None  # type: ignore[attr-defined]
    for name, module in [("nltk", nltk), ("nltk.corpus", corpus),
                         ("nltk.tokenize", tokenize), ("inflect", inflect)]:
        monkeypatch.setitem(sys.modules, name, module)
    for name in [m for m in sys.modules if m.startswith("g2p_en")]:
        monkeypatch.delitem(sys.modules, name)
    reference = importlib.import_module("g2p_en.g2p").G2p()
    for name in [m for m in sys.modules if m.startswith("g2p_en")]:
        monkeypatch.delitem(sys.modules, name)
    words = ["zelenskyy", "dapagliflozin", "szczecin", "abbvie", "acelrx", "kyubyong", "bb"]
    ours = g2p._engine()._predict(words)
    assert [tuple(reference.predict(w)) for w in words] == ours
