"""The TTS test-set recipe (data/recipes/tts_testset) and the Earnings-21 dev selection
(data/benchmarks/earnings21_dev): text handling, audio post-processing, layout, selection."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "data" / "recipes" / "tts_testset" / "make_testset.py"
SELECT = ROOT / "data" / "benchmarks" / "earnings21_dev" / "select.py"
HEADER = "id\traw_text\tnormalized_text\tspeaker_id\tsplit\tgender\tis_gold_transcript\taccent"


def _load(path: Path, name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and worker processes look modules up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tts() -> ModuleType:
    return _load(RECIPE, "tts_make_testset")


@pytest.fixture(scope="module")
def sel() -> ModuleType:
    return _load(SELECT, "earnings21_dev_select")


# ------------------------------------------------------------------------ make_testset


def test_parse_sentences_skips_header_comments_and_blank_lines(tts: ModuleType) -> None:
    rows = tts.parse_sentences(["id\ttext\tentities", "# note", "", "u1\tHi  Brett\tBrett|X ",
                                "u2\tNo entities here"])
    assert [(r.utt_id, r.text, r.entities) for r in rows] == [
        ("u1", "Hi Brett", ("Brett", "X")), ("u2", "No entities here", ())]


@pytest.mark.parametrize("line, message", [
    ("u1", "expected id<TAB>text"), ("bad id\ttext", "'bad id'"), ("../x\ttext", "'../x'")])
def test_parse_sentences_names_the_bad_line(tts: ModuleType, line: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        tts.parse_sentences([line], "in.tsv")


def test_parse_sentences_rejects_repeated_ids(tts: ModuleType) -> None:
    with pytest.raises(ValueError, match="'u1' appears twice"):
        tts.parse_sentences(["u1\ta", "u1\tb"])


@pytest.mark.parametrize("text, expected", [
    ("Brett Ponton's e-commerce, U.S. and 'GE' at 3.5%!", "brett ponton's e commerce us and ge at 3.5"),
    ("Thank you, Maureen. Over to Dru Anderson?", "thank you maureen over to dru anderson"),
    ("Revenue of $1,200 in Q4 — up.", "revenue of 1200 in q4 up"),
    ("The Jones’ family’s store, Chavez'", "the jones' family's store chavez"),
])
def test_normalize_text(tts: ModuleType, text: str, expected: str) -> None:
    assert tts.normalize_text(text) == expected


@pytest.mark.parametrize("n, words", [
    (0, "zero"), (15, "fifteen"), (40, "forty"), (101, "one hundred one"),
    (2021, "two thousand twenty one"), (3_000_000, "three million")])
def test_number_words(tts: ModuleType, n: int, words: str) -> None:
    assert tts.number_words(n) == words


def test_tts_text_spells_digits_and_symbols(tts: ModuleType) -> None:
    assert tts.tts_text("In Q4 we sold 1,200 units & grew 3.5% to $7 on the 21st.") == (
        "In Q four we sold one thousand two hundred units and grew three point five percent "
        "to seven dollars on the twenty first.")
    assert tts.tts_text("No digits, Brett.") == "No digits, Brett."


def test_missing_entities_allows_possessive_and_case(tts: ModuleType) -> None:
    row = tts.SentenceRow("u", "Thanks to GE's team and brett ponton.", ("GE", "Brett Ponton",
                                                                        "Monro"))
    assert tts.missing_entities(row) == ["Monro"]


def test_assign_voices_is_seeded_round_robin(tts: ModuleType) -> None:
    voices = [tts.VOICES_BY_NAME[n] for n in ("flite-slt", "pico-en-us", "piper-joe")]
    ids = [f"u{i}" for i in range(7)]
    first = tts.assign_voices(ids, voices, seed=3)
    assert first == tts.assign_voices(ids, voices, seed=3)
    names = [first[i].name for i in ids]
    assert names[:3] == names[3:6] and sorted(names[:3]) == sorted(v.name for v in voices)


def test_choose_voices_names_unknown_voice(tts: ModuleType) -> None:
    with pytest.raises(ValueError, match="unknown voice.*nosuch"):
        tts.choose_voices(["nosuch"])


def test_voice_catalogue_is_diverse(tts: ModuleType) -> None:
    defaults = [v for v in tts.VOICES if v.default]
    assert len(defaults) >= 8 and len({v.engine for v in defaults}) >= 4
    assert all(v.gender in ("female", "male") for v in tts.VOICES)


def test_trim_silence_keeps_fixed_pads(tts: ModuleType) -> None:
    rate = 16000
    tone = 0.5 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate).astype(np.float32)
    wave = np.concatenate([np.zeros(rate), tone, np.zeros(rate // 2)]).astype(np.float32)
    wave += 1e-5 * np.random.default_rng(0).standard_normal(wave.size).astype(np.float32)
    out = tts.trim_silence(wave, rate, pad_s=0.2)
    assert abs(out.size - (rate + 2 * 3200)) <= 160  # one second of tone, 0.2 s each side
    assert not out[:3200].any() and not out[-3200:].any()
    with pytest.raises(ValueError, match="silent"):
        tts.trim_silence(np.zeros(100, dtype=np.float32), rate)


def test_normalize_level_targets_rms_and_limits_peaks(tts: ModuleType) -> None:
    tone = 0.01 * np.sin(np.linspace(0, 400 * np.pi, 16000)).astype(np.float32)
    out = tts.normalize_level(tone, rms_db=-20.0, peak_db=-1.0)
    assert 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2))) == pytest.approx(-20, abs=0.05)
    click = np.zeros(16000, dtype=np.float32)
    click[100] = 0.1  # one loud sample: the peak limit wins over the RMS target
    assert np.max(np.abs(tts.normalize_level(click))) == pytest.approx(10 ** (-1 / 20), rel=1e-4)


def test_write_outputs_voxpopuli_layout(tts: ModuleType, tmp_path: Path) -> None:
    rows = tts.parse_sentences(["b1\tHi, Brett\tBrett|Monro", "a2\tA \"quoted\" GE's\tGE"])
    voices = tts.assign_voices(["b1", "a2"], [tts.VOICES_BY_NAME["pico-en-gb"]], seed=0)
    tts.write_outputs(tmp_path, rows, voices, "dev")
    lines = (tmp_path / "asr_dev.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == HEADER
    assert lines[1].split("\t") == ["b1", "Hi, Brett", "hi brett", "pico-en-gb", "dev", "female",
                                    "True", "en_gb"]
    assert lines[2].split("\t")[1:3] == ['A "quoted" GE\'s', "a quoted ge's"]
    assert (tmp_path / "entities_per_utt.tsv").read_text() == "b1\tBrett|Monro\na2\tGE\n"
    assert (tmp_path / "entities.txt").read_text() == "Brett\nGE\nMonro\n"
    assert tts.read_previous_speakers(tmp_path / "asr_dev.tsv") == {"b1": "pico-en-gb",
                                                                    "a2": "pico-en-gb"}


@pytest.mark.skipif(shutil.which("flite") is None,
                    reason="flite is not on PATH (apt-get install flite)")
def test_flite_sentence_end_to_end(tts: ModuleType, tmp_path: Path) -> None:
    import soundfile

    sentences = tmp_path / "s.tsv"
    sentences.write_text("id\ttext\tentities\nu1\tWe met Brett Ponton of Monro.\t"
                         "Brett Ponton|Monro\n", encoding="utf-8")
    out = tmp_path / "set"
    args = [str(sentences), str(out), "--split", "test", "--voices", "flite-slt", "--jobs", "1"]
    assert tts.main(args) == 0
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
    assert tts.main(args) == 0  # resumes: the existing file is kept
    assert (out / "u1.ogg").stat().st_mtime_ns == made


# ------------------------------------------------------------------ earnings21_dev/select


_NLP = """token|speaker|ts|endTs|punctuation|case|tags|wer_tags
Our|0||||UC|[]|[]
next|0||||LC|[]|[]
question|0||||LC|[]|[]
is|0||||LC|[]|[]
from|0||||LC|[]|[]
Brett|0||||UC|[]|['1']
Ponton's|0||||UC|[]|['1']
team|0||||LC|[]|[]
at|0||||LC|[]|[]
the|0||||LC|[]|['2']
Monro|0||||UC|[]|['2']
Inc|0|||.|UC|[]|['2']
We|0||||UC|[]|[]
sold|0||||LC|[]|[]
2020|0||||CA|[]|['3']
units|0||||LC|[]|[]
in|0||||LC|[]|[]
Rochester|0|||.|UC|[]|['4']
So|1||||UC|[]|[]
uh|1||||LC|[]|[]
we|1||||LC|[]|[]
met|1||||LC|[]|[]
the|1||||LC|[]|[]
Zaslow|1||||UC|[]|['5']
family|1||||LC|[]|[]
today|1|||.|LC|[]|[]
The|1||||UC|[]|[]
GAAP|1||||CA|[]|['6']
results|1||||LC|[]|[]
came|1||||LC|[]|[]
from|1||||LC|[]|[]
Monro|1|||.|UC|[]|['7']
"""
_TAGS = {"1": "PERSON", "2": "ORG", "3": "YEAR", "4": "GPE", "5": "PERSON", "6": "ORG",
         "7": "ORG"}


@pytest.fixture()
def call(sel: ModuleType, tmp_path: Path) -> tuple[list, dict[str, str]]:
    nlp = tmp_path / "1234.nlp"
    nlp.write_text(_NLP.replace("\n", "\r\n"), encoding="utf-8")
    tags = tmp_path / "1234.wer_tag.json"
    tags.write_text(json.dumps({k: {"entity_type": v} for k, v in _TAGS.items()}))
    return sel.read_nlp(nlp), sel.read_entity_classes(tags)


def test_split_and_reconstruct_sentences(sel: ModuleType, call: tuple[list, dict]) -> None:
    tokens, _ = call
    spans = sel.split_sentences(tokens)
    texts = [sel.sentence_text(tokens[s.start:s.stop]) for s in spans]
    assert texts == ["Our next question is from Brett Ponton's team at the Monro Inc.",
                     "We sold 2020 units in Rochester.", "So uh we met the Zaslow family today.",
                     "The GAAP results came from Monro."]


def test_call_sentences_keeps_clean_ones_with_entity_spelling(
    sel: ModuleType, call: tuple[list, dict]
) -> None:
    tokens, classes = call
    found = sel.call_sentences(tokens, classes, "1234", min_words=4, max_words=30)
    assert [(s.sentence_id, [(e.text, e.entity_class) for e in s.entities]) for s in found] == [
        ("e21_1234_0", [("Brett Ponton", "PERSON"), ("Monro Inc", "ORG")])]


def test_sentence_filters(sel: ModuleType) -> None:
    def tokens(*words: str) -> list:
        return [sel.Token(w, "0", "." if i == len(words) - 1 else "", "LC", ())
                for i, w in enumerate(words)]

    assert sel.is_clean_sentence(tokens("we", "met", "O'Neal", "at", "e-commerce", "day"), 6, 30)
    assert not sel.is_clean_sentence(tokens("we", "met", "him", "in", "Q4", "today"), 6, 30)
    assert not sel.is_clean_sentence(tokens("we", "met", "the", "DSOs", "there", "today"), 6, 30)
    assert not sel.is_clean_sentence(tokens("we", "were-", "met", "him", "there", "today"), 6, 30)
    assert not sel.is_clean_sentence(tokens("we", "met", "him"), 6, 30)


def test_rarity_and_entity_spelling(sel: ModuleType) -> None:
    rare = sel.corpus_rarity(["the", "the", "Monro", "team", "team"], max_count=1)
    assert sel.is_rare_entity("the Monro team", rare) and not sel.is_rare_entity("the team", rare)
    assert sel.entity_spelling(["the", "Monro", "Forward", "of"]) == "Monro Forward"
    assert sel.entity_spelling(["Chavez'"]) == "Chavez"


def test_select_sentences_spreads_calls_and_prefers_rare(sel: ModuleType) -> None:
    def sentence(call_id: str, index: int, *names: str):
        return sel.Sentence(call_id, index, "text", tuple(sel.Entity(n, "ORG") for n in names))

    pool = [sentence("a", i, f"Rare{i}") for i in range(5)] + [
        sentence("b", 0, "Common"), sentence("b", 1, "RareB"), sentence("c", 0, "RareC")]
    rare = {f"Rare{i}" for i in range(5)} | {"RareB", "RareC"}
    chosen = sel.select_sentences(pool, rare, target=4, seed=1)
    assert [s.call_id for s in chosen].count("a") == 2  # even cap: 2 per call reaches 4
    assert all(any(e.text in rare for e in s.entities) for s in chosen)
    assert chosen == sel.select_sentences(pool, rare, target=4, seed=1)
    assert sel.even_cap([10, 2, 10], 12) == 5


def test_pick_distractors(sel: ModuleType) -> None:
    kept = sel.pick_distractors(["3M", "ACME CORP", "MONRO", "ZASLOW", "Acme Corp"],
                                ["MONRO"], ["We met the Zaslow family."])
    assert kept == ["3M", "ACME CORP"]


def test_generated_dev_set_is_consistent(tts: ModuleType, sel: ModuleType) -> None:
    folder = sel.DEFAULT_OUT
    if not (folder / "sentences.tsv").is_file():
        pytest.skip(f"{folder}/sentences.tsv not generated (run select.py)")
    rows = tts.parse_sentences((folder / "sentences.tsv").read_text(encoding="utf-8")
                               .splitlines(), "sentences.tsv")
    assert [row.utt_id for row in rows] == sel.PINNED_IDS.read_text().split()
    assert all(not re.search(r"\d", row.text) and row.entities for row in rows)
    assert all(not tts.missing_entities(row) for row in rows)
    entities = (folder / "entities.txt").read_text(encoding="utf-8").splitlines()
    assert set(entities) == {e for row in rows for e in row.entities}
    said = " ".join(tts.normalize_text(row.text) for row in rows)
    for entry in (folder / "distractors.txt").read_text(encoding="utf-8").splitlines():
        assert f" {tts.normalize_text(entry)} " not in f" {said} "
