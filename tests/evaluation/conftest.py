"""An evaluation set on disk: VoxPopuli layout, silent audio of the scripted model's length."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import spoken_logprobs

sf = pytest.importorskip("soundfile")

HEADER = "id\traw_text\tnormalized_text\tspeaker_id\tsplit\tgender\tis_gold_transcript\taccent"


def write_voxpopuli(folder: Path, n: int = 3) -> Path:
    """``n`` utterances "We met in Fremont today." with audio as long as the scripted model's
    output; each file's bytes differ (so each has its own cache entry)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [HEADER]
    samples = int(len(spoken_logprobs()) * 0.02 * 16000)
    for i in range(n):
        utt = f"2024_utt{i}"
        rows.append(f"{utt}\tWe met in Fremont today.\twe met in fremont today\tspk{i}\ttest"
                    "\tfemale\tTrue\tNone")
        wave = np.zeros(samples, np.float32)
        wave[0] = (i + 1) / 100
        sf.write(folder / f"{utt}.wav", wave, 16000)
    (folder / "asr_test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


@pytest.fixture()
def voxpopuli(tmp_path: Path) -> Path:
    return write_voxpopuli(tmp_path / "data")
