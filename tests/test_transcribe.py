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
    transcriber = Transcriber(ScriptedModel())
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
    transcriber = Transcriber(model)
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
    transcriber = Transcriber(ScriptedModel())
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
    transcriber = Transcriber(model)
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
    folder = write_tiny_quartznet(tmp_path / "tiny")
    transcriber = Transcriber(f"quartznet:{folder}")
    result = transcriber.transcribe(_wav(tmp_path / "a.wav", 1.0), entities=["abc"])[0]
    assert set(result.text) <= set(" abc'") | set("ABC")


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
    with pytest.raises(ValueError, match="'phones' head; ScriptedModel has heads none"):
        Transcriber(ScriptedModel(), phonetic=True)
    assert not Transcriber(ScriptedModel()).phonetic  # by default: only when there is one
