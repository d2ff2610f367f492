"""transcribe-corpus: manifests, per-row lists, resumable JSONL and Parquet output, in this
process and on a local Ray instance (skipped with the reason when the ray extra is absent);
the output folder: never through a symbolic link, one run at a time, checked before a model
loads.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from conftest import read_only

from biasing.cli import main
from biasing.corpus import read_manifest, transcribe_corpus
from biasing.corpus_output import LOCK_FILE, RESULTS_JSONL, ResultWriter
from biasing.raypool import RayOptions

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "data" / "examples"
NAMES = {"booking": ["Kaiyo", "Thandiwe Okonkwo"], "clinic": ["Przybylski", "tirzepatide"],
         "invoice": ["Quetzal Robotics"], "travel": ["Reykjavik"]}
ARGUMENTS = {"model": "default", "pronunciation_cache": False}


def write_manifest(folder: Path, clips: list[str], lists: bool = True,
                   extra: list[dict[str, object]] = ()) -> Path:  # type: ignore[assignment]
    rows = [{"id": clip, "audio": str(EXAMPLES / f"{clip}.ogg"),
             **({"entities": NAMES[clip]} if lists else {})} for clip in clips]
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [*rows, *extra]))
    return path


def results(folder: Path) -> dict[str, dict[str, Any]]:
    lines = (folder / RESULTS_JSONL).read_text().splitlines()
    return {json.loads(line)["id"]: json.loads(line) for line in lines}


def test_manifests_in_jsonl_and_tsv(tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("audio\tid\tentities\nx.wav\tone\tKaiyo|Zermatt\n"
                                    "/abs/y.wav\ttwo\t\n")
    rows = read_manifest(tmp_path / "a.tsv")
    assert [(r.id, r.audio, r.entities) for r in rows] == [
        ("one", str(tmp_path / "x.wav"), ("Kaiyo", "Zermatt")), ("two", "/abs/y.wav", None)]
    (tmp_path / "b.tsv").write_text("x.wav\tKaiyo\n")  # no header: audio, entities
    assert read_manifest(tmp_path / "b.tsv")[0].id == "x.wav"
    (tmp_path / "c.jsonl").write_text('{"audio": "x.wav", "entities": "A|B"}\n\n'
                                      '{"audio": "y.wav", "id": 7, "entities": ["C"]}\n')
    assert [(r.id, r.entities) for r in read_manifest(tmp_path / "c.jsonl")] == [
        ("x.wav", ("A", "B")), ("7", ("C",))]


@pytest.mark.parametrize(("text", "says"), [
    ('{"audio": "x.wav"}\n{"audio": "x.wav"}\n', "manifest.jsonl:2: id 'x.wav' repeats line 1"),
    ('{"id": "a"}\n', "manifest.jsonl:1: no 'audio' path"),
    ('{"audio": "x.wav"\n', "manifest.jsonl:1: not valid JSON"),
    ('{"audio": "x.wav", "entities": 3}\n', "entities must be a list of strings"),
    ("", "no rows"),
])
def test_bad_manifests_name_the_line(tmp_path: Path, text: str, says: str) -> None:
    (tmp_path / "manifest.jsonl").write_text(text)
    with pytest.raises(ValueError, match=says.replace("(", r"\(").replace("|", r"\|")):
        read_manifest(tmp_path / "manifest.jsonl")


def test_each_row_gets_its_own_list_and_a_bad_file_is_reported(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, ["clinic", "travel"],
                              extra=[{"id": "gone", "audio": "missing.wav"}])
    summary = transcribe_corpus(read_manifest(manifest), tmp_path / "out", ARGUMENTS,
                                threads=1)
    assert (summary.written, summary.failed, summary.skipped) == (3, 1, 0)
    found = results(tmp_path / "out")
    assert found["clinic"]["text"] == \
        "doctor Przybylski switched the patient to tirzepatide last week"
    assert "Reykjavik" in str(found["travel"]["text"])
    assert "Przybylski" not in str(found["travel"]["text"])  # rows do not share lists
    assert "not found" in str(found["gone"]["error"])
    assert [e["entity"] for e in found["clinic"]["entities"]] == NAMES["clinic"]


def test_a_killed_run_resumes_without_redoing_finished_rows(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, ["booking", "clinic", "invoice", "travel"])
    rows = read_manifest(manifest)
    out = tmp_path / "out"
    first = transcribe_corpus(rows[:2], out, ARGUMENTS, threads=1)
    assert first.written == 2
    with open(out / RESULTS_JSONL, "a") as stream:  # a kill in the middle of a line
        stream.write('{"id": "invoice", "text": "call am')
    again = transcribe_corpus(rows, out, ARGUMENTS, threads=1)
    assert (again.skipped, again.written) == (2, 2)
    lines = (out / RESULTS_JSONL).read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == [
        "booking", "clinic", "invoice", "travel"]
    assert transcribe_corpus(rows, out, ARGUMENTS, threads=1).written == 0


def test_parquet_output_resumes_too(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow (the ray extra) is absent")
    manifest = write_manifest(tmp_path, ["clinic", "travel"])
    rows = read_manifest(manifest)
    transcribe_corpus(rows[:1], tmp_path / "out", ARGUMENTS, output_format="parquet",
                      threads=1)
    summary = transcribe_corpus(rows, tmp_path / "out", ARGUMENTS, output_format="parquet",
                                threads=1)
    assert (summary.skipped, summary.written) == (1, 1)
    table = pq.read_table(tmp_path / "out")
    assert sorted(table.column("id").to_pylist()) == ["clinic", "travel"]
    with contextlib.closing(ResultWriter(tmp_path / "out", "parquet")) as writer:
        assert writer.done() == {"clinic", "travel"}


def test_the_cli_with_a_global_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(tmp_path, ["clinic", "travel"], lists=False)
    code = main(["transcribe-corpus", str(manifest), "--output", str(tmp_path / "out"),
                 "--no-ray", "--threads", "1", "--entities", str(EXAMPLES / "entities.txt")])
    assert code == 0
    assert "2 rows written" in capsys.readouterr().out
    found = results(tmp_path / "out")
    assert "Przybylski" in str(found["clinic"]["text"])
    assert main(["transcribe-corpus", str(manifest), "--output", str(tmp_path / "out"),
                 "--no-ray", "--num-actors", "2"]) == 2
    assert "--num-actors go with Ray, which this run does not use" in capsys.readouterr().err


# ------------------------------------------------------------------- the output folder

@pytest.mark.parametrize(("output_format", "name"), [
    ("jsonl", RESULTS_JSONL), ("jsonl", LOCK_FILE), ("parquet", "part-00000.parquet")])
def test_a_symlink_in_the_output_folder_is_refused_and_its_target_untouched(
        tmp_path: Path, refused: None, output_format: str, name: str) -> None:
    target = tmp_path / "precious.txt"
    target.write_bytes(b"keep me\na last line without its newline")
    out = tmp_path / "out"
    out.mkdir()
    (out / name).symlink_to(target)
    rows = read_manifest(write_manifest(tmp_path, ["clinic"]))
    with pytest.raises(ValueError, match=re.escape(f"{out / name} is a symbolic link")):
        transcribe_corpus(rows, out, ARGUMENTS, output_format=output_format,  # type: ignore[arg-type]
                          threads=1)
    assert target.read_bytes() == b"keep me\na last line without its newline"
    assert sorted(p.name for p in out.iterdir() if p.name != name) in ([], [LOCK_FILE])


def test_a_symlinked_output_folder_is_refused(tmp_path: Path, refused: None,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "real")
    manifest = write_manifest(tmp_path, ["clinic"])
    assert main(["transcribe-corpus", str(manifest), "--output", str(tmp_path / "out"),
                 "--no-ray"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"the output folder {tmp_path / 'out'} is a symbolic link (to " in err
    assert list((tmp_path / "real").iterdir()) == []


def test_a_second_run_into_the_same_folder_is_refused(
        tmp_path: Path, refused: None, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(tmp_path, ["clinic"])
    out = tmp_path / "out"
    first = ResultWriter(out)  # what a run holds while it runs
    try:
        with pytest.raises(RuntimeError, match=re.escape(
                f"another run (pid {os.getpid()}) is writing to {out}")):
            transcribe_corpus(read_manifest(manifest), out, ARGUMENTS, threads=1)
        assert main(["transcribe-corpus", str(manifest), "--output", str(out), "--ray-address",
                     "auto"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert f"error: another run (pid {os.getpid()}) is writing to {out}" in err
    finally:
        first.close()
    assert (out / RESULTS_JSONL).read_bytes() == b""
    ResultWriter(out).close()  # free once the first run has ended


def test_the_lock_goes_with_a_killed_process(tmp_path: Path) -> None:
    hold = ("import sys, time; from biasing.corpus_output import ResultWriter; "
            "writer = ResultWriter(sys.argv[1]); print('locked', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(RuntimeError, match=rf"another run \(pid {holder.pid}\)"):
            ResultWriter(tmp_path)
    finally:
        holder.kill()  # SIGKILL: no cleanup of its own runs
        holder.wait()
    ResultWriter(tmp_path).close()


@pytest.mark.parametrize("backend", [["--no-ray"], ["--num-actors", "1"]])
def test_a_read_only_output_is_reported_before_any_model_loads(
        tmp_path: Path, refused: None, capsys: pytest.CaptureFixture[str],
        backend: list[str]) -> None:
    manifest = write_manifest(tmp_path, ["clinic"])
    out = tmp_path / "out"
    out.mkdir()
    with read_only(out):
        assert main(["transcribe-corpus", str(manifest), "--output", str(out), *backend]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"error: cannot write in the output folder {out}: " in err


@pytest.fixture(scope="module")
def local_ray():  # type: ignore[no-untyped-def]
    """One local 2-CPU Ray instance for the Ray tests of this module."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_same_transcripts_and_resumes(tmp_path: Path, local_ray: object,
                                                    capfd: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(tmp_path, ["booking", "clinic", "invoice", "travel"])
    rows = read_manifest(manifest)
    transcribe_corpus(rows, tmp_path / "local", ARGUMENTS, threads=1)
    options = RayOptions(num_actors=1, threads_per_actor=1)
    first = transcribe_corpus(rows[:1], tmp_path / "ray", ARGUMENTS, ray=options)
    rest = transcribe_corpus(rows, tmp_path / "ray", ARGUMENTS, ray=options)
    assert (first.written, rest.skipped, rest.written) == (1, 1, 3)
    local, remote = results(tmp_path / "local"), results(tmp_path / "ray")
    assert {k: v["text"] for k, v in remote.items()} == {k: v["text"] for k, v in local.items()}
    # a normal run is quiet: no core worker error line (ray-project/ray#57733), no Ray Data
    # INFO lines or progress (capfd: the core worker writes to the descriptor itself)
    err = capfd.readouterr().err
    assert not [line for line in err.splitlines()
                if re.search(r"\] \w+\.cc:\d+:| INFO |Progress|Running Dataset", line)], err


def test_eval_on_ray_scores_as_eval_here(tmp_path: Path, local_ray: object,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    common = ["eval", "--dataset", str(EXAMPLES), "--entities-per-utt",
              str(EXAMPLES / "entities_per_utt.tsv"), "--techniques", "none,subword",
              "--threads", "1", "--no-cache"]
    assert main([*common, "--output", str(tmp_path / "here")]) == 0
    assert main([*common, "--output", str(tmp_path / "ray"), "--ray", "--num-actors", "2"]) == 0
    capsys.readouterr()

    def scores(folder: Path) -> list[tuple[str, float, float | None]]:
        report = json.loads((folder / "results.json").read_text())
        return [(name, r["wer"], r["entity_f1"]) for name, r in report["results"].items()]

    assert scores(tmp_path / "ray") == scores(tmp_path / "here")
    here = (tmp_path / "here" / "hypotheses").iterdir()
    for path in here:
        assert (tmp_path / "ray" / "hypotheses" / path.name).read_text() == path.read_text()
