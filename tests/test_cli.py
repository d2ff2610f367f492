"""The ctc-biasing command line, run in-process and as the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import CHAR_LABELS, char_logprobs

from biasing.cli import main
from biasing.evaluation.techniques import TECHNIQUES


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


def raw_logits(spoken: list[dict[str, float]]) -> np.ndarray:
    """Raw logits over CHAR_LABELS whose rows each sum to exactly 1: the given labels'
    values, the other labels sharing what is left (a negative value)."""
    index = {c: i for i, c in enumerate(CHAR_LABELS)}
    out = np.empty((len(spoken), len(CHAR_LABELS)))
    for row, values in zip(out, spoken):
        row[:] = (1 - sum(values.values())) / (len(CHAR_LABELS) - len(values))
        for label, value in values.items():
            row[index[label]] = value
    return out


def test_raw_logits_flag(inputs: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    """Raw logits whose rows happen to sum to 1 are taken for probabilities unless
    --log-softmax says otherwise. Two frames with blank 6 and "t" 4 decide: as
    probabilities (clipped to 1) both are certain and the "t" path wins; through
    log_softmax the "t" is 0.11 against 0.85 for the blank and the "t" is dropped."""
    def spelt(text: str) -> list[dict[str, float]]:
        return [frame for c in text for frame in ({c: 6.0}, {c: 6.0}, {"": 6.0})]

    raw = raw_logits([{"": 6.0}, *spelt("we met in fremon"), {"": 6.0, "t": 4.0},
                      {"": 6.0, "t": 4.0}, *spelt(" today"), {"": 6.0}])
    assert np.allclose(raw.sum(axis=1), 1.0) and (raw < 0).any()
    np.save(inputs["logits"], raw)
    base = ["decode", "--logits", str(inputs["logits"]), "--labels", str(inputs["labels"])]
    assert main(base) == 0
    assert capsys.readouterr().out == "we met in fremont today\n"
    assert main(base + ["--log-softmax"]) == 0
    assert capsys.readouterr().out == "we met in fremon today\n"

    probabilities = np.exp(char_logprobs("we met in fremont today"))
    np.save(inputs["logits"], probabilities)
    assert main(base) == 0
    assert capsys.readouterr().out == "we met in fremont today\n"
    assert main(base + ["--log-softmax"]) == 2  # log_softmax of probabilities: refused
    assert "holds probabilities (every row sums to 1), not raw logits: drop --log-softmax" \
        in capsys.readouterr().err


def test_eval_help_lists_every_technique(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--help"])
    assert exit_.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())  # as one line, whatever the wrapping
    for name, technique in TECHNIQUES.items():
        assert f" {name} {technique.description}" in shown, name


def test_building_the_parser_imports_no_torch() -> None:
    """`ctc-biasing --help` (any subcommand's parser) stays fast: no torch."""
    code = ("import sys; from biasing.cli import _parser; _parser().format_help(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'matplotlib', 'ray')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout == "[]\n"


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


def test_labels_without_the_models_blank_are_refused(inputs: dict[str, Path],
                                                     capsys: pytest.CaptureFixture) -> None:
    # the model has its blank in column 0; the labels file lists the other labels only
    logits = np.load(inputs["logits"])
    blank = CHAR_LABELS.index("")
    np.save(inputs["logits"], np.concatenate([logits[:, [blank]],
                                              np.delete(logits, blank, axis=1)], axis=1))
    inputs["labels"].write_text("\n".join(x for x in CHAR_LABELS if x) + "\n", encoding="utf-8")
    args = ["decode", "--logits", str(inputs["logits"]), "--labels", str(inputs["labels"])]
    assert main(args) == 2
    assert "has no blank (an empty line)" in capsys.readouterr().err
    # with the blank where the model has it, the same logits decode
    inputs["labels"].write_text("\n" + "\n".join(x for x in CHAR_LABELS if x) + "\n",
                                encoding="utf-8")
    assert main(args) == 0
    assert capsys.readouterr().out == "we met in fremond today\n"


def test_console_script(inputs: dict[str, Path]) -> None:
    exe = shutil.which("ctc-biasing")
    if exe is None:
        pytest.skip("ctc-biasing is not installed as a console script (pip install -e .)")
    out = subprocess.run([exe, "decode", "--logits", str(inputs["logits"]), "--labels",
                          str(inputs["labels"]), "--entities", str(inputs["entities"])],
                         capture_output=True, text=True, check=True)
    assert out.stdout == "we met in Fremont today\n"
    assert out.stderr == ""
