"""A hostile but realistic user, case by case: every bad input gets the exact outcome a
demanding user expects (an error that names the value and what was expected, or the right
output), through the command line as it is used."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import CHAR_LABELS, char_logprobs, write_tiny_quartznet

from biasing.cli import main

sf = pytest.importorskip("soundfile")
EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples"
Setup = Callable[[Path], list[str]]


def _decode_inputs(folder: Path, labels: list[str] = CHAR_LABELS,
                   logits: np.ndarray | None = None) -> list[str]:
    np.save(folder / "x.npy", char_logprobs("we met in fremont today") if logits is None
            else logits)
    (folder / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    return ["decode", "--logits", str(folder / "x.npy"), "--labels", str(folder / "labels.txt")]


def _fifo(folder: Path) -> str:
    os.mkfifo(folder / "fifo")
    return str(folder / "fifo")


def _file(folder: Path, name: str, content: bytes | str) -> str:
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)


def _dataset(folder: Path) -> Path:
    rows = ["id\traw_text\tnormalized_text"]
    for i in range(2):
        rows.append(f"u{i}\tWe met in Fremont.\twe met in fremont")
        sf.write(folder / f"u{i}.wav", np.zeros(8000, np.float32), 16000)
    (folder / "asr_test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def _eval(folder: Path, *extra: str) -> list[str]:
    data = _dataset(folder / "data") if (folder / "data").is_dir() else _dataset(
        _mkdir(folder / "data"))
    model = write_tiny_quartznet(folder / "tiny")
    return ["eval", "--dataset", str(data), "--model", f"quartznet:{model}", "--techniques",
            "none", "--cache", str(folder / "cache"), "--output", str(folder / "out"), *extra]


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


CASES: dict[str, tuple[Setup, int, str]] = {
    # entity lists
    "entities from /dev/zero": (
        lambda d: [*_decode_inputs(d), "--entities", "/dev/zero"], 2,
        "entity file /dev/zero is not a regular file"),
    "entities from a FIFO without a writer": (
        lambda d: [*_decode_inputs(d), "--entities", _fifo(d)], 2, "is not a regular file"),
    "entities from a folder": (
        lambda d: [*_decode_inputs(d), "--entities", str(d)], 2, "is a folder, expected a file"),
    "entities in Latin-1": (
        lambda d: [*_decode_inputs(d), "--entities", _file(d, "e.txt", b"Fremont\nM\xfcller\n")],
        2, "e.txt:2: entity file is not valid UTF-8 (byte 0xfc"),
    "an entity weight that is not a number": (
        lambda d: [*_decode_inputs(d), "--entities", _file(d, "e.txt", "Fremont\tlots\n")], 2,
        "e.txt:1: weight 'lots' of 'Fremont' is not a number"),
    "an entity the model cannot spell": (
        lambda d: [*_decode_inputs(d), "--entities", _file(d, "e.txt", "R2-D2\n")], 2,
        "(CLI: --skip-unrepresentable)"),
    # labels and logits
    "labels without the blank": (
        lambda d: _decode_inputs(d, CHAR_LABELS[:-1], char_logprobs("we met")[:, :-1]), 2,
        "the labels had no CTC blank (''), so one was appended"),
    "labels JSON that is broken": (
        lambda d: [*_decode_inputs(d)[:3], "--labels", _file(d, "l.json", '[" ", "a",')], 2,
        "l.json:1: not valid JSON"),
    "labels from a folder": (
        lambda d: [*_decode_inputs(d)[:3], "--labels", str(d)], 2, "labels file"),
    "logits with NaN": (
        lambda d: _decode_inputs(d, logits=np.full((5, len(CHAR_LABELS)), np.nan)), 2,
        "NaN or +inf (first at frame 0)"),
    "logits of the wrong width": (
        lambda d: _decode_inputs(d, logits=np.zeros((5, 7))), 2, "shape (5, 7), but need"),
    "logits that are pickled objects": (
        lambda d: _decode_inputs(d, logits=np.array([{"a": 1}], dtype=object)), 2,
        "cannot read logits"),
    "--log-softmax on probabilities": (
        lambda d: [*_decode_inputs(d, logits=np.exp(char_logprobs("we met"))),
                   "--log-softmax"], 2, "holds probabilities (every row sums to 1)"),
    # options
    "a bonus of 1e308": (
        lambda d: [*_decode_inputs(d), "--set", "unit_bonus=1e308"], 2,
        "unit_bonus must be a number from 0 to 1000, got 1e+308"),
    "a fractional number of variants": (
        lambda d: [*_decode_inputs(d), "--set", "g2g_variants=2.5"], 2,
        "g2g_variants must be an integer >= 0, got 2.5"),
    "an unknown option": (
        lambda d: [*_decode_inputs(d), "--set", "boost_everything=1"], 2,
        "unknown decoder option(s) boost_everything"),
    # models
    "a model folder without weights": (
        lambda d: ["transcribe", str(EXAMPLES / "travel.ogg"), "--model",
                   f"quartznet:{_mkdir(d / 'empty')}"], 2, "lacks config.json, weights.npz"),
    "a model config with a zero stride": (
        lambda d: ["transcribe", str(EXAMPLES / "travel.ogg"), "--model",
                   f"quartznet:{_bad_stride(d)}"], 2, "stride, dilation and groups must be >= 1"),
    "a tokenizer file that is not sentencepiece": (
        lambda d: [*_decode_inputs(d), "--tokenizer", _file(d, "t.model", b"garbage"),
                   "--entities", _file(d, "e.txt", "Fremont\n")], 2,
        "cannot read the sentencepiece model"),
    "--threads 0": (
        lambda d: ["transcribe", str(EXAMPLES / "travel.ogg"), "--threads", "0"], 2,
        "threads must be a positive integer, got 0"),
    # eval
    "per-utterance entities for another split": (
        lambda d: _eval(d, "--entities-per-utt", _file(d, "per.tsv", "u0\tFremont\nx9\tA\n")),
        2, "1 id(s) are not in the dataset, e.g. ['x9']"),
    "--list-size 0": (
        lambda d: _eval(d, "--distractors", _file(d, "x.txt", "A\n"), "--list-size", "0"), 2,
        "the list size must be at least 1, got 0"),
    "--list-size without distractors": (
        lambda d: _eval(d, "--list-size", "5"), 2, "--distractors FILE --list-size N"),
    "--limit 0": (lambda d: _eval(d, "--limit", "0"), 2, "--limit must be at least 1, got 0"),
    "--limit -1": (lambda d: _eval(d, "--limit", "-1"), 2, "--limit must be at least 1, got -1"),
    "--output that is a file": (
        lambda d: [*_eval(d)[:-2], "--output", _file(d, "out.txt", "x")], 2,
        "as the --output folder: "),
    "--cache that is a file": (
        lambda d: [*_eval(d), "--cache", _file(d, "c.txt", "x")], 2,
        "as the model output cache: "),
}


def _bad_stride(folder: Path) -> Path:
    model = write_tiny_quartznet(folder / "bad")
    config = json.loads((model / "config.json").read_text())
    config["convolutions"][0]["stride"] = 0
    (model / "config.json").write_text(json.dumps(config))
    return model


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    setup, code, message = CASES[case]
    argv = setup(tmp_path)
    capsys.readouterr()
    assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="entity file not found"):
        main(["--debug", *_decode_inputs(tmp_path), "--entities", str(tmp_path / "nope")])


def test_transcribe_reports_each_bad_file_and_keeps_the_rest(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    truncated = tmp_path / "cut.ogg"
    data = (EXAMPLES / "clinic.ogg").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    not_audio = Path(_file(tmp_path, "notes.wav", "these are not samples"))
    files = [str(EXAMPLES / "travel.ogg"), str(tmp_path / "missing.wav"), str(truncated),
             str(not_audio), str(EXAMPLES / "invoice.ogg")]
    assert main(["transcribe", *files]) == 1
    out, err = capsys.readouterr()
    assert [line.split("\t")[0] for line in out.splitlines()] == [files[0], files[4]]
    assert "audio file not found" in err and "missing.wav" in err
    assert "is truncated: its Ogg stream ends without an end-of-stream page" in err
    assert "cannot read audio file" in err and "notes.wav" in err
    assert "3 of 5 files failed" in err
    assert main(["transcribe", *files[:2], "--json"]) == 1
    results = json.loads(capsys.readouterr().out)
    assert results[0]["text"] and results[1] == {
        "audio": files[1], "error": f"audio file not found: {files[1]}"}


def test_an_interrupted_report_never_pairs_old_results_with_new_hypotheses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    argv = _eval(tmp_path)
    assert main(argv) == 0
    assert (tmp_path / "out" / "results.json").is_file()
    from biasing.evaluation import report

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "results_markdown", killed)  # dies after the hypotheses
    assert main(argv) == 130
    assert not (tmp_path / "out" / "results.json").exists()
    assert "interrupted" in capsys.readouterr().err


def test_technique_overrides_are_said(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = _eval(tmp_path)
    argv[argv.index("none")] = "none,subword"
    assert main([*argv, "--set", "g2g_variants=2"]) == 0
    assert "technique 'subword' decodes with {'g2g_variants': 0} whatever --set says" in \
        capsys.readouterr().err


def test_a_cache_root_that_is_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("CTC_BIASING_CACHE", _file(tmp_path, "cache-file", "x"))
    argv = _eval(tmp_path)
    del argv[argv.index("--cache"):argv.index("--cache") + 2]
    assert main(argv) == 2
    assert "cache-file is a file" in capsys.readouterr().err


def test_numbers_in_any_numeric_type() -> None:
    from biasing import EntityList
    from biasing.audio import to_model_rate
    from biasing.decoders import BiasingOptions

    assert [e.weight for e in EntityList([("A", np.float32(2)), ("B", "3"), ("C", 4)])] == [
        2.0, 3.0, 4.0]
    assert len(to_model_rate(np.zeros(3200, np.float32), 16000.0, np.int64(8000))) == 1600
    options = BiasingOptions.from_flat(g2g_variants=np.int64(2), unit_bonus=np.float32(0.5))
    assert options.boosting.g2g_variants == 2 and options.boosting.unit_bonus == 0.5


def test_threads_follow_the_cores_available(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch", reason="threads are torch's")
    from biasing import models

    monkeypatch.setattr(models, "_cgroup_cpu_quota", lambda: 1.5)
    assert models.available_cores() == 1
    monkeypatch.setattr(models, "_cgroup_cpu_quota", lambda: None)
    assert models.available_cores() == len(os.sched_getaffinity(0))
    previous = torch.get_num_threads()
    try:
        assert models.set_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)


def test_default_threads_leave_busy_cores_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from biasing import models

    monkeypatch.setattr(models, "available_cores", lambda: 4)
    monkeypatch.setattr(models, "_affinity", lambda: {0, 1, 2, 3})
    samples = iter([(0.0, 0.0), (300.0, 400.0)])  # 3 of 4 cores busy over the sample
    monkeypatch.setattr(models, "_cpu_times", lambda cpus: next(samples))
    assert models.free_cores(sample_s=0.0) == 1
    samples = iter([(0.0, 0.0), (40.0, 400.0)])  # nearly idle
    assert models.free_cores(sample_s=0.0) == 4
    monkeypatch.setattr(models, "_cpu_times", lambda cpus: None)  # no /proc/stat
    assert models.free_cores(sample_s=0.0) == 4


@pytest.mark.skipif(shutil.which("mkfifo") is None and not hasattr(os, "mkfifo"),
                    reason="no FIFOs here")
def test_a_fifo_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    from biasing import EntityList

    with pytest.raises(ValueError, match="not a regular file"):
        EntityList.from_file(_fifo(tmp_path))
