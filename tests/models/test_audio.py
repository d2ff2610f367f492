"""Audio loading: formats, resampling, downmix, integer files, bad inputs, and files that
declare more audio than any recording (refused from the header, decoded in blocks)."""

from __future__ import annotations

import functools
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
import soxr

from biasing import audio
from biasing.audio import (
    MAX_CHANNELS,
    MAX_DECODED_SAMPLES,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    audio_info,
    check_audio_size,
    decode_audio,
    load_audio,
    to_model_rate,
)


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


# ------------------------------------------------------------ block-wise decoding, limits
# What every reader did before decoding went block-wise, kept as the reference: the whole
# (frames, channels) file decoded, mixed to mono, resampled.


def _old_read(source: Path | io.BytesIO) -> tuple[np.ndarray, int]:
    data, rate = soundfile.read(source, dtype="float32", always_2d=True)
    return data, rate


def _old_to_model_rate(data: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    array = data.mean(axis=1).astype(np.float32)
    if rate != sample_rate:
        array = soxr.resample(array, rate, sample_rate, quality="HQ")
    return np.clip(array, -1.0, 1.0).astype(np.float32, copy=False)


def _old_load_audio(path: Path, sample_rate: int) -> np.ndarray:
    file, name = Path(path), f"audio file {str(path)!r}"
    try:
        data, rate = _old_read(file)
        info = soundfile.info(file)
    except (RuntimeError, soundfile.LibsndfileError, TypeError) as err:
        raise ValueError(f"cannot read {name}: {err}") from err
    raw = file.read_bytes()
    return audio._checked(data, rate, sample_rate, 0.1, name, audio._truncation(
        info.format, len(data), info.frames, raw[:audio._PEEK], raw[-audio._PEEK:], len(raw)))


def _recording(rate: int, channels: int, seconds: float = 1.3) -> np.ndarray:
    """(frames, channels) float32: a different tone per channel over noise, with an odd
    number of frames so the last block is partial."""
    t = np.arange(round(rate * seconds) + 7) / rate
    noise = np.random.default_rng(channels).standard_normal((len(t), channels)) * 0.05
    tones = np.stack([0.4 * np.sin(2 * np.pi * 220 * (c + 1) * t) for c in range(channels)], 1)
    return (tones + noise).astype(np.float32)


def _encoded(samples: np.ndarray, rate: int, fmt: str, subtype: str) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format=fmt, subtype=subtype)
    return out.getvalue()


FORMATS = [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_24"), ("OGG", "VORBIS")]


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize(("fmt", "subtype"), FORMATS)
def test_block_wise_decoding_is_bit_for_bit_the_whole_file_decoding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, subtype: str,
        channels: int, rate: int) -> None:
    data = _encoded(_recording(rate, channels), rate, fmt, subtype)
    path = tmp_path / f"clip.{fmt.lower()}"
    path.write_bytes(data)
    expected = _old_to_model_rate(*_old_read(path), 16000)
    for block in (audio._BLOCK_SAMPLES, 1000):  # one block; many and a partial last one
        monkeypatch.setattr(audio, "_BLOCK_SAMPLES", block)
        for wave in (load_audio(path, 16000), decode_audio(data, 16000, "clip")):
            assert wave.dtype == np.float32
            np.testing.assert_array_equal(wave, expected)


