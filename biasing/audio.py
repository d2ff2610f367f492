"""Reading audio into the float32 mono waveforms models take.

Files are read with soundfile (wav, flac, ogg/vorbis, and whatever else the installed
libsndfile supports), mixed down to mono and resampled with soxr's high-quality filter.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_MIN_DURATION_S", "load_audio", "to_model_rate"]

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
        ValueError: the file is not readable audio, holds no samples, or is shorter than
            ``min_duration_s``; the message names the file.
    """
    import soundfile

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"audio file {str(file)!r} does not exist")
    try:
        data, rate = soundfile.read(file, dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, TypeError) as err:
        raise ValueError(f"cannot read audio file {str(file)!r}: {err}") from err
    if data.size == 0:
        raise ValueError(f"audio file {str(file)!r} holds no samples")
    try:
        return to_model_rate(data, rate, sample_rate, min_duration_s=min_duration_s)
    except ValueError as err:
        raise ValueError(f"audio file {str(file)!r}: {err}") from err


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
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name} must be a positive int (Hz), got {value!r}")
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
