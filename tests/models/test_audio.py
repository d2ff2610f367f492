"""Audio loading: formats, resampling, downmix, integer files and bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from biasing.audio import load_audio, to_model_rate


def _sine(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_resampling_keeps_length_and_frequency(tmp_path: Path, rate: int) -> None:
    path = tmp_path / f"sine_{rate}.wav"
    soundfile.write(path, _sine(1000.0, rate, 1.5), rate, subtype="FLOAT")
    wave = load_audio(path, 16000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 24000) <= 1
    assert _peak_hz(wave, 16000) == pytest.approx(1000.0, abs=2.0)
    # amplitude survives resampling (ignore the filter's edge transients)
    assert np.abs(wave[2000:-2000]).max() == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(("fmt", "subtype"), [("FLAC", "PCM_16"), ("OGG", "VORBIS"),
                                              ("WAV", "PCM_24")])
def test_other_formats(tmp_path: Path, fmt: str, subtype: str) -> None:
    path = tmp_path / f"sine.{fmt.lower()}"
    soundfile.write(path, _sine(440.0, 44100, 1.0), 44100, format=fmt, subtype=subtype)
    wave = load_audio(path, 16000)
    assert abs(len(wave) - 16000) <= 1
    assert _peak_hz(wave, 16000) == pytest.approx(440.0, abs=2.0)


def test_int16_file_is_scaled_like_nemo(tmp_path: Path) -> None:
    samples = np.array([0, 16384, -32768, 32767, -1] * 400, dtype=np.int16)
    path = tmp_path / "int16.wav"
    soundfile.write(path, samples, 16000, subtype="PCM_16")
    wave = load_audio(path, 16000)
    np.testing.assert_array_equal(wave, samples.astype(np.float32) / 32768)
    assert wave.min() >= -1.0 and wave.max() <= 1.0


def test_stereo_is_mixed_down(tmp_path: Path) -> None:
    left = _sine(300.0, 16000, 1.0, 0.4)
    right = _sine(2000.0, 16000, 1.0, 0.2)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    wave = load_audio(path, 16000)
    np.testing.assert_allclose(wave, (left + right) / 2, atol=1e-6)


def test_full_scale_input_stays_in_range(tmp_path: Path) -> None:
    square = np.sign(_sine(100.0, 44100, 0.5)).astype(np.float32)
    path = tmp_path / "square.wav"
    soundfile.write(path, square, 44100, subtype="FLOAT")
    wave = load_audio(path, 16000)
    assert wave.min() >= -1.0 and wave.max() <= 1.0


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.wav"):
        load_audio(tmp_path / "nothing.wav", 16000)


def test_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n")
    with pytest.raises(ValueError, match="cannot read audio file .*notes.wav"):
        load_audio(path, 16000)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "zero.flac"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="zero.flac"):
        load_audio(path, 16000)


def test_empty_audio(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match="empty.wav.*no samples"):
        load_audio(path, 16000)


def test_too_short(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    soundfile.write(path, _sine(440.0, 16000, 0.05), 16000)
    with pytest.raises(ValueError, match="short.wav.*0.050 s.*min_duration_s=0.1"):
        load_audio(path, 16000)
    assert len(load_audio(path, 16000, min_duration_s=0.01)) == 800


def test_to_model_rate_in_memory() -> None:
    wave = to_model_rate(_sine(500.0, 8000, 1.0), 8000, 16000)
    assert len(wave) == 16000 and wave.dtype == np.float32
    assert _peak_hz(wave, 16000) == pytest.approx(500.0, abs=2.0)
    ints = np.array([[16384, -16384]] * 1600, dtype=np.int16)  # (samples, channels)
    np.testing.assert_allclose(to_model_rate(ints, 16000, 16000), 0.0)
    unsigned = np.full(1600, 192, dtype=np.uint8)
    np.testing.assert_allclose(to_model_rate(unsigned, 16000, 16000), 0.5)


@pytest.mark.parametrize(
    ("wave", "rate", "match"),
    [
        (np.zeros(1600, dtype=np.float32), 0, "rate must be a positive whole number of Hz"),
        (np.zeros(1600, dtype=np.float32), 16000.5, "rate must be a positive whole number"),
        (np.zeros((2, 2, 400), dtype=np.float32), 16000, "shape"),
        (np.array(["a"] * 1600), 16000, "dtype"),
        (np.full(1600, np.nan, dtype=np.float32), 16000, "NaN"),
        (np.zeros(0, dtype=np.float32), 16000, "no samples"),
    ],
)
def test_to_model_rate_rejects(wave: np.ndarray, rate: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        to_model_rate(wave, rate, 16000)
