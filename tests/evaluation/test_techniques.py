"""Techniques as data: the registry, option merging, needs, custom code."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CHAR_LABELS, spoken_logprobs

from biasing.entities import EntityList
from biasing.evaluation import (
    TECHNIQUES,
    EvalContext,
    Technique,
    parse_techniques,
    register_technique,
)
from biasing.models import ModelOutput


def _context(**changes: object) -> EvalContext:
    fields: dict = {"labels": CHAR_LABELS, "kenlm_model_path": None, "tokenizer": None,
                    "beam_width": 16}
    return EvalContext(**{**fields, **changes})


def test_parse_keeps_order_drops_repeats_and_names_the_known_ones() -> None:
    assert [t.name for t in parse_techniques("none, subword,none")] == ["none", "subword"]
    with pytest.raises(ValueError, match="unknown technique.*magic.*known: none, hotwords"):
        parse_techniques("none,magic")
    with pytest.raises(ValueError, match=r"\(none given\)"):
        parse_techniques(" , ")


def test_options_merge_defaults_then_user_then_fixed() -> None:
    user = _context(options={"g2g_variants": 5, "unit_bonus": 0.4})
    g2g = TECHNIQUES["g2g"].options(user)
    assert g2g["g2g_variants"] == 5 and g2g["unit_bonus"] == 0.4 and g2g["lm_boost_logp"] is None
    assert TECHNIQUES["g2g"].options(_context())["g2g_variants"] == 3
    assert TECHNIQUES["subword"].options(user)["g2g_variants"] == 0  # fixed: no variants
    assert TECHNIQUES["lm"].options(user)["unit_bonus"] == 0.0  # only the BOOST class biases


def test_needs_are_checked_with_a_message() -> None:
    with pytest.raises(ValueError, match="'lm' needs a language model \\(pass --kenlm\\)"):
        TECHNIQUES["lm"].build(_context())
    phonetic = Technique("phonetic", "needs a phone head", needs=frozenset({"phones"}))
    assert phonetic.missing(_context()) == [
        "a model with a 'phones' head; --companion default runs the bundled model beside it"]
    assert phonetic.missing(_context(head_labels={"phones": ["AA", ""]})) == []


def test_built_in_techniques_decode_the_scripted_utterance() -> None:
    output = ModelOutput(spoken_logprobs())
    entities = EntityList(["Fremont", "Zelenskyy"])
    texts = {name: TECHNIQUES[name].build(_context())(output, entities)
             for name in ("none", "subword", "all")}
    assert texts["none"] == "we met in fremond today"  # the list is not used
    assert texts["subword"] == texts["all"] == "we met in Fremont today"
    assert TECHNIQUES["spot"].build(_context())(output, entities) == "we met in Fremont today"


def test_phonetic_techniques_read_the_phone_head_when_there_is_one() -> None:
    with pytest.raises(ValueError, match="'phonetic' needs a model with a 'phones' head"):
        TECHNIQUES["phonetic"].build(_context())
    with_head = _context(head_labels={"phones": ["AA", "B", ""]})
    assert TECHNIQUES["phonetic"].heads(with_head) == ["phones"]
    assert TECHNIQUES["all"].heads(with_head) == ["phones"]
    assert TECHNIQUES["all"].heads(_context()) == []  # runs without one
    assert TECHNIQUES["subword"].heads(with_head) == []


@pytest.mark.pyctcdecode
def test_hotwords_baseline_runs_pyctcdecode() -> None:
    pytest.importorskip("pyctcdecode", reason="the hotwords baseline runs pyctcdecode: pip "
                        "install 'ctc-biasing[pyctcdecode]'")
    decode = TECHNIQUES["hotwords"].build(_context())
    output = ModelOutput(spoken_logprobs())
    assert decode(output, EntityList([])) == "we met in fremond today"
    assert decode(output, EntityList(["Fremont"])) == "we met in fremont today"


def test_hotwords_baseline_says_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pyctcdecode", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"ctc-biasing\[pyctcdecode\]"):
        TECHNIQUES["hotwords"].build(_context())


def test_a_registered_technique_is_used_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("biasing.evaluation.techniques.TECHNIQUES", dict(TECHNIQUES))
    from biasing.evaluation import techniques

    def factory(context: EvalContext):
        return lambda output, entities: f"{len(output.logprobs)} {len(entities)}"

    register_technique(Technique("count", "frames and list size", factory=factory))
    [technique] = techniques.parse_techniques("count")
    decode = technique.build(_context())
    assert decode(ModelOutput(np.zeros((7, len(CHAR_LABELS)))), EntityList(["A", "B"])) == "7 2"
    assert "count" not in TECHNIQUES  # the registry was patched, not changed
