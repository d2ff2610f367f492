"""Reading audio into the float32 mono waveforms models take.

Files are read with soundfile (wav, flac, ogg/vorbis, and whatever else the installed
libsndfile supports), mixed down to mono and resampled with soxr's high-quality filter.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import re

import numpy as np

from .readers import check_file

__all__ = ["DEFAULT_MIN_DURATION_S", "AudioInfo", "audio_info", "decode_audio", "load_audio",
           "to_model_rate"]

# Shortest audio accepted by default, in seconds: below this no CTC model emits a word.
DEFAULT_MIN_DURATION_S = 0.1


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
            is truncated (WAV, FLAC and Ogg are checked: the samples its header or stream
            promises are not all there), holds no samples, or is shorter than
            ``min_duration_s``; the message names the file.
    """
    import soundfile

    file = check_file(path, "audio file")
    name = f"audio file {str(file)!r}"
    try:
        data, rate = soundfile.read(file, dtype="float32", always_2d=True)
        info = soundfile.info(file)
    except (RuntimeError, soundfile.LibsndfileError, TypeError) as err:
        raise ValueError(f"cannot read {name}: {err}") from err
    with open(file, "rb") as stream:
        head = stream.read(_PEEK)
        stream.seek(max(0, file.stat().st_size - _PEEK))
        tail = stream.read()
    return _checked(data, rate, sample_rate, min_duration_s, name,
                    _truncation(info.format, len(data), info.frames, head, tail,
                                file.stat().st_size))


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


class AudioInfo:
    """What the header of in-memory audio says, read before any sample is decoded."""

    def __init__(self, kind: str, rate: int, frames: int, channels: int) -> None:
        self.kind = kind  # container, as libsndfile names it: WAV, FLAC, OGG, MP3, ...
        self.rate = rate  # samples per second
        self.frames = frames  # samples per channel (as declared)
        self.channels = channels

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate if self.rate else 0.0


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
    (unreadable, truncated, empty, too short), with ``name`` in the messages."""
    import soundfile

    info = audio_info(data, name)
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, TypeError) as err:
        raise ValueError(f"cannot read {name}: {err}") from None
    return _checked(samples, rate, sample_rate, min_duration_s, name,
                    _truncation(info.kind, len(samples), info.frames, data[:_PEEK],
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
    array = array.astype(np.float32)
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
