"""Make a synthetic-voice speech test set for an entity list, in the VoxPopuli ASR layout.

Reads sentences (``id<TAB>text<TAB>entity|entity...``, text with the entities' original
spelling), reads each with a voice taken in turn from a seeded shuffle of the voice list,
and writes into the output folder:

- ``{id}.ogg``: 16 kHz mono Ogg Vorbis, silence trimmed to 0.2 s at each end, level
  normalised to -20 dBFS RMS with peaks at most -1 dBFS;
- ``asr_{split}.tsv``: ``id raw_text normalized_text speaker_id split gender
  is_gold_transcript accent`` (tab separated, header, no quoting; speaker_id is the voice);
- ``entities_per_utt.tsv``: ``id<TAB>entity|entity...``;
- ``entities.txt``: every distinct entity, one per line.

Runs again resume: ids whose ``.ogg`` exists are not synthesised again and keep their voice.
``ctc-biasing make-testset`` is the command; ``docs/make-testset.md`` the guide.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..paths import write_text_atomic
from ..readers import read_text
from .text import SentenceRow, missing_entities, normalize_text, parse_sentences, tts_text
from .voices import (
    VOICES,
    VOICES_BY_NAME,
    SynthesisError,
    Voice,
    assign_voices,
    choose_voices,
    synthesize,
    voice_problem,
)

__all__ = ["TSV_HEADER", "MadeTestset", "finish_audio", "make_testset", "normalize_level",
           "trim_silence", "voice_table", "write_outputs"]

SAMPLE_RATE = 16000  # Hz of the written audio
PAD_S = 0.2  # seconds of silence kept (or added) before and after the speech
TRIM_THRESHOLD_DB = -40.0  # frames quieter than this, relative to the loudest, are silence
TARGET_RMS_DB = -20.0  # dBFS RMS the speech is scaled to ...
PEAK_DB = -1.0  # ... unless that would put a peak above this dBFS
PROBE_TEXT = "This is a test of the voice."  # what each voice says once before the run
TSV_HEADER = ("id", "raw_text", "normalized_text", "speaker_id", "split", "gender",
              "is_gold_transcript", "accent")


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
    write_text_atomic(out / f"asr_{split}.tsv", "\n".join(lines) + "\n")
    per_utt = [f"{row.utt_id}\t{'|'.join(row.entities)}" for row in rows]
    write_text_atomic(out / "entities_per_utt.tsv", "".join(line + "\n" for line in per_utt))
    entities = sorted({e for row in rows for e in row.entities}, key=lambda e: (e.casefold(), e))
    write_text_atomic(out / "entities.txt", "".join(e + "\n" for e in entities))


def read_previous_speakers(tsv: Path) -> dict[str, str]:
    """id -> speaker_id of an earlier run's ``asr_{split}.tsv`` (empty when absent)."""
    if not tsv.is_file():
        return {}
    lines = tsv.read_text(encoding="utf-8").splitlines()
    column = TSV_HEADER.index("speaker_id")
    return {fields[0]: fields[column] for line in lines[1:]
            if len(fields := line.split("\t")) == len(TSV_HEADER)}


Log = Callable[[str], None]  # receives one progress or warning line at a time


@dataclass(frozen=True)
class MadeTestset:
    """What :func:`make_testset` did."""

    written: int  # utterances in the output (made now or by an earlier run)
    made: int  # utterances synthesised by this run
    failures: dict[str, str]  # id -> why its synthesis failed (left out; run again to retry)
    voices: tuple[str, ...]  # the voices used


