"""Contracts: no entities == pyctcdecode; zero bonuses == pyctcdecode; weight 0 == unbiased."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import CHAR_LABELS, char_logprobs
from pyctcdecode import build_ctcdecoder

from biasing import build_biased_decoder

ZERO_BONUS = {"unit_bonus": 0.0, "adaptive_scale": 0.0, "max_adaptive": 0.0,
              "completion_bonus": 0.0, "force_window": 0.0, "lm_boost_logp": None}


def _random_logprobs(rng: np.random.Generator, frames: int, vocab: int, peaky: bool,
                     ) -> np.ndarray:
    x = rng.normal(size=(frames, vocab)) * (2.0 if not peaky else 1.0)
    if peaky:
        x[np.arange(frames), rng.integers(0, vocab, frames)] += 9.0
        x[rng.random(frames) < 0.5, -1] += 10.0  # blank-heavy, like real CTC output
    x = x - x.max(axis=1, keepdims=True)
    return (x - np.log(np.exp(x).sum(axis=1, keepdims=True))).astype(np.float32)


def _cases(labels: list[str]) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [_random_logprobs(rng, frames, len(labels), peaky)
            for peaky in (False, True) for frames in (1, 40, 150)]


@pytest.mark.parametrize("vocab", ["char", "bpe"])
@pytest.mark.parametrize("with_lm", [False, True])
def test_matches_pyctcdecode(vocab: str, with_lm: bool, bpe_labels: list[str],
                             arpa_path: Path) -> None:
    labels = CHAR_LABELS if vocab == "char" else bpe_labels
    lm = str(arpa_path) if with_lm else None
    reference = build_ctcdecoder(labels, kenlm_model_path=lm)
    ours = build_biased_decoder(labels, kenlm_model_path=lm)
    # an entity that never occurs, with every bonus at zero: our own search loop must then
    # give pyctcdecode's beams exactly
    zero = build_biased_decoder(labels, kenlm_model_path=lm, **ZERO_BONUS)
    for logprobs in _cases(labels):
        expected = reference.decode_beams(logprobs, beam_width=16)
        assert ours.decode_beams(logprobs, beam_width=16) == expected
        got = zero.decode_beams(logprobs, ["zazetz"], beam_width=16)
        assert [(b[0], b[2], b[3], b[4]) for b in got] == \
               [(b[0], b[2], b[3], b[4]) for b in expected]
        assert ours.decode(logprobs) == reference.decode(logprobs)


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