def test_bad_files_fail_as_they_did(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio, "_BLOCK_SAMPLES", 1000)
    stereo = _recording(16000, 2, seconds=4.0)  # Ogg: pages past the first are cut off
    cases = {f"cut.{fmt.lower()}": _encoded(stereo, 16000, fmt, subtype)
             for fmt, subtype in FORMATS}
    cases = {name: data[:len(data) // 2] for name, data in cases.items()}
    cases["short.wav"] = _encoded(stereo[:800], 16000, "WAV", "PCM_16")
    cases["empty.flac"] = _encoded(stereo[:0], 16000, "FLAC", "PCM_16")
    cases["notes.wav"] = b"these are not samples"
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ValueError) as old:
            _old_load_audio(path, 16000)
        with pytest.raises(ValueError) as new:
            load_audio(path, 16000)
        assert str(new.value) == str(old.value)
        assert str(path) in str(new.value)


def _flac_declaring(frames: int, rate: int, channels: int) -> bytes:
    """A real FLAC of silence whose STREAMINFO says it holds ``frames`` frames: the header
    of a long file without taking seconds to encode it; readers refuse from the header."""
    data = bytearray(_encoded(np.zeros((4096, channels), np.int16), rate, "FLAC", "PCM_16"))
    assert data[:4] == b"fLaC"  # STREAMINFO follows; total samples are its bits 108..143
    data[21] = (data[21] & 0xF0) | (frames >> 32)
    data[22:26] = (frames & 0xFFFFFFFF).to_bytes(4, "big")
    return bytes(data)


def _flac_bomb() -> bytes:
    """The issue's 335 KB FLAC: silence at 655,350 Hz (FLAC's highest rate) x 8 channels x
    60 s, 1.26 GB as float32 (header only: 60 s of it take seconds to encode)."""
    return _flac_declaring(655_350 * 60, 655_350, 8)


@functools.cache
def _ogg_bomb() -> bytes:
    """The issue's Ogg Vorbis at 255 channels (Vorbis's most) x 48 kHz, 0.5 s of it rather
    than 24 s: encoding 255 channels is slow, and the channel count alone is refused."""
    return _encoded(np.zeros((24_000, 255), np.float32), 48_000, "OGG", "VORBIS")


@pytest.mark.parametrize(("bomb", "shape", "why"), [
    (_flac_bomb, r"655,350 Hz x 8 channels x 39,321,000 frames \(60\.0 s\)",
     r"sample rate is above the 384,000 Hz"),
    (_ogg_bomb, r"48,000 Hz x 255 channels x 24,000 frames \(0\.5 s\)",
     r"more than the 64 channels"),
])
def test_bombs_are_refused_from_the_header(tmp_path: Path, bomb: Any, shape: str,
                                           why: str) -> None:
    data = bomb()
    path = tmp_path / "bomb.bin"
    path.write_bytes(data)
    start = time.perf_counter()
    info = audio_info(data, "upload")
    with pytest.raises(ValueError, match=f"^upload is {shape}: .*{why}"):
        check_audio_size(info, "upload")
    with pytest.raises(ValueError, match=f"^upload is {shape}: .*{why}"):
        decode_audio(data, 16000, "upload")
    with pytest.raises(ValueError, match=f"^audio file '.*bomb.bin' is {shape}: .*{why}"):
        load_audio(path, 16000)
    assert time.perf_counter() - start < 2.0  # not a sample decoded


@pytest.mark.parametrize("info", [
    audio.AudioInfo("WAV", MIN_SAMPLE_RATE, 4000, 1),
    audio.AudioInfo("WAV", MAX_SAMPLE_RATE, 384_000, MAX_CHANNELS),
    audio.AudioInfo("FLAC", 48_000, MAX_DECODED_SAMPLES // 2, 2),
])
def test_headers_at_the_limits_pass(info: audio.AudioInfo) -> None:
    check_audio_size(info, "x")


@pytest.mark.parametrize(("info", "says"), [
    (audio.AudioInfo("WAV", 3999, 4000, 1), "below the 4,000 Hz"),
    (audio.AudioInfo("WAV", 384_001, 384_001, 1), "above the 384,000 Hz"),
    (audio.AudioInfo("OGG", 48_000, 48_000, 65), "more than the 64 channels"),
    (audio.AudioInfo("WAV", 16_000, 0, 0), "no channels"),
    (audio.AudioInfo("FLAC", 48_000, 2**30 + 1, 2),
     "would decode to 2,147,483,650 samples, more than the 2,147,483,648"),
    (audio.AudioInfo("FLAC", 16_000, 2**63 - 1, 1), "does not say in its header how many"),
])
def test_headers_past_a_limit_are_refused_with_their_numbers(info: audio.AudioInfo,
                                                             says: str) -> None:
    with pytest.raises(ValueError, match=f"^x .*{info.rate:,} Hz x {info.channels} channels"
                                         f".*{says}"):
        check_audio_size(info, "x")


def test_a_file_over_the_sample_budget_is_refused_before_decoding(tmp_path: Path) -> None:
    data = _flac_declaring(384_000 * 700, 384_000, 8)  # legal rate and channels, 700 s
    path = tmp_path / "long.flac"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"long.flac' is 384,000 Hz x 8 channels x "
                                         r"268,800,000 frames \(700.0 s\): it would decode "
                                         r"to 2,150,400,000 samples"):
        load_audio(path, 16000)
    too_slow = tmp_path / "slow.wav"  # below MIN_SAMPLE_RATE: refused, not upsampled x8
    soundfile.write(too_slow, np.zeros(2000, np.float32), 2000)
    with pytest.raises(ValueError, match="slow.wav' is 2,000 Hz .*below the 4,000 Hz"):
        load_audio(too_slow, 16000)


def test_many_channels_give_their_mean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    samples = _recording(48_000, 8, seconds=2.0)
    path = tmp_path / "array.wav"
    soundfile.write(path, samples, 48_000, subtype="FLOAT")
    monkeypatch.setattr(audio, "_BLOCK_SAMPLES", 8 * 1000 + 3)  # 1000 frames a block
    np.testing.assert_allclose(load_audio(path, 48_000), samples.mean(axis=1), atol=1e-7)
    np.testing.assert_allclose(load_audio(path, 16_000),
                               _old_to_model_rate(samples, 48_000, 16_000), atol=1e-7)


# Peak resident memory of a fresh process, from Linux's VmHWM, reset before each read:
# libsndfile allocates in C, where tracemalloc sees nothing, and ru_maxrss starts a child at
# its parent's size (a large pytest process hides any growth below it).
_PEAK_RSS = """
import json, sys, time
from pathlib import Path
from biasing.audio import decode_audio, load_audio

def mb(field):
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024

load_audio(sys.argv[1], 16000)  # soundfile, soxr and numpy warmed up on a small file
report = {}
for what in sys.argv[2:]:
    kind, path = what.split("=", 1)
    data = Path(path).read_bytes()
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # VmHWM := VmRSS
    before, start = mb("VmRSS"), time.perf_counter()
    try:
        if kind == "bytes":
            decode_audio(data, 16000, "upload")
        else:
            load_audio(path, 16000)
        outcome = "decoded"
    except ValueError as err:
        outcome = str(err)
    report[what] = (outcome, mb("VmHWM") - before, time.perf_counter() - start)
print(json.dumps(report))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(),
                    reason="peak memory is read from Linux's /proc/self/status")
def test_peak_memory_stays_small(tmp_path: Path) -> None:
    paths = {"small": tmp_path / "small.wav", "flac": tmp_path / "bomb.flac",
             "ogg": tmp_path / "bomb.ogg", "array": tmp_path / "array.wav"}
    soundfile.write(paths["small"], _recording(48_000, 8, seconds=0.5), 48_000)
    paths["flac"].write_bytes(_flac_bomb())
    paths["ogg"].write_bytes(_ogg_bomb())
    # 8 channels x 48 kHz x 30 s: 46 MB as a whole (frames, channels) float32 array
    tone = np.sin(np.arange(48_000 * 30, dtype=np.float32) * 0.05) * 0.25
    soundfile.write(paths["array"], np.repeat(tone[:, None], 8, axis=1), 48_000)
    runs = [f"{kind}={paths[name]}" for name in ("flac", "ogg", "array")
            for kind in ("bytes", "file")]
    out = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(paths["small"]), *runs],
                         capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(out.stdout)
    for run in runs[:4]:
        outcome, grown_mb, seconds = report[run]
        assert "this reader accepts" in outcome, outcome
        assert grown_mb < 5 and seconds < 1.0, (run, grown_mb, seconds)
    for run in runs[4:]:
        outcome, grown_mb, seconds = report[run]
        assert outcome == "decoded"
        # mono at 48 kHz is 5.8 MB, at 16 kHz 1.9 MB; the whole file as float32, 46 MB
        assert grown_mb < 23, (run, grown_mb)
