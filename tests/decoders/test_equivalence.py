"""Contracts: our search reproduces pyctcdecode 0.5.0's beams (golden fixtures recorded from
it, no pyctcdecode needed); zero bonuses and weight 0 change nothing; an empty list is the
unbiased search. One live comparison runs where pyctcdecode is installed."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from conftest import CHAR_LABELS, char_logprobs

from biasing import build_biased_decoder
from biasing.decoders import native

GOLDEN = Path(__file__).parent / "golden"
ZERO_BONUS = {"unit_bonus": 0.0, "adaptive_scale": 0.0, "max_adaptive": 0.0,
              "completion_bonus": 0.0, "force_window": 0.0, "lm_boost_logp": None}


@cache
def _golden() -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(GOLDEN / "cases.npz") as inputs:
        arrays = {name: inputs[name] for name in inputs.files}
    return json.loads((GOLDEN / "beams.json").read_text(encoding="utf-8")), arrays


def _calls() -> list[tuple[str, int]]:
    recorded, _ = _golden()
    return [(case["name"], n) for case in recorded["cases"] for n in range(len(case["calls"]))]


def _as_recorded(beams: list) -> list:
    return [[text, [[w, list(f)] for w, f in frames], logit, score]
            for text, _, frames, logit, score in beams[:20]]


def _assert_same(got: list, expected: list) -> None:
    """Texts and frames exactly, scores to 1e-12: numpy's own exp/log/sum differ in the last
    bit between its versions (the fixtures were recorded on numpy 1; log_softmax runs
    before the search)."""
    assert [(text, frames) for text, frames, _, _ in got] == \
        [(text, frames) for text, frames, _, _ in expected]
    assert [x for _, _, logit, score in got for x in (logit, score)] == pytest.approx(
        [x for _, _, logit, score in expected for x in (logit, score)], rel=1e-12)


@pytest.mark.parametrize("core", ["compiled", "python"])
@pytest.mark.parametrize("name, call", _calls())
def test_reproduces_pyctcdecode_exactly(name: str, call: int, core: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if core == "compiled" and not native.available():
        pytest.skip("the compiled core is not built (no C++ compiler at install)")
    if core == "python":
        monkeypatch.setenv("CTC_BIASING_CORE", "python")
    recorded, inputs = _golden()
    case = next(c for c in recorded["cases"] if c["name"] == name)
    if case["lm"]:
        pytest.importorskip("kenlm", reason="the LM cases need the lm extra")
    lm = str(GOLDEN / "lm.arpa") if case["lm"] else None
    labels = recorded["labels"][case["vocab"]]
    kwargs = case["calls"][call]
    expected = case["results"][call]
    ours = build_biased_decoder(labels, lm)
    _assert_same(_as_recorded(ours.decode_beams(inputs[name], **kwargs)), expected)
    # every bonus at zero with a list that never occurs: the biased path gives them too
    zero = build_biased_decoder(labels, lm, **ZERO_BONUS)
    _assert_same(_as_recorded(zero.decode_beams(inputs[name], **kwargs, entities=["zazetz"])),
                 expected)
    assert ours.decode(inputs[name], kwargs["beam_width"], hotwords=kwargs.get("hotwords")) \
        == ours.decode_beams(inputs[name], kwargs["beam_width"], prune_history=True,
                             hotwords=kwargs.get("hotwords"))[0][0]


@pytest.mark.pyctcdecode
def test_live_comparison_with_pyctcdecode(arpa_path: Path) -> None:
    pyctcdecode = pytest.importorskip("pyctcdecode", reason="pip install "
                                      "'ctc-biasing[pyctcdecode]' for the live comparison")
    rng = np.random.default_rng(3)
    for lm in (None, str(arpa_path)):
        reference = pyctcdecode.build_ctcdecoder(CHAR_LABELS, lm)
        ours = build_biased_decoder(CHAR_LABELS, lm)
        for frames, scale in ((1, 1.0), (60, 2.0), (200, 6.0)):
            logits = rng.normal(size=(frames, len(CHAR_LABELS))) * scale
            logits[:, -1] += scale  # blank-heavy
            for kwargs in ({"beam_width": 16}, {"beam_width": 64, "prune_history": True},
                           {"beam_width": 16, "hotwords": ["the city"]}):
                assert _without_state(ours.decode_beams(logits, **kwargs)) == \
                    _without_state(reference.decode_beams(logits, **kwargs))


def _without_state(beams: list) -> list:
    return [(text, frames, logit, score) for text, _, frames, logit, score in beams]


def test_weight_zero_changes_nothing() -> None:
    logprobs = char_logprobs("the fremond city", weak={10: ("t", 0.3, 0.3)})
    plain = build_biased_decoder(CHAR_LABELS)
    off = build_biased_decoder(CHAR_LABELS, entities=["Fremont"], weight=0.0)
    assert off.decode_beams(logprobs) == plain.decode_beams(logprobs)


def test_empty_list_is_unbiased() -> None:
    logprobs = char_logprobs("the fremond city")
    decoder = build_biased_decoder(CHAR_LABELS, entities=["Fremont"])
    plain = build_biased_decoder(CHAR_LABELS)
    assert decoder.decode_beams(logprobs, entities=[]) == plain.decode_beams(logprobs)


def test_decode_batch_matches_decode() -> None:
    decoder = build_biased_decoder(CHAR_LABELS)
    batch = [char_logprobs("the city"), char_logprobs("fremond")]
    assert decoder.decode_batch(None, batch, entities=["Fremont"]) == [
        decoder.decode(x, entities=["Fremont"]) for x in batch]