def make_testset(sentences: Path, out: Path, *, split: str = "test",
                 voices: Sequence[str] | None = None, seed: int = 0, jobs: int = 2,
                 digits: str = "spell", log: Log = lambda line: None) -> MadeTestset:
    """Synthesise ``sentences`` (a TSV) into ``out`` (see the module docs).

    Args:
        sentences: ``id<TAB>text<TAB>entity|entity...`` lines.
        out: the output folder (created).
        split: the split name in ``asr_{split}.tsv``.
        voices: voice names in order, ``["all"]`` for every installed voice, or None for the
            installed voices marked default.
        seed: seed of the voice order.
        jobs: parallel synthesis processes.
        digits: sentences with digits are read spelled out (``"spell"``) or left out
            (``"skip"``).
        log: receives progress lines and warnings.

    Raises:
        ValueError: bad arguments, a malformed sentences file (named with its line), an
            unknown voice or a named voice that is not installed.
        OSError: the sentences file cannot be read.
        SynthesisError: a voice named in ``voices`` does not work, or no voice does.
    """
    if jobs < 1 or not re.match(r"^\w+$", split) or digits not in ("spell", "skip"):
        raise ValueError(f"jobs must be >= 1, split a word and digits 'spell' or 'skip', got "
                         f"{jobs}, {split!r}, {digits!r}")
    rows = parse_sentences(read_text(sentences, "sentences file").splitlines(), str(sentences))
    strict = voices is not None and list(voices) != ["all"]
    working = _probe(choose_voices(voices), strict, log)
    if not working:
        raise SynthesisError("no voice works; see the messages above")
    for row in rows:
        if missing := missing_entities(row):
            log(f"warning: {row.utt_id}: entities not in its text: {missing}")
    if digits == "skip":
        skipped = {row.utt_id for row in rows if re.search(r"\d", row.text)}
        if skipped:
            log(f"skipping {len(skipped)} sentences with digits: {sorted(skipped)[:5]}...")
        rows = [row for row in rows if row.utt_id not in skipped]
    out.mkdir(parents=True, exist_ok=True)
    assigned = assign_voices([row.utt_id for row in rows], working, seed)
    previous = read_previous_speakers(out / f"asr_{split}.tsv")
    for row in rows:  # audio made by an earlier run keeps the voice it was made with
        old = VOICES_BY_NAME.get(previous.get(row.utt_id, ""))
        if old is not None and (out / f"{row.utt_id}.ogg").is_file():
            assigned[row.utt_id] = old
    todo = [(row.utt_id, assigned[row.utt_id], tts_text(row.text)) for row in rows
            if not (out / f"{row.utt_id}.ogg").is_file()]
    log(f"{len(rows)} sentences, {len(rows) - len(todo)} already made, {len(working)} voices: "
        f"{', '.join(v.name for v in working)}")
    failures = _synthesise_all(todo, out, jobs, log) if todo else {}
    made = [row for row in rows if row.utt_id not in failures]
    write_outputs(out, made, assigned, split)
    return MadeTestset(written=len(made), made=len(todo) - len(failures), failures=failures,
                       voices=tuple(v.name for v in working))


def voice_table() -> str:
    """Every known voice, whether it is installed here (and what is missing), its license."""
    header = (f"{'voice':18} {'engine':10} {'gender':7} {'accent':7} {'default':8} "
              f"{'status':44} license")
    lines = [header]
    for voice in VOICES:
        problem = voice_problem(voice)
        status = "installed" if problem is None else f"missing: {problem}"
        lines.append(f"{voice.name:18} {voice.engine:10} {voice.gender:7} {voice.accent:7} "
                     f"{'yes' if voice.default else 'no':8} {status[:44]:44} {voice.license}")
    return "\n".join(lines)


def _probe(voices: Sequence[Voice], strict: bool, log: Log) -> list[Voice]:
    """Voices that read PROBE_TEXT; failures raise when ``strict``, else are dropped."""
    working = []
    for voice in voices:
        try:
            finish_audio(*synthesize(voice, PROBE_TEXT))
        except (SynthesisError, ValueError) as err:
            if strict:
                raise SynthesisError(f"voice {voice.name} does not work: {err}") from err
            log(f"skipping voice {voice.name}: {err}")
            continue
        working.append(voice)
    return working


def _synthesise_all(jobs: Sequence[tuple[str, Voice, str]], out: Path, workers: int,
                    log: Log) -> dict[str, str]:
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
            log(f"{utt_id}: {err}")
        if done % 10 == 0 or done == len(jobs):
            log(f"{done}/{len(jobs)} done, {audio_s:.0f} s of audio in "
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
