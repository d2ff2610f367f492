"""Reading audio into the float32 mono waveforms models take.

Files are read with soundfile (wav, flac, ogg/vorbis, and whatever else the installed
libsndfile supports), mixed down to mono and resampled with soxr's high-quality filter.

A compressed file can declare far more audio than its size suggests (a 335 KB FLAC of
silence holds 655,350 Hz x 8 channels x 60 s, 1.26 GB as float32), so the header is checked
against :data:`MIN_SAMPLE_RATE`, :data:`MAX_SAMPLE_RATE`, :data:`MAX_CHANNELS` and
:data:`MAX_DECODED_SAMPLES` before any sample is decoded, and samples are decoded in blocks
mixed to mono as they come: memory holds one block and the mono waveform, never the whole
multi-channel file.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import re
from dataclasses import dataclass
from typing import IO

import numpy as np

from .readers import check_file

__all__ = ["DEFAULT_MIN_DURATION_S", "MAX_CHANNELS", "MAX_DECODED_SAMPLES", "MAX_SAMPLE_RATE",
           "MIN_SAMPLE_RATE", "AudioInfo", "audio_info", "check_audio_size", "decode_audio",
           "load_audio", "to_model_rate"]

# Shortest audio accepted by default, in seconds: below this no CTC model emits a word.
DEFAULT_MIN_DURATION_S = 0.1

# Limits on what a file's header declares, checked before decoding. Each is beyond any
# recording of speech, so only crafted files meet them.
# Below 4 kHz (a 2 kHz band) speech loses most consonants; telephony, the poorest speech
# source, is 8 kHz. The floor also bounds upsampling to the model rate (x4 for 16 kHz).
MIN_SAMPLE_RATE = 4_000
# The fastest audio converters (DXD studio gear) run at 352.8 and 384 kHz; ultrasonic
# recorders go higher but hold no speech.
MAX_SAMPLE_RATE = 384_000
# The largest microphone arrays recorded as one file (64-capsule spherical arrays, 64-channel
# MADI captures); Vorbis and Opus allow 255 channels, which only crafted files use.
MAX_CHANNELS = 64
# Samples decoded (channels x frames = rate x channels x seconds): a 4 GiB 16-bit WAV, the
# largest audio file read (readers.LIMITS), holds 2**31, so a compressed file expands to no
# more than the largest uncompressed one: 6.2 h of 48 kHz stereo, 37 h of 16 kHz mono, 87 s
# at 384 kHz x 64 channels. It bounds decoding time; memory is bounded by blocks (below).
MAX_DECODED_SAMPLES = 2**31

_BLOCK_SAMPLES = 1 << 18  # samples (all channels) decoded at a time: 1 MiB as float32
_UNKNOWN_FRAMES = 2**63 - 1  # libsndfile's frame count when a header does not give one


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int,
    min_duration_s: float = DEFAULT_MIN_DURATION_S,
) -> np.ndarray:
    """Read an audio file as a mono waveform at ``sample_rate``.

    Args:
        path: audio file (wav, flac, ogg, ...); integer and float encodings both work.
        sample_rate: rate of the returned waveform in Hz (the model's rate).
        min_duration_s: shortest accepted duration in seconds.

    Returns:
        wave: (samples,) float32 in [-1, 1]; integer files are scaled by 1 / 2**(bits-1)
        (int16 / 32768).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not readable audio (or not a regular file, or over 4 GiB),
            its header is outside the limits of :func:`check_audio_size` (checked before
            decoding), it is truncated (WAV, FLAC and Ogg are checked: the samples its
            header or stream promises are not all there), holds no samples, or is shorter
            than ``min_duration_s``; the message names the file.
    """
    file = check_file(path, "audio file")
    name = f"audio file {str(file)!r}"
    mono, info = _read_mono(file, name)
    with open(file, "rb") as stream:
        head = stream.read(_PEEK)
        stream.seek(max(0, file.stat().st_size - _PEEK))
        tail = stream.read()
    return _checked(mono, info.rate, sample_rate, min_duration_s, name,
                    _truncation(info.kind, len(mono), info.frames, head, tail,
                                file.stat().st_size))


def _read_mono(source: os.PathLike[str] | IO[bytes], name: str) -> tuple[np.ndarray, AudioInfo]:
    """The samples of ``source`` mixed to mono (the mean over channels) at the file's rate,
    with its header; the header is checked by :func:`check_audio_size` before any sample is
    decoded.

    Returns:
        mono: (frames read,) float32, at most ``info.frames`` long (shorter when truncated);
            bit for bit ``soundfile.read(source, dtype="float32", always_2d=True)`` averaged
            over axis 1, without ever holding that (frames, channels) array.
        info: the header.

    Raises:
        ValueError: unreadable (the libsndfile error, prefixed "cannot read ``name``") or
            outside the limits.
    """
    import soundfile

    try:
        with soundfile.SoundFile(source) as sound:
            info = AudioInfo(sound.format, int(sound.samplerate), int(sound.frames),
                             int(sound.channels))
            check_audio_size(info, name)
            mono = np.empty(info.frames, dtype=np.float32)
            step = max(1, _BLOCK_SAMPLES // info.channels)
            block = np.empty((step, info.channels), np.float32) if info.channels > 1 else None
            done = 0
            while done < info.frames:
                want = min(step, info.frames - done)
                if block is None:  # one channel is its own mean: read it in place
                    got = len(sound.read(want, out=mono[done:done + want]))
                else:
                    got = len(sound.read(want, out=block[:want]))
                    # mean() with out= computes what the whole file's mean(axis=1) does
                    block[:got].mean(axis=1, out=mono[done:done + got])
                if got == 0:  # the stream ended before its header said it would
                    break
                done += got
    except (RuntimeError, soundfile.LibsndfileError, TypeError) as err:
        raise ValueError(f"cannot read {name}: {err}") from None
    return mono[:done], info


def _checked(samples: np.ndarray, rate: int, sample_rate: int, min_duration_s: float,
             name: str, truncation: str) -> np.ndarray:
    """Decoded samples, checked (not empty, not truncated) and brought to the model's
    rate; every message names ``name``."""
    if samples.size == 0:
        raise ValueError(f"{name} holds no samples")
    if truncation:
        raise ValueError(f"{name} is truncated: {truncation}")
    try:
        return to_model_rate(samples, rate, sample_rate, min_duration_s=min_duration_s)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from err


_PEEK = 1 << 16  # bytes read at each end of a file for the truncation check


def _truncation(kind: str, frames_read: int, frames_declared: int, head: bytes, tail: bytes,
                size: int) -> str:
    """Why audio looks cut short ("" when it does not): a WAV whose data chunk is larger than
    what follows it, a FLAC with fewer samples than its STREAMINFO declares, an Ogg stream
    whose last page is not marked end-of-stream. ``head`` and ``tail`` are the first and
    last bytes (up to 64 KiB) of the ``size`` bytes."""
    if kind == "FLAC" and 0 < frames_declared and frames_read < frames_declared:
        return f"{frames_read} of the {frames_declared} samples it declares"
    if kind == "WAV":
        at = head.find(b"data", 12)
        if at >= 0 and at + 8 <= len(head):
            declared = int.from_bytes(head[at + 4:at + 8], "little")
            available = size - (at + 8)
            if 0 < declared < 0xFFFFFFFF and available < declared:
                return f"its data chunk declares {declared:,} bytes, {available:,} follow"
    elif kind == "OGG":
        page = tail.rfind(b"OggS")
        if page >= 0 and page + 5 < len(tail) and not tail[page + 5] & 0x04:
            return "its Ogg stream ends without an end-of-stream page"
    return ""


@dataclass(frozen=True)
class AudioInfo:
    """What the header of audio says, read before any sample is decoded."""

    kind: str  # container, as libsndfile names it: WAV, FLAC, OGG, MP3, ...
    rate: int  # samples per second (per channel)
    frames: int  # samples per channel, as declared (2**63 - 1 when the header does not say)
    channels: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate if self.rate else 0.0


def check_audio_size(info: AudioInfo, name: str = "audio") -> None:
    """Refuse audio whose header declares more than any recording of speech holds, before a
    sample of it is decoded (a few hundred KB of compressed silence can declare gigabytes).

    Raises:
        ValueError: the rate is below :data:`MIN_SAMPLE_RATE` or above
            :data:`MAX_SAMPLE_RATE`, there are more than :data:`MAX_CHANNELS` channels, the
            header gives no length, or channels x frames exceeds :data:`MAX_DECODED_SAMPLES`;
            the message names ``name``, the header's numbers and the limit.
    """
    if info.frames >= _UNKNOWN_FRAMES:
        raise ValueError(f"{name} ({info.rate:,} Hz x {info.channels} channels) does not say "
                         f"in its header how many samples it holds; re-encode it")
    shape = (f"{name} is {info.rate:,} Hz x {info.channels} channels x {info.frames:,} "
             f"frames ({info.duration_s:.1f} s)")
    if info.rate > MAX_SAMPLE_RATE:
        raise ValueError(f"{shape}: its sample rate is above the {MAX_SAMPLE_RATE:,} Hz "
                         f"this reader accepts")
    if info.rate < MIN_SAMPLE_RATE:
        raise ValueError(f"{shape}: its sample rate is below the {MIN_SAMPLE_RATE:,} Hz "
                         f"needed to carry speech")
    if info.channels < 1:
        raise ValueError(f"{shape}: it has no channels")
    if info.channels > MAX_CHANNELS:
        raise ValueError(f"{shape}: more than the {MAX_CHANNELS} channels this reader accepts")
    if info.channels * info.frames > MAX_DECODED_SAMPLES:
        raise ValueError(f"{shape}: it would decode to {info.channels * info.frames:,} "
                         f"samples, more than the {MAX_DECODED_SAMPLES:,} this reader accepts")


def audio_info(data: bytes, name: str = "audio") -> AudioInfo:
    """The header of in-memory audio (any format libsndfile reads).

    Raises:
        ValueError: ``data`` is not audio libsndfile can read; the message names ``name``.
    """
    import soundfile

    try:
        info = soundfile.info(io.BytesIO(data))
    except (RuntimeError, soundfile.LibsndfileError, TypeError) as err:
        why = re.sub(r"^Error opening <[^>]*>: ", "", str(err))
        raise ValueError(f"cannot read {name}: not audio in a format libsndfile reads "
                         f"(wav, flac, ogg, mp3, ...): {why}") from None
    return AudioInfo(info.format, int(info.samplerate), int(info.frames), int(info.channels))


def decode_audio(data: bytes, sample_rate: int, name: str = "audio",
                 min_duration_s: float = DEFAULT_MIN_DURATION_S) -> np.ndarray:
    """As :func:`load_audio`, for audio held in memory (an upload, a blob); the same checks
    (unreadable, header outside the limits of :func:`check_audio_size`, truncated, empty, too
    short), with ``name`` in the messages."""
    audio_info(data, name)  # bytes that are not audio get its message, as they always have
    mono, info = _read_mono(io.BytesIO(data), name)
    return _checked(mono, info.rate, sample_rate, min_duration_s, name,
                    _truncation(info.kind, len(mono), info.frames, data[:_PEEK],
                                data[-_PEEK:], len(data)))


def to_model_rate(
    wave: np.ndarray,
    rate: int,
    sample_rate: int,
    min_duration_s: float = DEFAULT_MIN_DURATION_S,
) -> np.ndarray:
    """Turn an in-memory waveform into a float32 mono waveform at ``sample_rate``.

    Args:
        wave: (samples,) mono or (samples, channels) audio; float in [-1, 1], or integer
            PCM scaled by 1 / 2**(bits-1).
        rate: sample rate of ``wave`` in Hz.
        sample_rate: target rate in Hz; soxr "HQ" resampling when it differs.
        min_duration_s: shortest accepted duration in seconds.

    Returns:
        wave: (samples * sample_rate / rate,) float32, clipped to [-1, 1] (resampling can
        overshoot slightly on full-scale input).
    """
    for name, value in (("rate", rate), ("sample_rate", sample_rate)):
        if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                or not math.isfinite(value) or value <= 0 or value != int(value)):
            raise ValueError(f"{name} must be a positive whole number of Hz, got {value!r}")
    rate, sample_rate = int(rate), int(sample_rate)
    if min_duration_s < 0:
        raise ValueError(f"min_duration_s must be >= 0, got {min_duration_s}")
    array = np.asarray(wave)
    if array.ndim not in (1, 2):
        raise ValueError(f"wave must be (samples,) or (samples, channels), got shape {array.shape}")
    if np.issubdtype(array.dtype, np.integer):
        scale = float(2 ** (np.iinfo(array.dtype).bits - 1))
        offset = scale if np.issubdtype(array.dtype, np.unsignedinteger) else 0.0
        array = (array.astype(np.float64) - offset) / scale
    elif not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"wave must hold integer or float samples, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array.mean(axis=1)
    # no copy: nothing below writes into ``array``, so a caller's float32 wave is safe
    array = array.astype(np.float32, copy=False)
    if array.size == 0:
        raise ValueError("audio holds no samples")
    if not np.isfinite(array).all():
        raise ValueError("audio contains NaN or infinite samples")
    duration = len(array) / rate
    if duration < min_duration_s:
        raise ValueError(
            f"audio is {duration:.3f} s long, shorter than min_duration_s={min_duration_s} s"
        )
    if rate != sample_rate:
        import soxr

        array = soxr.resample(array, int(rate), int(sample_rate), quality="HQ")
    return np.clip(array, -1.0, 1.0).astype(np.float32, copy=False)
