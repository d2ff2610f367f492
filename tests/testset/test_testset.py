"""The test-set maker (biasing.testset, ``ctc-biasing make-testset``): text handling, voices,
audio post-processing, the VoxPopuli layout, and one real voice end to end."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from biasing.cli import main
from biasing.testset import VOICES, make_testset
from biasing.testset.make import (
    normalize_level,
    read_previous_speakers,
    trim_silence,
    write_outputs,
)
from biasing.testset.text import (
    SentenceRow,
    missing_entities,
    normalize_text,
    number_words,
    parse_sentences,
    tts_text,
)
from biasing.testset.voices import VOICES_BY_NAME, assign_voices, choose_voices

HEADER = "id\traw_text\tnormalized_text\tspeaker_id\tsplit\tgender\tis_gold_transcript\taccent"


def test_parse_sentences_skips_header_comments_and_blank_lines() -> None:
    rows = parse_sentences(["id\ttext\tentities", "# note", "", "u1\tHi  Brett\tBrett|X ",
                                "u2\tNo entities here"])
    assert [(r.utt_id, r.text, r.entities) for r in rows] == [
        ("u1", "Hi Brett", ("Brett", "X")), ("u2", "No entities here", ())]


@pytest.mark.parametrize("line, message", [
    ("u1", "expected id<TAB>text"), ("bad id\ttext", "'bad id'"), ("../x\ttext", "'../x'")])
def test_parse_sentences_names_the_bad_line(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_sentences([line], "in.tsv")


def test_parse_sentences_rejects_repeated_ids() -> None:
    with pytest.raises(ValueError, match="'u1' appears twice"):
        parse_sentences(["u1\ta", "u1\tb"])


@pytest.mark.parametrize("text, expected", [
    ("Brett Ponton's e-commerce, U.S. and 'GE' at 3.5%!", "brett ponton's e commerce us and ge at 3.5"),
    ("Thank you, Maureen. Over to Dru Anderson?", "thank you maureen over to dru anderson"),
    ("Revenue of $1,200 in Q4 — up.", "revenue of 1200 in q4 up"),
    ("The Jones’ family’s store, Chavez'", "the jones' family's store chavez"),
])
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


@pytest.mark.parametrize("n, words", [
    (0, "zero"), (15, "fifteen"), (40, "forty"), (101, "one hundred one"),
    (2021, "two thousand twenty one"), (3_000_000, "three million")])
def test_number_words(n: int, words: str) -> None:
    assert number_words(n) == words


def test_tts_text_spells_digits_and_symbols() -> None:
    assert tts_text("In Q4 we sold 1,200 units & grew 3.5% to $7 on the 21st.") == (
        "In Q four we sold one thousand two hundred units and grew three point five percent "
        "to seven dollars on the twenty first.")
    assert tts_text("No digits, Brett.") == "No digits, Brett."


def test_missing_entities_allows_possessive_and_case() -> None:
    row = SentenceRow("u", "Thanks to GE's team and brett ponton.", ("GE", "Brett Ponton",
                                                                        "Monro"))
    assert missing_entities(row) == ["Monro"]


def test_assign_voices_is_seeded_round_robin() -> None:
    voices = [VOICES_BY_NAME[n] for n in ("flite-slt", "pico-en-us", "piper-joe")]
    ids = [f"u{i}" for i in range(7)]
    first = assign_voices(ids, voices, seed=3)
    assert first == assign_voices(ids, voices, seed=3)
    names = [first[i].name for i in ids]
    assert names[:3] == names[3:6] and sorted(names[:3]) == sorted(v.name for v in voices)


def test_choose_voices_names_unknown_voice() -> None:
    with pytest.raises(ValueError, match="unknown voice.*nosuch"):
        choose_voices(["nosuch"])


def test_voice_catalogue_is_diverse() -> None:
    defaults = [v for v in VOICES if v.default]
    assert len(defaults) >= 8 and len({v.engine for v in defaults}) >= 4
    assert all(v.gender in ("female", "male") for v in VOICES)


def test_trim_silence_keeps_fixed_pads() -> None:
    rate = 16000
    tone = 0.5 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate).astype(np.float32)
    wave = np.concatenate([np.zeros(rate), tone, np.zeros(rate // 2)]).astype(np.float32)
    wave += 1e-5 * np.random.default_rng(0).standard_normal(wave.size).astype(np.float32)
    out = trim_silence(wave, rate, pad_s=0.2)
    assert abs(out.size - (rate + 2 * 3200)) <= 160  # one second of tone, 0.2 s each side
    assert not out[:3200].any() and not out[-3200:].any()
    with pytest.raises(ValueError, match="silent"):
        trim_silence(np.zeros(100, dtype=np.float32), rate)


def test_normalize_level_targets_rms_and_limits_peaks() -> None:
    tone = 0.01 * np.sin(np.linspace(0, 400 * np.pi, 16000)).astype(np.float32)
    out = normalize_level(tone, rms_db=-20.0, peak_db=-1.0)
    assert 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2))) == pytest.approx(-20, abs=0.05)
    click = np.zeros(16000, dtype=np.float32)
    click[100] = 0.1  # one loud sample: the peak limit wins over the RMS target
    assert np.max(np.abs(normalize_level(click))) == pytest.approx(10 ** (-1 / 20), rel=1e-4)


def test_write_outputs_voxpopuli_layout(tmp_path: Path) -> None:
    rows = parse_sentences(["b1\tHi, Brett\tBrett|Monro", "a2\tA \"quoted\" GE's\tGE"])
    voices = assign_voices(["b1", "a2"], [VOICES_BY_NAME["pico-en-gb"]], seed=0)
    write_outputs(tmp_path, rows, voices, "dev")
    lines = (tmp_path / "asr_dev.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == HEADER
    assert lines[1].split("\t") == ["b1", "Hi, Brett", "hi brett", "pico-en-gb", "dev", "female",
                                    "True", "en_gb"]
    assert lines[2].split("\t")[1:3] == ['A "quoted" GE\'s', "a quoted ge's"]
    assert (tmp_path / "entities_per_utt.tsv").read_text() == "b1\tBrett|Monro\na2\tGE\n"
    assert (tmp_path / "entities.txt").read_text() == "Brett\nGE\nMonro\n"
    assert read_previous_speakers(tmp_path / "asr_dev.tsv") == {"b1": "pico-en-gb",
                                                                    "a2": "pico-en-gb"}


@pytest.mark.skipif(shutil.which("flite") is None,
                    reason="flite is not on PATH (apt-get install flite)")
def test_flite_sentence_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import soundfile

    sentences = tmp_path / "s.tsv"
    sentences.write_text("id\ttext\tentities\nu1\tWe met Brett Ponton of Monro.\t"
                         "Brett Ponton|Monro\n", encoding="utf-8")
    out = tmp_path / "set"
    args = ["make-testset", str(sentences), "--output", str(out), "--split", "test",
            "--voices", "flite-slt", "--jobs", "1"]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith("wrote 1 utterances to")
    lines = (out / "asr_test.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == HEADER
    assert lines[1].split("\t") == ["u1", "We met Brett Ponton of Monro.",
                                    "we met brett ponton of monro", "flite-slt", "test",
                                    "female", "True", "en_us"]
    info = soundfile.info(str(out / "u1.ogg"))
    assert (info.samplerate, info.channels, info.format, info.subtype) == (
        16000, 1, "OGG", "VORBIS")
    wave, _ = soundfile.read(str(out / "u1.ogg"), dtype="float32")
    assert 1.0 < wave.size / 16000 < 6.0
    assert 20 * np.log10(np.max(np.abs(wave))) < -0.5  # normalised, not clipped
    assert (out / "entities.txt").read_text() == "Brett Ponton\nMonro\n"
    made = (out / "u1.ogg").stat().st_mtime_ns
    again = make_testset(sentences, out, voices=["flite-slt"], jobs=1)  # resumes
    assert (again.written, again.made, again.failures) == (1, 0, {})
    assert (out / "u1.ogg").stat().st_mtime_ns == made


def test_cli_lists_voices_and_names_bad_input(tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    assert main(["make-testset", "--list-voices"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["voice", "engine"] and len(table) == len(VOICES) + 1
    assert main(["make-testset"]) == 2
    assert "give SENTENCES.tsv and --output DIR" in capsys.readouterr().err
    bad = tmp_path / "bad.tsv"
    bad.write_text("u1\tfine\nbad id\ttext\n", encoding="utf-8")
    assert main(["make-testset", str(bad), "--output", str(tmp_path / "o"),
                 "--voices", "nosuch"]) == 2
    assert "bad.tsv line 2: id 'bad id'" in capsys.readouterr().err
