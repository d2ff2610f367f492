"""run_eval computes, write_report writes, ``ctc-biasing eval`` ties them together."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CHAR_LABELS, ScriptedModel, write_tiny_quartznet

import biasing
from biasing.cli import main
from biasing.datasets import load_dataset
from biasing.entities import EntityList
from biasing.evaluation import (
    EvalContext,
    OutputCache,
    parse_techniques,
    plot_problem,
    report_json,
    run_eval,
    write_report,
)

CONTEXT = EvalContext(labels=CHAR_LABELS, kenlm_model_path=None, tokenizer=None, beam_width=16)


def test_run_scores_each_technique_and_writes_nothing(voxpopuli: Path, tmp_path: Path) -> None:
    dataset = load_dataset(voxpopuli, "test")
    lists = {u.id: EntityList(["Fremont", "Zelenskyy", "R2-D2"], "skip") for u in dataset}
    before = sorted(tmp_path.rglob("*"))
    run = run_eval(dataset, lists, ScriptedModel(), parse_techniques("none,subword"), CONTEXT)
    assert sorted(tmp_path.rglob("*")) == before
    results = {t.technique.name: t.result for t in run.techniques}
    assert results["none"].entity_recall == 0.0
    assert results["none"].wer == pytest.approx(1 / 5)  # fremond for fremont
    assert results["subword"].entity_recall == results["subword"].entity_precision == 1.0
    assert results["subword"].wer == 0.0 and results["subword"].n_utterances == 3
    subword = run.techniques[1]
    assert subword.utterances[0].hypothesis == "we met in Fremont today"
    assert subword.options["g2g_variants"] == 0
    assert run.unspellable == ("R2-D2",)  # reported once, not warned per utterance
    assert run.mean_list_size == 3.0


def test_phonetic_runs_on_the_phone_head_and_reports_unpronounceable_entries_once(
        voxpopuli: Path, recwarn: pytest.WarningsRecorder) -> None:
    pytest.importorskip("g2p_en")
    from biasing.lexicon.arpabet import BASE_PHONES

    phones = [*BASE_PHONES, ""]
    dataset = load_dataset(voxpopuli, "test")
    # a vocabulary with digits, so "R2D2" is spelled (boosted) but not pronounced
    labels = [*CHAR_LABELS[:-1], "2", ""]
    model = ScriptedModel(heads={"phones": phones})
    model.labels = labels
    lists = {u.id: EntityList(["Fremont", "R2D2"]) for u in dataset}
    context = EvalContext(labels=labels, kenlm_model_path=None, tokenizer=None, beam_width=16,
                          head_labels=model.head_labels)
    run = run_eval(dataset, lists, _Widened(model), parse_techniques("phonetic"), context)
    assert run.unpronounceable == ("R2D2",)
    assert not [w for w in recwarn if "pronunciation" in str(w.message)]
    assert run.techniques[0].result.n_utterances == 3


class _Widened:
    """The scripted model with one more output column (the "2" label, never likely)."""

    def __init__(self, model: ScriptedModel) -> None:
        self._model = model
        self.labels = model.labels
        self.head_labels = model.head_labels
        self.sample_rate = model.sample_rate
        self.frame_shift_s = model.frame_shift_s
        self.fingerprint = "widened"

    def forward(self, waves, layers=()):  # type: ignore[no-untyped-def]
        import numpy as np

        from biasing.models import ModelOutput

        return [ModelOutput(np.insert(o.logprobs, len(o.logprobs[0]) - 1, -30.0, axis=1),
                            heads=o.heads) for o in self._model.forward(waves, layers)]


def test_model_runs_once_per_utterance_with_a_cache(voxpopuli: Path, tmp_path: Path) -> None:
    dataset = load_dataset(voxpopuli, "test")
    lists = {u.id: EntityList(["Fremont"]) for u in dataset}
    model = ScriptedModel()
    cache = OutputCache.for_model(tmp_path / "cache", model)
    run_eval(dataset, lists, model, parse_techniques("none"), CONTEXT, cache)
    assert len(model.batches) == 3
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 3
    again = run_eval(dataset, lists, model, parse_techniques("none,subword"), CONTEXT, cache)
    assert len(model.batches) == 3 and again.forward_s == 0.0


def test_heads_a_technique_needs_are_passed_and_cached(voxpopuli: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from biasing.evaluation import Technique

    seen = []
    technique = Technique("phonetic", "reads the phone head", needs=frozenset({"phones"}),
                          factory=lambda context: lambda output, entities: seen.append(
                              output.heads["phones"].shape) or "")
    model = ScriptedModel(heads={"phones": ["AA", "B", ""]})
    dataset = load_dataset(voxpopuli, "test")
    lists = {u.id: EntityList() for u in dataset}
    context = EvalContext(**{**CONTEXT.__dict__, "head_labels": model.head_labels})
    cache = OutputCache.for_model(tmp_path / "cache", model)
    for _ in range(2):  # computed, then read back from the cache
        run_eval(dataset, lists, model, [technique], context, cache)
    assert len(seen) == 6 and all(shape[1] == 3 for shape in seen)
    assert len(model.batches) == 3


def test_errors_before_any_model_work(voxpopuli: Path) -> None:
    dataset = load_dataset(voxpopuli, "test")
    model = ScriptedModel()
    with pytest.raises(ValueError, match="no entity list"):
        run_eval(dataset, {}, model, parse_techniques("none"), CONTEXT)
    with pytest.raises(ValueError, match="needs a language model"):
        run_eval(dataset, {u.id: EntityList() for u in dataset}, model,
                 parse_techniques("lm"), CONTEXT)
    assert model.batches == []


def test_report_files(voxpopuli: Path, tmp_path: Path) -> None:
    dataset = load_dataset(voxpopuli, "test")
    lists = {u.id: EntityList(["Fremont"]) for u in dataset}
    run = run_eval(dataset, lists, ScriptedModel(), parse_techniques("none,subword"), CONTEXT)
    out = tmp_path / "out"
    report = write_report(run, out, {"name": "tiny"}, plot=plot_problem() is None)
    assert json.loads((out / "results.json").read_text()) == report
    assert report["dataset"]["name"] == "tiny" and report["dataset"]["n_utterances"] == 3
    assert report["dataset"]["version"] == biasing.__version__
    assert "| subword | 0.0 |" in (out / "results.md").read_text()
    rows = (out / "hypotheses" / "subword.tsv").read_text().splitlines()
    assert rows[0] == "id\treference\thypothesis\tfound\tmissed\tfalse_alarms"
    assert rows[1].split("\t")[2:4] == ["we met in Fremont today", "Fremont"]
    if plot_problem() is None:
        assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"
    write_report(run, tmp_path / "bare", {}, plot=False)
    assert not (tmp_path / "bare" / "results.png").exists()
    assert sorted(p.name for p in out.rglob("*.tmp")) == []


def test_the_chart_puts_error_rates_and_entity_scores_in_separate_panels(
        voxpopuli: Path) -> None:
    pytest.importorskip("matplotlib", reason="the chart needs the eval extra")
    import matplotlib.pyplot as plt

    from biasing.evaluation.report import _chart

    dataset = load_dataset(voxpopuli, "test")
    lists = {u.id: EntityList(["Fremont"]) for u in dataset}
    run = run_eval(dataset, lists, ScriptedModel(), parse_techniques("none,subword"), CONTEXT)
    report = report_json(run, {"name": "tiny"})
    results = report["results"]
    figure = _chart(report)
    try:
        errors, entities = figure.axes
        assert "lower is better" in errors.get_title()
        assert "higher is better" in entities.get_title()
        for ax, keys, labels in (
                (errors, ["wer", "b_wer", "u_wer"], ["WER", "B-WER", "U-WER"]),
                (entities, ["entity_precision", "entity_recall", "entity_f1"],
                 ["precision", "recall", "F1"])):
            assert [t.get_text() for t in ax.get_legend().get_texts()] == labels
            assert [t.get_text() for t in ax.get_xticklabels()] == ["none", "subword"]
            heights = [[bar.get_height() for bar in bars] for bars in ax.containers]
            assert heights == [[100 * (results[name][key] or 0) for name in results]
                               for key in keys]
        assert results["none"]["entity_precision"] is None  # nothing output: undefined
        assert entities.texts[0].get_text() == "n/a"  # the first bar: none's precision
    finally:
        plt.close(figure)


def test_missing_plot_dependency_is_said_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert "needs matplotlib" in (plot_problem() or "")


@pytest.mark.filterwarnings("ignore:label .* is the best label")  # an untrained model
def test_cli_eval_with_tiny_model(voxpopuli: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("torch", reason="the tiny QuartzNet needs the torch extra")
    model = write_tiny_quartznet(tmp_path / "tiny")
    (tmp_path / "per_utt.tsv").write_text("2024_utt0\tAbc Cab\n", encoding="utf-8")
    (tmp_path / "distractors.txt").write_text("Bac\nCabba\nAcca\n", encoding="utf-8")
    out = tmp_path / "out"
    base = ["eval", "--dataset", str(voxpopuli), "--model", f"quartznet:{model}",
            "--cache", str(tmp_path / "cache")]
    code = main([*base, "--entities-per-utt", str(tmp_path / "per_utt.tsv"),
                 "--distractors", str(tmp_path / "distractors.txt"), "--list-size", "3",
                 "--techniques", "none,subword", "--set", "unit_bonus=0.5", "--weight", "2",
                 "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "results.json").read_text())
    assert set(report["results"]) == {"none", "subword"}
    assert report["dataset"]["mean_list_size"] == 3.0
    assert report["dataset"]["decoder_options"] == {"unit_bonus": 0.5, "weight": 2.0}
    assert report["dataset"]["technique_options"]["subword"]["unit_bonus"] == 0.5
    assert "| subword |" in capsys.readouterr().out
    assert main([*base, "--techniques", "none,bogus", "--output", str(out)]) == 2
    assert "known: none" in capsys.readouterr().err
    assert main([*base, "--list-size", "3", "--output", str(out)]) == 2
    assert "--distractors FILE --list-size N" in capsys.readouterr().err
    assert main([*base, "--limit", "0", "--output", str(out)]) == 2
    assert "--limit must be at least 1" in capsys.readouterr().err
