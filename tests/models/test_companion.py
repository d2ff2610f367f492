"""The phonetic companion: phone posteriors from the bundled model beside any model, mapped
onto its frames by time; what it loads and refuses; what it changes for a model without a
phone head (and what it must not change)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from biasing import EntityList, Transcriber
from biasing.audio import load_audio
from biasing.models import load_model
from biasing.models.companion import (
    PHONE_HEAD,
    WithCompanion,
    attach_companion,
    load_companion,
    map_frames,
    phones_source,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples"


def _logprobs(frames: int, classes: int = 5, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(frames, classes))
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def test_the_same_frame_rate_is_a_copy_and_other_rates_average_by_time() -> None:
    phones = _logprobs(100)
    assert np.array_equal(map_frames(phones, 0.02, 100, 0.02), phones)
    assert np.array_equal(map_frames(phones, 0.02, 101, 0.02)[:100], phones)  # one more: kept
    coarse = map_frames(phones, 0.02, 50, 0.04)  # a 40 ms model: pairs of frames averaged
    pairs = np.log((np.exp(phones[0::2]) + np.exp(phones[1::2])) / 2)
    np.testing.assert_allclose(coarse, pairs, atol=1e-6)
    citrinet = map_frames(phones, 0.02, 25, 0.08)
    np.testing.assert_allclose(np.exp(citrinet).sum(axis=1), 1.0, atol=1e-6)
    fine = map_frames(phones, 0.02, 200, 0.01)  # a 10 ms model: each frame twice
    np.testing.assert_allclose(fine[0::2], phones, atol=1e-6)
    np.testing.assert_allclose(fine[1::2], phones, atol=1e-6)
    late = map_frames(phones, 0.02, 100, 0.02, lead_s=0.04)  # the phones fire 2 frames early
    np.testing.assert_allclose(late[2:], phones[:-2], atol=1e-6)


def test_audio_of_another_length_is_refused_naming_both() -> None:
    with pytest.raises(ValueError, match=r"phone posteriors of 100 frames x 20 ms \(2.00 s\) "
                                         r"cannot be the same audio as model output of 60 "
                                         r"frames x 40 ms \(2.40 s\)"):
        map_frames(_logprobs(100), 0.02, 60, 0.04)


def test_a_companion_must_load_and_have_a_phone_head(tiny_quartznet_dir: Path,
                                                     tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"companion 'quartznet:.*' has no 'phones' head"):
        load_companion(f"quartznet:{tiny_quartznet_dir}")
    with pytest.raises(ValueError, match=r"companion 'quartznet:.*nowhere' does not load"):
        load_companion(f"quartznet:{tmp_path / 'nowhere'}")
    with pytest.raises(TypeError, match="companion must be"):
        attach_companion(load_model(f"quartznet:{tiny_quartznet_dir}"), 3)


def test_the_companion_runs_only_to_its_phone_head() -> None:
    bundled = load_model("default")
    wave = load_audio(EXAMPLES / "clinic.ogg", bundled.sample_rate)
    full = bundled.forward([wave])[0].heads[PHONE_HEAD]
    assert np.array_equal(bundled.head_posteriors([wave], PHONE_HEAD)[0], full)


def test_a_model_without_phones_gets_them_on_its_own_frames(tiny_quartznet_dir: Path) -> None:
    tiny = load_model(f"quartznet:{tiny_quartznet_dir}")
    model = attach_companion(tiny, "default")
    assert isinstance(model, WithCompanion) and phones_source(model) == "companion:default"
    assert attach_companion(tiny, None) is tiny and phones_source(tiny) is None
    bundled = load_model("default")
    assert attach_companion(bundled, "default") is bundled  # its own head wins
    assert phones_source(bundled) == "model"
    wave = load_audio(EXAMPLES / "travel.ogg", tiny.sample_rate)
    out = model.forward([wave])[0]
    assert np.array_equal(out.logprobs, tiny.forward([wave])[0].logprobs)
    assert out.heads[PHONE_HEAD].shape == (len(out.logprobs), len(model.head_labels["phones"]))
    assert model.fingerprint != tiny.fingerprint  # its outputs are cached apart


@pytest.fixture(scope="module")
def quartznet(quartznet_dir: Path):  # type: ignore[no-untyped-def]
    return load_model(f"quartznet:{quartznet_dir}")


def test_quartznet_with_the_companion_hears_the_names_the_bundled_model_hears(
        quartznet) -> None:  # type: ignore[no-untyped-def]
    clips = sorted(EXAMPLES.glob("*.ogg"))
    names = EntityList.from_file(EXAMPLES / "entities.txt")
    alone = Transcriber(quartznet, companion=None, threads=1)
    paired = Transcriber(quartznet, threads=1)
    found_alone = {h.entity for r in alone.transcribe(clips, entities=names) for h in r.entities}
    found = {h.entity for r in paired.transcribe(clips, entities=names) for h in r.entities}
    said = {"Kaiyo", "Thandiwe Okonkwo", "Przybylski", "tirzepatide", "Quetzal Robotics",
            "Reykjavik", "Zerodha", "Anneliese Vanderkloot"}
    assert found <= said and found_alone <= said  # none of the look-alikes
    assert len(found) == 6 and len(found_alone) <= 3


def test_no_list_and_weight_zero_are_the_unbiased_output_with_the_companion(
        quartznet) -> None:  # type: ignore[no-untyped-def]
    from biasing.decoders import build_biased_decoder

    clip = EXAMPLES / "booking.ogg"
    paired = Transcriber(quartznet, threads=1)
    plain = build_biased_decoder(quartznet.labels).decode(
        quartznet.forward([load_audio(clip, 16000)])[0].logprobs)
    assert paired.transcribe(clip)[0].text == plain
    assert paired.transcribe(clip, entities=[])[0].text == plain
    off = Transcriber(quartznet, threads=1, weight=0)
    assert off.transcribe(clip, entities=["Kaiyo", "Thandiwe Okonkwo"])[0].text == plain


def test_the_cli_takes_a_companion(quartznet_dir: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from biasing.cli import main

    base = ["transcribe", str(EXAMPLES / "travel.ogg"), "--model", f"quartznet:{quartznet_dir}",
            "--entities", str(EXAMPLES / "entities.txt"), "--threads", "1", "--json"]
    assert main(base + ["--companion", "none"]) == 0
    assert "Reykjavik" not in json.loads(capsys.readouterr().out)[0]["text"]
    assert main(base) == 0
    assert "Reykjavik" in json.loads(capsys.readouterr().out)[0]["text"]
    assert main(base + ["--companion", "quartznet:/nowhere"]) == 2
    assert "companion 'quartznet:/nowhere' does not load" in capsys.readouterr().err


def test_eval_records_the_companion_and_needs_one_for_phones(
        quartznet_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from biasing.cli import main

    base = ["eval", "--dataset", str(EXAMPLES),
            "--entities-per-utt", str(EXAMPLES / "entities_per_utt.tsv"),
            "--model", f"quartznet:{quartznet_dir}", "--threads", "1", "--no-cache"]
    assert main(base + ["--techniques", "none,phonetic-spot",
                        "--output", str(tmp_path / "paired")]) == 0
    report = json.loads((tmp_path / "paired" / "results.json").read_text())
    assert report["dataset"]["phones"] == "companion:default"
    scores = report["results"]
    assert scores["phonetic-spot"]["entity_f1"] > scores["none"]["entity_f1"]
    hypotheses = (tmp_path / "paired" / "hypotheses" / "phonetic-spot.tsv").read_text()
    assert "Reykjavik" in hypotheses
    assert main(base + ["--techniques", "none,subword", "--companion", "none",
                        "--output", str(tmp_path / "alone")]) == 0
    assert json.loads((tmp_path / "alone" / "results.json").read_text()
                      )["dataset"]["phones"] is None
    capsys.readouterr()
    assert main(base + ["--techniques", "phonetic", "--companion", "none",
                        "--output", str(tmp_path / "refused")]) == 2
    assert "companion" in capsys.readouterr().err


def test_the_server_runs_the_companion_beside_the_model(quartznet_dir: Path) -> None:
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from fastapi.testclient import TestClient

    from biasing.serve import ServerConfig, create_app

    def heard(**settings: object) -> str:
        config = ServerConfig(model=f"quartznet:{quartznet_dir}", workers=0, threads=1,
                              **settings)  # type: ignore[arg-type]
        with TestClient(create_app(config), client=("127.0.0.1", 50000)) as client:
            answer = client.post("/v1/audio/transcriptions",
                                 files={"file": ("travel.ogg",
                                                 (EXAMPLES / "travel.ogg").read_bytes())},
                                 data={"entities": "Reykjavik\nReykjanes"})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["text"])

    assert "Reykjavik" in heard()
    assert "Reykjavik" not in heard(companion=None)


def test_corpus_runs_take_a_companion(quartznet_dir: Path, tmp_path: Path) -> None:
    from biasing.cli import main

    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps({"id": "travel", "audio": str(EXAMPLES / "travel.ogg"),
                                    "entities": ["Reykjavik", "Reykjanes"]}) + "\n")
    texts = {}
    for companion in ("default", "none"):
        out = tmp_path / companion
        assert main(["transcribe-corpus", str(manifest), "--output", str(out), "--no-ray",
                     "--model", f"quartznet:{quartznet_dir}", "--companion", companion,
                     "--threads", "1"]) == 0
        texts[companion] = json.loads((out / "results.jsonl").read_text())["text"]
    assert "Reykjavik" in texts["default"] and "Reykjavik" not in texts["none"]
