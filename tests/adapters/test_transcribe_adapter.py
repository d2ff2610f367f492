"""The adapter inside Transcriber, the CLI and eval, on a tiny QuartzNet folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the adapter needs torch")
sf = pytest.importorskip("soundfile")

from biasing import Transcriber
from biasing.adapters import ADAPTER_FILE, Adapter, save_adapter
from biasing.cli import main
from biasing.evaluation import EvalContext, parse_techniques, run_eval
from biasing.models import load_model
from tests.adapters.test_adapter import _module


@pytest.fixture(scope="module")
def folder(tiny_quartznet_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model folder with an adapter.npz beside its weights."""
    target = tmp_path_factory.mktemp("with_adapter") / "model"
    shutil.copytree(tiny_quartznet_dir, target)
    model = load_model(f"quartznet:{target}")
    save_adapter(target / ADAPTER_FILE, _module(model, seed=3), int8=False)
    return target


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(1)
    paths = []
    for n in range(3):
        paths.append(out / f"c{n}.wav")
        sf.write(paths[-1], 0.2 * rng.standard_normal(16000 + 4000 * n), 16000)
    return paths


def _texts(transcriber: Transcriber, clips: list[Path], entities) -> list[str]:
    return [t.text for t in transcriber.transcribe(clips, entities)]


def test_off_by_default_and_on_request(folder: Path, clips: list[Path]) -> None:
    spec = f"quartznet:{folder}"
    with_adapter = Transcriber(spec, beam_width=8, adapter=True)
    without = Transcriber(spec, beam_width=8)
    assert with_adapter.adapter is not None and without.adapter is None
    assert Transcriber(spec, beam_width=8, adapter=False).adapter is None
    entities = ["abc", "cab"]
    with_out = with_adapter.transcribe(clips, entities, attention=True)
    assert all(t.attention is not None and t.attention.weights.shape[1] == 3 for t in with_out)
    assert with_out[0].attention.entities == ("abc", "cab")
    # no list: exactly the base model, adapter or not (the adapter does not run)
    assert _texts(with_adapter, clips, []) == _texts(without, clips, [])
    assert all(t.attention is None for t in with_adapter.transcribe(clips, [], attention=True))
    # weight 0 changes nothing, the adapter included
    assert Transcriber(spec, beam_width=8, weight=0.0, adapter=True).adapter is None


def test_adapter_changes_the_posteriors_it_decodes(folder: Path, clips: list[Path]) -> None:
    model = load_model(f"quartznet:{folder}")
    transcriber = Transcriber(model, beam_width=8, adapter=True)
    wave, _ = sf.read(clips[0], dtype="float32")
    out = model.forward([wave], layers=transcriber.adapter.layers)[0]
    biased = transcriber.adapter.bias(out, ["abc", "cab"]).logprobs
    assert np.abs(biased - out.logprobs).max() > 1e-3


def test_adapter_true_without_a_file(tiny_quartznet_dir: Path) -> None:
    with pytest.raises(ValueError, match="has no adapter.npz"):
        Transcriber(f"quartznet:{tiny_quartznet_dir}", adapter=True)
    assert Transcriber(f"quartznet:{tiny_quartznet_dir}", adapter=None).adapter is None


def test_explicit_adapter_and_mismatch(folder: Path, tiny_quartznet_dir: Path,
                                       tmp_path: Path) -> None:
    model = load_model(f"quartznet:{folder}")
    adapter = Adapter(_module(model), model)
    assert Transcriber(model, adapter=adapter).adapter is adapter
    other = tmp_path / "other"
    shutil.copytree(tiny_quartznet_dir, other)
    config = json.loads((other / "config.json").read_text())
    config["labels"][3] = "d"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not match model"):
        Transcriber(f"quartznet:{other}", adapter=folder / ADAPTER_FILE)


def test_cli_attention_plot(folder: Path, clips: list[Path], tmp_path: Path,
                            capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("matplotlib", reason="the plot needs matplotlib")
    entities = tmp_path / "e.txt"
    entities.write_text("abc\ncab\n")
    plot = tmp_path / "att.png"
    code = main(["transcribe", str(clips[2]), "--model", f"quartznet:{folder}", "--entities",
                 str(entities), "--attention-plot", str(plot), "--beam-width", "4"])
    assert code == 0 and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "attention plot ->" in capsys.readouterr().err
    # several inputs: one numbered plot each
    assert main(["transcribe", *map(str, clips[:2]), "--model", f"quartznet:{folder}",
                 "--entities", str(entities), "--attention-plot", str(plot)]) == 0
    assert (tmp_path / "att-1.png").is_file() and (tmp_path / "att-2.png").is_file()
    # the plot needs a list and the adapter
    assert main(["transcribe", str(clips[0]), "--model", f"quartznet:{folder}",
                 "--attention-plot", str(plot)]) == 2
    assert "needs --entities" in capsys.readouterr().err
    # --adapter alone: the model folder's; --adapter FILE: that one
    assert main(["transcribe", str(clips[0]), "--model", f"quartznet:{folder}", "--entities",
                 str(entities), "--adapter"]) == 0
    assert main(["transcribe", str(clips[0]), "--model", f"quartznet:{folder}", "--entities",
                 str(entities), "--adapter", str(tmp_path / "absent.npz")]) == 2
    assert "absent.npz" in capsys.readouterr().err


def test_eval_adapter_and_joint(folder: Path, clips: list[Path], tmp_path: Path) -> None:
    from biasing.adapters import load_adapter
    from biasing.datasets import Utterance
    from biasing.entities import as_entity_list
    from biasing.evaluation import OutputCache

    model = load_model(f"quartznet:{folder}")
    dataset = [Utterance(f"u{n}", clip, "abc cab", "abc cab") for n, clip in enumerate(clips)]
    lists = {u.id: as_entity_list(["abc", "bab"]) for u in dataset}
    techniques = parse_techniques("none,adapter,joint")
    bare = EvalContext(labels=model.labels, kenlm_model_path=None, tokenizer=None,
                       beam_width=4, model="tiny")
    with pytest.raises(ValueError, match="needs a contextual adapter"):
        techniques[1].build(bare)
    context = EvalContext(labels=model.labels, kenlm_model_path=None, tokenizer=None,
                          beam_width=4, model="tiny",
                          adapter=load_adapter(folder / ADAPTER_FILE, model))
    cache = OutputCache(tmp_path / "cache", model.fingerprint)
    first = run_eval(dataset, lists, model, techniques, context, cache)
    again = run_eval(dataset, lists, model, techniques, context, cache)  # hidden from cache
    assert again.forward_s == 0.0
    for a, b in zip(first.techniques, again.techniques):
        assert [u.hypothesis for u in a.utterances] == [u.hypothesis for u in b.utterances]
    # the adapter technique is plain beam search on the biased output
    plain = parse_techniques("none")[0].build(context)
    adapted = techniques[1].build(context)
    out = model.forward([sf.read(clips[1], dtype="float32")[0]], layers=context.adapter.layers)[0]
    biased = context.adapter.bias(out, lists["u1"])
    from biasing.models import ModelOutput
    assert adapted(out, lists["u1"]) == plain(ModelOutput(biased.logprobs), lists["u1"])
