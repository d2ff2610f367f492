"""The ctc-biasing command line, run in-process and as the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import CHAR_LABELS, char_logprobs

from biasing.cli import main


@pytest.fixture()
def inputs(tmp_path: Path) -> dict[str, Path]:
    logits = tmp_path / "utt.npy"
    np.save(logits, char_logprobs("we met in fremont today", weak={16: ("d", 0.55, 0.35)}))
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(CHAR_LABELS) + "\n", encoding="utf-8")
    entities = tmp_path / "entities.txt"
    entities.write_text("# places\nFremont\nZelenskyy\t2\n", encoding="utf-8")
    return {"logits": logits, "labels": labels, "entities": entities}


def test_decode_text_and_json(inputs: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    base = ["decode", "--logits", str(inputs["logits"]), "--labels", str(inputs["labels"])]
    assert main(base) == 0
    assert capsys.readouterr().out == "we met in fremond today\n"
    assert main(base + ["--entities", str(inputs["entities"]), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["text"] == "we met in Fremont today"
    assert [e["entity"] for e in result["entities"]] == ["Fremont"]
    assert result["words"][3]["word"] == "Fremont"


def test_raw_logits_flag(inputs: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    raw = np.load(inputs["logits"]) * 1.0 + 3.0  # not normalised any more
    np.save(inputs["logits"], raw)
    base = ["decode", "--logits", str(inputs["logits"]), "--labels", str(inputs["labels"])]
    assert main(base) == 0  # converted with log_softmax, as pyctcdecode does
    assert capsys.readouterr().out == "we met in fremond today\n"
    assert main(base + ["--log-softmax"]) == 0
    assert capsys.readouterr().out == "we met in fremond today\n"


def test_errors_are_one_line(inputs: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    args = ["decode", "--logits", str(inputs["logits"]), "--labels", str(inputs["labels"]),
            "--entities", "missing.txt"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("ctc-biasing decode: error: entity file not found: missing.txt")
    inputs["entities"].write_text("R2-D2\n", encoding="utf-8")
    args[-1] = str(inputs["entities"])
    assert main(args) == 2
    assert "'R2-D2' ('2')" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="R2-D2"):
        assert main(args + ["--skip-unrepresentable"]) == 0


def test_console_script(inputs: dict[str, Path]) -> None:
    exe = shutil.which("ctc-biasing")
    if exe is None:
        pytest.skip("ctc-biasing is not installed as a console script (pip install -e .)")
    out = subprocess.run([exe, "decode", "--logits", str(inputs["logits"]), "--labels",
                          str(inputs["labels"]), "--entities", str(inputs["entities"])],
                         capture_output=True, text=True, check=True)
    assert out.stdout == "we met in Fremont today\n"
    assert out.stderr == ""
