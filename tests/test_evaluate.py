"""`ctc-biasing eval`: techniques registry, entity lists, cache, report files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the acoustic models need the torch extra")
sf = pytest.importorskip("soundfile")

from conftest import CHAR_LABELS
from test_transcribe import SPOKEN, ScriptedModel

from biasing.cli import main
from biasing.datasets import load_dataset
from biasing.entities import EntityList
from biasing.evaluate import (
    EvalContext,
    auto_entities,
    parse_techniques,
    run_eval,
    split_rarity,
    with_distractors,
)

HEADER = "id\traw_text\tnormalized_text\tspeaker_id\tsplit\tgender\tis_gold_transcript\taccent"


def _voxpopuli(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [HEADER]
    for i in range(n):
        utt = f"2024_utt{i}"
        rows.append(f"{utt}\tWe met in Fremont today.\twe met in fremont today\tspk{i}\ttest"
                    "\tfemale\tTrue\tNone")
        sf.write(folder / f"{utt}.wav", np.zeros(int(len(SPOKEN) * 0.02 * 16000), np.float32),
                 16000)
    (folder / "asr_test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def test_techniques_registry() -> None:
    assert [t.name for t in parse_techniques("none,subword,none")] == ["none", "subword"]
    with pytest.raises(ValueError, match="unknown technique.*magic.*known: none, hotwords"):
        parse_techniques("none,magic")
    context = EvalContext(labels=CHAR_LABELS, kenlm_model_path=None, tokenizer=None,
                          beam_width=16)
    with pytest.raises(ValueError, match="'lm' needs a language model"):
        parse_techniques("lm")[0].factory(context)


def test_run_eval_scores_each_technique(tmp_path: Path) -> None:
    dataset = load_dataset(_voxpopuli(tmp_path / "data"), "test")
    lists = {u.id: EntityList(["Fremont", "Zelenskyy"]) for u in dataset}
    context = EvalContext(labels=CHAR_LABELS, kenlm_model_path=None, tokenizer=None,
                          beam_width=16)
    report = run_eval(dataset, lists, ScriptedModel(), "scripted", parse_techniques(
        "none,hotwords,subword,all"), context, tmp_path / "out", cache_dir=tmp_path / "cache")
    results = report["results"]
    assert results["none"]["entity_recall"] == 0.0
    assert results["none"]["wer"] == pytest.approx(1 / 5)  # fremond for fremont
    assert results["subword"]["entity_recall"] == 1.0
    assert results["subword"]["entity_precision"] == 1.0
    assert results["subword"]["wer"] == 0.0
    assert results["subword"]["n_utterances"] == 3
    for name in ("results.json", "results.md", "results.png", "hypotheses/subword.tsv"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == report
    rows = (tmp_path / "out" / "hypotheses" / "subword.tsv").read_text().splitlines()
    assert rows[1].split("\t")[2:4] == ["we met in Fremont today", "Fremont"]
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 3  # one per utterance


def test_entity_list_helpers() -> None:
    rare = split_rarity(["the city is big", "we met the mayor in paris"], max_count=0)
    assert auto_entities("We met Ann Smith in Fremont. The City said so.", rare) == [
        "Ann Smith", "Fremont"]
    listed = with_distractors(["Fremont"], ["A", "B", "fremont", "C"], 3, random.Random(0))
    assert listed[0] == "Fremont" and len(listed) == 3 and "fremont" not in listed


def test_cli_eval_with_tiny_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from models.conftest import write_tiny_quartznet

    model = write_tiny_quartznet(tmp_path / "tiny")
    data = _voxpopuli(tmp_path / "data", n=2)
    (tmp_path / "per_utt.tsv").write_text("2024_utt0\tAbc Cab\n", encoding="utf-8")
    (tmp_path / "distractors.txt").write_text("Bac\nCabba\nAcca\n", encoding="utf-8")
    out = tmp_path / "out"
    code = main(["eval", "--dataset", str(data), "--model", f"quartznet:{model}",
                 "--entities-per-utt", str(tmp_path / "per_utt.tsv"),
                 "--distractors", str(tmp_path / "distractors.txt"), "--list-size", "3",
                 "--techniques", "none,subword", "--cache", str(tmp_path / "cache"),
                 "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "results.json").read_text())
    assert set(report["results"]) == {"none", "subword"}
    assert report["dataset"]["mean_list_size"] == 3.0
    assert "| subword |" in capsys.readouterr().out
    assert main(["eval", "--dataset", str(data), "--model", f"quartznet:{model}",
                 "--techniques", "none,bogus", "--output", str(out)]) == 2
    assert "known: none" in capsys.readouterr().err
