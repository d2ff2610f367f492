"""The decoder's pyctcdecode-compatible surface: positional signatures, folder round trip,
stateful chunked decoding, batches in a process pool, the model container."""

from __future__ import annotations

import multiprocessing as mp
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import CHAR_LABELS, char_logprobs

from biasing import build_biased_decoder
from biasing.decoders import BiasedBeamSearchDecoder, build_alphabet

SPOKEN = char_logprobs("we met in fremond today", weak={16: ("d", 0.55, 0.35)})


def test_positional_parameters_follow_pyctcdecode(arpa_path: Path) -> None:
    said = char_logprobs("the city is big")
    decoder = build_biased_decoder(CHAR_LABELS, str(arpa_path), None, 0.0)  # alpha = 0
    assert decoder.decode(said, 16) == "the city is big"  # beam_width second
    beams = decoder.decode_beams(said, 16, -10.0, -5.0, True)
    text, lm_state, words, logit, score = beams[0]
    assert text == "the city is big" and lm_state is not None
    assert [w for w, _ in words] == text.split() and logit <= 0
    assert score == pytest.approx(logit + 4 * 1.5)  # alpha 0: beta per word only
    plain = build_biased_decoder(CHAR_LABELS)
    with pytest.raises(TypeError):
        plain.decode(SPOKEN, 16, -10.0, -5.0, None, 10.0, None, ["Fremont"])  # keyword only
    assert plain.decode(SPOKEN, 16, entities=["Fremont"]) == "we met in Fremont today"


def test_folder_round_trip_with_a_language_model(arpa_path: Path, tmp_path: Path) -> None:
    decoder = build_biased_decoder(CHAR_LABELS, str(arpa_path), alpha=1.0)
    decoder.save_to_dir(tmp_path / "saved")
    assert sorted(p.name for p in (tmp_path / "saved").rglob("*")) == [
        "alphabet.json", "attrs.json", "language_model", "tiny.arpa", "unigrams.txt"]
    loaded = BiasedBeamSearchDecoder.load_from_dir(tmp_path / "saved")
    assert loaded.labels == decoder.labels
    assert loaded.decode_beams(SPOKEN)[0][2:] == decoder.decode_beams(SPOKEN)[0][2:]
    assert BiasedBeamSearchDecoder.parse_directory_contents(tmp_path / "saved")[
        "language_model"] is not None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "language_model").mkdir()
    with pytest.raises(ValueError, match="no alphabet.json"):
        BiasedBeamSearchDecoder.load_from_dir(tmp_path / "bad")


def test_lm_state_carries_across_chunks(arpa_path: Path) -> None:
    decoder = build_biased_decoder(CHAR_LABELS, str(arpa_path))
    whole = char_logprobs("the city is big")
    first = char_logprobs("the city")
    text, state, *_ = decoder.decode_beams(first)[0]
    rest = decoder.decode_beams(char_logprobs(" is big"), lm_start_state=state)[0]
    assert f"{text} {rest[0]}" == decoder.decode(whole) == "the city is big"
    assert rest[4] != decoder.decode_beams(char_logprobs(" is big"))[0][4]  # context counted


def test_batches_in_a_forking_pool_with_a_list_per_utterance() -> None:
    decoder = build_biased_decoder(CHAR_LABELS)
    batch = [SPOKEN, char_logprobs("the city"), SPOKEN]
    lists = [["Fremont"], ["Zelenskyy"], []]
    expected = ["we met in Fremont today", "the city", "we met in fremond today"]
    assert decoder.decode_batch(None, batch, entity_lists=lists) == expected
    with mp.get_context("fork").Pool(2) as pool:
        assert decoder.decode_batch(pool, batch, entity_lists=lists) == expected
        beams = decoder.decode_beams_batch(pool, batch, entities=["Fremont"])
    assert [b[0][0] for b in beams] == ["we met in Fremont today", "the city",
                                       "we met in Fremont today"]
    assert len(beams[0][0]) == 4  # no LM state across processes
    with pytest.raises(ValueError, match="one per utterance"):
        decoder.decode_batch(None, batch, entity_lists=lists[:2])


def test_model_container_and_cleanup(monkeypatch: pytest.MonkeyPatch) -> None:
    # a container of this test's own, so that clearing it leaves other decoders alone
    monkeypatch.setattr(BiasedBeamSearchDecoder, "model_container", {})
    decoder = build_biased_decoder(CHAR_LABELS)
    key = decoder._model_key
    assert key in BiasedBeamSearchDecoder.model_container
    decoder.cleanup()
    assert key not in BiasedBeamSearchDecoder.model_container
    with pytest.raises(RuntimeError, match="cleaned up"):
        decoder.decode(SPOKEN)
    other = BiasedBeamSearchDecoder(build_alphabet(CHAR_LABELS))
    BiasedBeamSearchDecoder.clear_class_models()
    assert other._model_key not in BiasedBeamSearchDecoder.model_container


def test_flat_logits_do_not_raise_the_blank_warning() -> None:
    flat = np.log(np.full((80, len(CHAR_LABELS)), 1 / len(CHAR_LABELS)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(build_biased_decoder(CHAR_LABELS).decode(flat), str)
