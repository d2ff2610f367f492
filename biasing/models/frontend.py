"""Log-mel front-end (NeMo/QuartzNet style) written from the model card, in torch.

Pipeline for one waveform ``x`` (float32 in [-1, 1]) of ``n`` samples:

1. preemphasis ``y[0] = x[0]``, ``y[t] = x[t] - a * x[t - 1]``;
2. centred STFT (``center=True``: ``n_fft // 2`` samples of padding on both sides, zeros by
   default) with a periodic Hann window of ``win_length`` zero-padded to ``n_fft``;
3. power spectrum ``|X|**2``, Slaney mel filterbank (librosa ``htk=False, norm="slaney"``);
4. ``log(mel + log_guard)`` and fixed per-band normalisation ``(v - mean) / std``.

This gives ``n // hop_length + 1`` frames, of which the first ``ceil(n / hop_length)`` are
valid; the rest (one frame when ``n`` is a multiple of the hop) are set to 0, as the
reference features of the QuartzNet card do (their last frame is exactly 0).

Padding mode: the reference demo starts and ends in digital silence, so zero ("constant")
and reflect padding reproduce it equally well (both within 6e-5). Zero padding is the
default because it makes a padded batch give exactly the features of each waveform alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

try:
    import torch
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "The log-mel front-end needs PyTorch: pip install 'ctc-biasing[torch]'"
    ) from err

__all__ = ["FrontendConfig", "LogMelFrontend", "frontend_config_from_json", "slaney_mel_filterbank"]

_PAD_MODES = ("constant", "reflect")


@dataclass(frozen=True)
class FrontendConfig:
    """Parameters of the log-mel front-end; ``frontend_config_from_json`` builds one."""

    sample_rate: int  # rate of the input waveform, Hz
    n_fft: int  # FFT size in samples; the window is zero-padded (centred) to it
    win_length: int  # periodic Hann window length in samples
    hop_length: int  # frame shift in samples
    n_mels: int  # number of mel bands
    fmin: float  # lower edge of the mel filterbank, Hz
    fmax: float  # upper edge of the mel filterbank, Hz
    preemphasis: float  # coefficient a of y[t] = x[t] - a * x[t-1]; 0 disables it
    log_guard: float  # added to the mel power before the natural log
    mean: tuple[float, ...]  # per-band value subtracted after the log (n_mels values)
    std: tuple[float, ...]  # per-band value divided after the mean (n_mels values)
    # How center=True pads the signal edges: "constant" (zeros) or "reflect"; only zeros
    # keep a padded batch exactly equal to its inputs run alone.
    pad_mode: str = "constant"

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.win_length > self.n_fft:
            raise ValueError(
                f"win_length ({self.win_length}) must not exceed n_fft ({self.n_fft})"
            )
        if not 0.0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ValueError(
                f"need 0 <= fmin < fmax <= sample_rate / 2, got fmin={self.fmin}, "
                f"fmax={self.fmax}, sample_rate={self.sample_rate}"
            )
        if len(self.mean) != self.n_mels or len(self.std) != self.n_mels:
            raise ValueError(
                f"mean and std need n_mels={self.n_mels} values, got {len(self.mean)} "
                f"and {len(self.std)}"
            )
        if any(s <= 0 for s in self.std):
            raise ValueError("std values must all be positive")
        if self.pad_mode not in _PAD_MODES:
            raise ValueError(f"pad_mode must be one of {_PAD_MODES}, got {self.pad_mode!r}")

    def num_frames(self, num_samples: int) -> int:
        """Valid feature frames for ``num_samples`` samples: ``ceil(num_samples / hop)``."""
        return -(-num_samples // self.hop_length)


def frontend_config_from_json(
    features: Mapping[str, Any], sample_rate: int, pad_mode: str = "constant"
) -> FrontendConfig:
    """Build a ``FrontendConfig`` from the ``"features"`` object of a model ``config.json``.

    Only what the front-end implements is accepted (log-mel, periodic Hann window,
    ``center=True``, power 2, no dither, fixed normalisation); anything else raises
    ``ValueError`` naming the field rather than silently computing other features.
    """
    expected = {
        "type": "log-mel",
        "window": "hann (periodic)",
        "center": True,
        "power": 2.0,
        "dither": 0.0,
    }
    for key, value in expected.items():
        if key in features and features[key] != value:
            raise ValueError(f"unsupported front-end: {key}={features[key]!r}, expected {value!r}")
    mel = str(features.get("mel", ""))
    if mel and "slaney" not in mel.lower():
        raise ValueError(f"unsupported mel filterbank {mel!r}: only Slaney (librosa) is implemented")
    normalize = features.get("normalize")
    if not isinstance(normalize, Mapping) or "fixed_mean" not in normalize:
        raise ValueError(f"expected fixed_mean/fixed_std normalisation, got {normalize!r}")
    log_spec = str(features.get("log", "natural log of (mel power + 2**-24)"))
    guard = 2.0**-24 if "2**-24" in log_spec else _parse_float(log_spec, r"\+\s*([0-9.eE+-]+)")
    return FrontendConfig(
        sample_rate=int(sample_rate),
        n_fft=int(features["n_fft"]),
        win_length=int(features["win_length"]),
        hop_length=int(features["hop_length"]),
        n_mels=int(features["n_mels"]),
        fmin=_parse_float(mel, r"fmin\s+([0-9.]+)", default=0.0),
        fmax=_parse_float(mel, r"fmax\s+([0-9.]+)", default=sample_rate / 2),
        preemphasis=float(features.get("preemphasis", 0.0)),
        log_guard=guard,
        mean=tuple(float(v) for v in normalize["fixed_mean"]),
        std=tuple(float(v) for v in normalize["fixed_std"]),
        pad_mode=pad_mode,
    )


def _parse_float(text: str, pattern: str, default: float | None = None) -> float:
    match = re.search(pattern, text)
    if match is None:
        if default is None:
            raise ValueError(f"cannot find a number matching {pattern!r} in {text!r}")
        return float(default)
    return float(match.group(1))


# Slaney mel scale (librosa ``htk=False``): linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3  # Hz per mel on the linear part
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0  # log-Hz per mel on the logarithmic part


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / _F_SP
    high = hz >= _MIN_LOG_HZ
    mel[high] = _MIN_LOG_MEL + np.log(hz[high] / _MIN_LOG_HZ) / _LOGSTEP
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = mel * _F_SP
    high = mel >= _MIN_LOG_MEL
    hz[high] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel[high] - _MIN_LOG_MEL))
    return hz


def slaney_mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float
) -> np.ndarray:
    """Triangular Slaney-normalised mel filters, as ``librosa.filters.mel(htk=False)``.

    Returns:
        weights: (n_mels, n_fft // 2 + 1) float32; row ``m`` integrates the power spectrum
        into band ``m`` and is scaled by ``2 / bandwidth_hz`` (constant energy per band).
    """
    fft_freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    mel_points = np.linspace(_hz_to_mel(np.array([fmin]))[0], _hz_to_mel(np.array([fmax]))[0],
                             n_mels + 2)
    mel_freqs = _mel_to_hz(mel_points)
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]
    return weights.astype(np.float32)


class LogMelFrontend(torch.nn.Module):
    """Batched log-mel features; padded frames are zeroed so batching never changes a result."""

    window: torch.Tensor  # (win_length,) periodic Hann window
    filters: torch.Tensor  # (n_mels, n_fft // 2 + 1) Slaney mel filterbank
    mean: torch.Tensor  # (n_mels, 1) normalisation mean
    std: torch.Tensor  # (n_mels, 1) normalisation std

    def __init__(self, config: FrontendConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer(
            "window", torch.hann_window(config.win_length, periodic=True), persistent=False
        )
        filters = slaney_mel_filterbank(
            config.sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax
        )
        self.register_buffer("filters", torch.from_numpy(filters), persistent=False)
        self.register_buffer(
            "mean", torch.tensor(config.mean, dtype=torch.float32)[:, None], persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(config.std, dtype=torch.float32)[:, None], persistent=False
        )

    def forward(
        self, waves: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute normalised log-mel features.

        Args:
            waves: (batch, samples) float32 waveforms in [-1, 1], zero-padded on the right.
            lengths: (batch,) int64 true number of samples of each waveform.

        Returns:
            features: (batch, n_mels, frames) with ``frames = samples // hop_length + 1``;
            frames at or past an input's own valid frame count are 0.
            frame_lengths: (batch,) int64 valid frames, ``ceil(lengths / hop_length)``.
        """
        cfg = self.config
        samples = waves.shape[1]
        time = torch.arange(samples, device=waves.device)
        inside = time[None, :] < lengths[:, None]
        x = waves
        if cfg.preemphasis:
            x = torch.cat([x[:, :1], x[:, 1:] - cfg.preemphasis * x[:, :-1]], dim=1)
        # The preemphasis of the first padded sample is -a * x[n-1]; zero it so a padded
        # batch sees the same signal as each waveform alone.
        x = x.masked_fill(~inside, 0.0)
        spec = torch.stft(
            x,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=self.window,
            center=True,
            pad_mode=cfg.pad_mode,
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()  # (batch, n_fft // 2 + 1, frames)
        mel = torch.matmul(self.filters, power)
        feats = (torch.log(mel + cfg.log_guard) - self.mean) / self.std
        frame_lengths = torch.div(lengths + cfg.hop_length - 1, cfg.hop_length, rounding_mode="floor")
        frames = torch.arange(feats.shape[-1], device=feats.device)
        valid = frames[None, :] < frame_lengths[:, None]
        return feats.masked_fill(~valid[:, None, :], 0.0), frame_lengths
