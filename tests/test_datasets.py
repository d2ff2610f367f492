"""Dataset readers on tiny folders written per test, plus the shared speechocean762 set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import shared_path

from biasing.datasets import Utterance, load_dataset, read_entities_per_utt

HEADER = "id\traw_text\tnormalized_text\tspeaker_id\tsplit\tgender\tis_gold_transcript\taccent"


def _wav(path: Path, fmt: str = "WAV") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(160, dtype=np.float32), 16000, format=fmt)
    return path


def _voxpopuli(root: Path, rows: list[str], split: str = "test") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / f"asr_{split}.tsv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return root


def _row(utt: str, raw: str, speaker: str = "42") -> str:
    return "\t".join([utt, raw, raw.lower().strip(".,"), speaker, "test", "female", "True",
                      "None"])


# --- VoxPopuli ---------------------------------------------------------------------------

def test_voxpopuli_layout_and_audio_search_order(tmp_path: Path) -> None:
    root = _voxpopuli(tmp_path, [_row("20180110-a", "Hello, Mr. Juncker."),
                                 _row("20190101-b", "Second one", speaker=""),
                                 "",  # blank lines are skipped
                                 _row("20200101-c", "Third")])
    in_year = _wav(root / "2018" / "20180110-a.ogg", "OGG")
    _wav(root / "20180110-a.wav")  # the year folder is tried first
    flac = _wav(root / "20190101-b.flac", "FLAC")
    ogg = _wav(root / "20200101-c.ogg", "OGG")
    utterances = load_dataset(root)
    assert utterances == [
        Utterance("20180110-a", in_year, "Hello, Mr. Juncker.", "hello, mr. juncker", "42"),
        Utterance("20190101-b", flac, "Second one", "second one", None),
        Utterance("20200101-c", ogg, "Third", "third", "42"),
    ]


def test_voxpopuli_other_split_and_quotes_kept(tmp_path: Path) -> None:
    root = _voxpopuli(tmp_path, [_row("20180110-a", '"Quoted" text')], split="dev")
    _wav(root / "20180110-a.wav")
    (utterance,) = load_dataset(root, split="dev")
    assert utterance.text == '"Quoted" text'  # no csv quoting: quotes are text


def test_voxpopuli_missing_audio(tmp_path: Path) -> None:
    root = _voxpopuli(tmp_path, [_row("20180110-a", "one"), _row("20180110-b", "two")])
    _wav(root / "20180110-b.wav")
    with pytest.raises(FileNotFoundError, match=r"'20180110-a'.*2018/20180110-a\.ogg"):
        load_dataset(root)
    with pytest.warns(UserWarning, match="skipped 1 utterances.*'20180110-a'"):
        utterances = load_dataset(root, on_missing_audio="skip")
    assert [u.id for u in utterances] == ["20180110-b"]
    with pytest.raises(ValueError, match="on_missing_audio='ignore'"):
        load_dataset(root, on_missing_audio="ignore")  # type: ignore[arg-type]


def test_voxpopuli_malformed(tmp_path: Path) -> None:
    short = _voxpopuli(tmp_path / "short", [_row("20180110-a", "one"), "20180110-b\tonly two"])
    with pytest.raises(ValueError, match=r"asr_test\.tsv:3: 2 tab-separated fields.* 8"):
        load_dataset(short)
    twice = _voxpopuli(tmp_path / "twice", [_row("20180110-a", "one"), _row("20180110-a", "x")])
    with pytest.raises(ValueError, match=r"asr_test\.tsv:3: utterance '20180110-a' listed twice"):
        load_dataset(twice)
    header = tmp_path / "header"
    header.mkdir()
    (header / "asr_test.tsv").write_text("id\ttext\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"asr_test\.tsv:1: header .* lacks the columns "
                                         r"\['raw_text', 'normalized_text'\]"):
        load_dataset(header)


# --- Kaldi -------------------------------------------------------------------------------

def _kaldi(folder: Path, text: str, wav_scp: str, utt2spk: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "text").write_text(text, encoding="utf-8")
    (folder / "wav.scp").write_text(wav_scp, encoding="utf-8")
    if utt2spk is not None:
        (folder / "utt2spk").write_text(utt2spk, encoding="utf-8")
    return folder


def test_kaldi_paths_relative_to_the_dataset_root(tmp_path: Path) -> None:
    # as in speechocean762: test/wav.scp lists audio/... relative to the dataset root
    a = _wav(tmp_path / "audio" / "S1" / "u1.wav")
    b = _wav(tmp_path / "test" / "u2.flac", "FLAC")  # relative to the split folder
    c = _wav(tmp_path / "elsewhere" / "u3.wav")  # absolute
    _kaldi(tmp_path / "test", "u1 HELLO, World\nu2\tsecond  line\n\nu3\n",
           f"u1 audio/S1/u1.wav\nu2 u2.flac\nu3 {c}\nunused x.wav\n", "u1 S1\nu2 S2\n")
    assert load_dataset(tmp_path) == [
        Utterance("u1", a, "HELLO, World", "hello world", "S1"),
        Utterance("u2", tmp_path / "test" / "u2.flac", "second  line", "second line", "S2"),
        Utterance("u3", c, "", "", None),
    ]
    assert b.is_file()
    # the split folder itself holds text + wav.scp: the same utterances
    assert load_dataset(tmp_path / "test") == load_dataset(tmp_path)


def test_kaldi_errors(tmp_path: Path) -> None:
    pipe = _kaldi(tmp_path / "pipe", "u1 hi\n", "u1 sox x.wav -t wav - |\n")
    with pytest.raises(ValueError, match=r"wav\.scp:1: .* is a command"):
        load_dataset(pipe)
    absent = _kaldi(tmp_path / "absent", "u1 hi\nu2 there\n", "u1 a.wav\n")
    _wav(absent / "a.wav")
    with pytest.raises(ValueError, match=r"wav\.scp: no entry for utterance 'u2'"):
        load_dataset(absent)
    bad = _kaldi(tmp_path / "bad", "u1 hi\n", "u1 a.wav\nu2\n")
    with pytest.raises(ValueError, match=r"wav\.scp:2: expected '<id> <value>'"):
        load_dataset(bad)
    twice = _kaldi(tmp_path / "twice", "u1 hi\nu1 again\n", "u1 a.wav\n")
    with pytest.raises(ValueError, match=r"text:2: 'u1' listed twice"):
        load_dataset(twice)
    missing = _kaldi(tmp_path / "missing", "u1 hi\n", "u1 gone.wav\n")
    with pytest.raises(FileNotFoundError, match=r"'u1'; tried .*missing/gone\.wav"):
        load_dataset(missing)
    with pytest.warns(UserWarning, match="skipped 1 utterances"):
        assert load_dataset(missing, on_missing_audio="skip") == []
    segments = _kaldi(tmp_path / "segments", "u1 hi\n", "u1 a.wav\n")
    (segments / "segments").write_text("u1 rec 0.0 1.0\n", encoding="utf-8")
    with pytest.raises(ValueError, match="segmented recordings are not supported"):
        load_dataset(segments)


def test_layout_detection_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no 'test' split found; expected asr_test\.tsv "
                                         r"\(VoxPopuli\), test/text \+ test/wav\.scp"):
        load_dataset(tmp_path)
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "text").write_text("u1 hi\n", encoding="utf-8")  # no wav.scp
    with pytest.raises(ValueError, match="no 'test' split"):
        load_dataset(tmp_path)
    with pytest.raises(ValueError, match=r"no 'dev' split.*asr_dev\.tsv"):
        load_dataset(tmp_path, split="dev")
    with pytest.raises(ValueError, match="is not a folder"):
        load_dataset(tmp_path / "nowhere")


# --- entity lists ------------------------------------------------------------------------

def test_read_entities_per_utt(tmp_path: Path) -> None:
    path = tmp_path / "entities.tsv"
    path.write_text("# id<TAB>entities\n\nu1\tJuncker | European Central Bank\nu2\t\n"
                    "u3\tAT&T\n", encoding="utf-8")
    assert read_entities_per_utt(path) == {
        "u1": ["Juncker", "European Central Bank"], "u2": [], "u3": ["AT&T"]}


@pytest.mark.parametrize("line, problem", [
    ("u1 Juncker", "expected 'id<TAB>entity"),
    ("\tJuncker", "expected 'id<TAB>entity"),
    ("u1\tJuncker||Bank", "empty entity"),
    ("u0\tagain", "utterance 'u0' listed twice"),
])
def test_read_entities_per_utt_bad_lines(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "entities.tsv"
    path.write_text(f"u0\tfirst\n# comment\n{line}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"entities\.tsv:3: {problem}"):
        read_entities_per_utt(path)


# --- the shared data set -----------------------------------------------------------------

def test_speechocean762_test_split() -> None:
    root = shared_path("data", "speechocean762")
    utterances = load_dataset(root, split="test")
    assert len(utterances) == 2500
    assert len({u.id for u in utterances}) == 2500
    assert all(u.audio.is_file() and u.audio.is_relative_to(root / "audio") for u in utterances)
    assert all(u.text and u.normalized_text and u.speaker for u in utterances)
    first = utterances[0]
    assert first.normalized_text == first.text.lower()
