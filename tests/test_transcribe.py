"""Transcriber and `ctc-biasing transcribe`: audio -> model -> biased decoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the acoustic models need the torch extra")
sf = pytest.importorskip("soundfile")

from conftest import ScriptedModel, spoken_logprobs, write_tiny_quartznet

from biasing.cli import main
from biasing.transcribe import Transcriber

SPOKEN = spoken_logprobs()


def _wav(path: Path, seconds: float, rate: int = 16000, channels: int = 1) -> Path:
    rng = np.random.default_rng(0)
    data = (0.1 * rng.standard_normal((int(seconds * rate), channels))).astype(np.float32)
    sf.write(path, data, rate, subtype="PCM_16")
    return path


def test_transcribe_with_and_without_list(tmp_path: Path) -> None:
    audio = _wav(tmp_path / "a.wav", len(SPOKEN) * 0.02)
    transcriber = Transcriber(ScriptedModel(), companion=None)
    plain = transcriber.transcribe(audio)[0]
    assert plain.text == "we met in fremond today"
    assert plain.entities == []
    biased = transcriber.transcribe([audio], entities=["Fremont", "Zelenskyy"])[0]
    assert biased.text == "we met in Fremont today"
    assert [h.entity for h in biased.entities] == ["Fremont"]
    hit = biased.entities[0]
    assert biased.words[hit.first_word].word == "Fremont"
    assert 0.2 < hit.start_s < hit.end_s < biased.duration_s
    assert [w.word for w in biased.words] == biased.text.split()
    # the list was for that call only
    assert transcriber.transcribe(audio)[0].text == "we met in fremond today"


def test_inputs_rates_batches_and_long_audio(tmp_path: Path) -> None:
    model = ScriptedModel()
    transcriber = Transcriber(model, companion=None)
    seconds = len(SPOKEN) * 0.02
    files = [_wav(tmp_path / f"{i}.wav", seconds, rate=rate, channels=ch)
             for i, (rate, ch) in enumerate([(16000, 1), (8000, 1), (44100, 2)] * 4)]
    array = (np.zeros(int(seconds * 22050), dtype=np.float32), 22050)
    long = _wav(tmp_path / "long.wav", 65.0)
    seen: list[tuple[int, int]] = []
    results = transcriber.transcribe([*files, array, long], entities=["Fremont"],
                                     progress=lambda done, total: seen.append((done, total)))
    assert [r.text for r in results[:13]] == ["we met in Fremont today"] * 13
    assert results[12].source == "<array 12>"
    assert results[13].duration_s == pytest.approx(65.0)
    assert results[13].text.count("Fremont") >= 2  # the script repeats over a long recording
    assert seen[-1] == (14, 14) and len(seen) == 14
    assert max(model.batches) <= 8


def test_bad_inputs(tmp_path: Path) -> None:
    transcriber = Transcriber(ScriptedModel(), companion=None)
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        transcriber.transcribe(tmp_path / "nope.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(ValueError, match="bad.wav"):
        transcriber.transcribe(bad)
    with pytest.raises(ValueError, match="R2-D2"):
        transcriber.transcribe(_wav(tmp_path / "ok.wav", 1.0), entities=["R2-D2"])


def test_stream_yields_per_batch_and_checks_arguments_first(tmp_path: Path) -> None:
    model = ScriptedModel()
    transcriber = Transcriber(model, companion=None)
    files = [_wav(tmp_path / f"{i}.wav", len(SPOKEN) * 0.02) for i in range(10)]
    stream = transcriber.stream(files, entities=["Fremont"])
    assert model.batches == []  # nothing read until asked
    first = next(stream)
    assert first.text == "we met in Fremont today" and model.batches == [8]
    rest = list(stream)
    assert [r.text for r in rest] == ["we met in Fremont today"] * 9
    assert model.batches == [8, 2]
    with pytest.raises(ValueError, match="R2-D2"):  # raised by the call, not by iterating
        transcriber.stream(files, entities=["R2-D2"])
    with pytest.raises(ValueError, match="'skip'"):
        transcriber.stream(files, on_error="skip")  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:label .* is the best label")  # an untrained model
def test_tiny_quartznet_spec(tmp_path: Path) -> None:
    """A model given by spec: the transcript is the model's own output decoded with the
    list, as the decoder alone decodes it, with its frames as seconds; no list, an empty
    list and weight 0 all give the unbiased text."""
    from biasing.audio import load_audio
    from biasing.decoders import DEFAULT_BEAM_WIDTH, build_biased_decoder

    folder = write_tiny_quartznet(tmp_path / "tiny")
    # an untrained model's output supports no name, and the verifier would take "abc" out
    # again: without it the list changes the text, which the equalities below need
    transcriber = Transcriber(f"quartznet:{folder}", companion=None, verify_units=False)
    model = transcriber.model
    audio = _wav(tmp_path / "a.wav", 1.0)
    result = transcriber.transcribe(audio, entities=["abc"])[0]
    checked = Transcriber(model, companion=None).transcribe(audio, entities=["abc"])[0]
    assert checked.entities == []

    wave = load_audio(audio, model.sample_rate)
    logprobs = model.forward([wave])[0].logprobs
    decoder = build_biased_decoder(model.labels, verify_units=False)
    best = decoder.decode_hypotheses(logprobs, beam_width=DEFAULT_BEAM_WIDTH,
                                     entities=["abc"])[0]
    plain = decoder.decode_hypotheses(logprobs, beam_width=DEFAULT_BEAM_WIDTH)[0].text
    assert result.text == best.text
    assert result.text != plain  # the list changes the text: the equalities below say more
    assert "abc" in result.text.split()
    shift = model.frame_shift_s
    assert [(w.word, w.start_s, w.end_s) for w in result.words] == \
        [(word, start * shift, end * shift) for word, (start, end) in best.words]
    assert [h.entity for h in result.entities] == [m.text for m in best.entities]

    assert transcriber.transcribe(audio)[0].text == plain
    assert transcriber.transcribe(audio, entities=[])[0].text == plain
    unbiased = Transcriber(model, weight=0, companion=None).transcribe(audio, entities=["abc"])[0]
    assert unbiased.text == plain and unbiased.entities == []

    assert result.duration_s == len(wave) / model.sample_rate == 1.0
    assert len(logprobs) * shift == pytest.approx(result.duration_s, abs=shift)
    assert [w.word for w in result.words] == result.text.split()
    assert all(0 <= w.start_s <= w.end_s <= result.duration_s for w in result.words)
    assert [w.start_s for w in result.words] == sorted(w.start_s for w in result.words)
    for hit in result.entities:
        assert result.words[hit.first_word].start_s == hit.start_s
        assert result.words[hit.last_word].end_s == hit.end_s


def test_cli_unknown_model_names_the_choices(tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    assert main(["transcribe", str(_wav(tmp_path / "a.wav", 1.0)), "--model", "qn:x"]) == 2
    err = capsys.readouterr().err
    assert "'qn:x'" in err and "'default'" in err and "quartznet:DIR" in err and "hf:DIR" in err


def test_cli_quartznet_demo(quartznet_dir: Path, capsys: pytest.CaptureFixture,
                            tmp_path: Path) -> None:
    demo = str(quartznet_dir / "demo.wav")
    assert main(["transcribe", demo, "--model", f"quartznet:{quartznet_dir}"]) == 0
    assert capsys.readouterr().out.startswith("as i approached the city i heard bells ringing")
    entities = tmp_path / "list.txt"
    entities.write_text("Throngs\nFamily Groups\nZelenskyy\n", encoding="utf-8")
    assert main(["transcribe", demo, "--model", f"quartznet:{quartznet_dir}",
                 "--entities", str(entities), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert [e["entity"] for e in result["entities"]] == ["Throngs", "Family Groups"]
    assert "Zelenskyy" not in result["text"]


def test_phonetic_needs_a_phone_head() -> None:
    with pytest.raises(ValueError, match="'phones' head or a companion; ScriptedModel has "
                                         "heads none and no companion"):
        Transcriber(ScriptedModel(), phonetic=True, companion=None)
    assert not Transcriber(ScriptedModel(), companion=None).phonetic
    with_companion = Transcriber(ScriptedModel())  # by default the bundled model's phones
    assert with_companion.phonetic and with_companion.model.head_labels["phones"][-1] == ""
