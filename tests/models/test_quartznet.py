"""QuartzNet: parity with the reference outputs, batching, layers, chunking, loading errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="model tests need torch: pip install 'ctc-biasing[torch]'")

from conftest import TINY_LABELS, write_tiny_quartznet

from biasing.metrics import edit_distance
from biasing.models import ModelOutput, forward_long, greedy_labels, load_model
from biasing.models.frontend import (
    LogMelFrontend,
    frontend_config_from_json,
    slaney_mel_filterbank,
)

REPO = Path(__file__).resolve().parents[2]
DEMO_TRANSCRIPT = (
    "as i approached the city i heard bells ringing and a little later i found the street a "
    "stir with throngs of well dressed people in family groups winding their way thither and "
    "thither"
)


def _greedy(logprobs: np.ndarray, labels: list[str]) -> str:
    return "".join(greedy_labels(logprobs, labels))


def _read_demo(folder: Path) -> np.ndarray:
    import soundfile

    wave, rate = soundfile.read(folder / "demo.wav", dtype="float32")
    assert rate == 16000
    return wave


@pytest.fixture(scope="module")
def real_model(quartznet_dir: Path):
    return load_model(f"quartznet:{quartznet_dir}")


@pytest.fixture(scope="module")
def tiny_model(tiny_quartznet_dir: Path):
    return load_model(f"quartznet:{tiny_quartznet_dir}")


def _noise(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(
        np.float32
    )


# --- real model (needs ../shared) -------------------------------------------------------


def test_features_match_reference(quartznet_dir: Path) -> None:
    config = json.loads((quartznet_dir / "config.json").read_text())
    reference = np.load(quartznet_dir / "demo_reference.npz")["features"]
    wave = _read_demo(quartznet_dir)
    frontend = LogMelFrontend(frontend_config_from_json(config["features"], 16000))
    with torch.inference_mode():
        feats, lengths = frontend(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
    assert feats.shape[1:] == reference.shape
    assert int(lengths[0]) == 1065  # 170400 samples: ceil(n / hop) valid, last frame zeroed
    np.testing.assert_allclose(feats[0].numpy(), reference, atol=2e-4)


def test_logits_and_transcript_match_reference(real_model, quartznet_dir: Path) -> None:
    reference = np.load(quartznet_dir / "demo_reference.npz")["logits"]
    out = real_model.forward([_read_demo(quartznet_dir)])[0]
    expected = torch.log_softmax(torch.from_numpy(reference), dim=-1).numpy()
    assert out.logprobs.shape == reference.shape
    np.testing.assert_allclose(out.logprobs, expected, atol=2e-3)
    assert _greedy(out.logprobs, real_model.labels) == DEMO_TRANSCRIPT


def test_network_reproduces_logits_from_reference_features(real_model, quartznet_dir) -> None:
    ref = np.load(quartznet_dir / "demo_reference.npz")
    with torch.inference_mode():
        logits, *_ = real_model.network(
            torch.from_numpy(ref["features"])[None], torch.tensor([1065])
        )
    np.testing.assert_allclose(logits[0].T.numpy(), ref["logits"], atol=2e-4)


def test_real_model_interface(real_model, quartznet_dir: Path) -> None:
    assert real_model.labels[0] == " " and real_model.labels[28] == ""
    assert real_model.labels[1:27] == list("abcdefghijklmnopqrstuvwxyz")
    assert real_model.sample_rate == 16000 and real_model.frame_shift_s == pytest.approx(0.02)
    wave = _read_demo(quartznet_dir)[: 3 * 16000]
    out = real_model.forward([wave], layers=(5, 11))[0]
    assert out.logprobs.dtype == np.float32
    assert out.hidden[5].shape == (len(out.logprobs), 256)
    assert out.hidden[11].shape == (len(out.logprobs), 512)
    np.testing.assert_allclose(np.exp(out.logprobs).sum(axis=1), 1.0, atol=1e-4)


def test_real_model_batch_equals_single(real_model, quartznet_dir: Path) -> None:
    demo = _read_demo(quartznet_dir)
    waves = [demo[: 4 * 16000], demo[16000 : 2 * 16000 + 123], demo[5 * 16000 : 8 * 16000]]
    batched = real_model.forward(waves, layers=(3,))
    for wave, out in zip(waves, batched):
        alone = real_model.forward([wave], layers=(3,))[0]
        np.testing.assert_allclose(out.logprobs, alone.logprobs, atol=1e-4)
        np.testing.assert_allclose(out.hidden[3], alone.hidden[3], atol=1e-4)


def test_real_model_chunking_agrees_away_from_borders(real_model, quartznet_dir) -> None:
    # QuartzNet's receptive field spans tens of seconds, so chunking is approximate: CTC
    # spikes may move by a frame near a border. Transcripts and nearly all frames agree.
    wave = np.tile(_read_demo(quartznet_dir), 3)  # 32 s
    full = real_model.forward([wave])[0].logprobs
    chunked = forward_long(real_model, wave, chunk_s=12.0, overlap_s=6.0).logprobs
    assert chunked.shape == full.shape
    assert (chunked.argmax(1) == full.argmax(1)).mean() > 0.98
    reference = _greedy(full, real_model.labels)
    errors = edit_distance(_greedy(chunked, real_model.labels), reference)
    assert errors / len(reference) < 0.02


# --- tiny synthetic model (always runs) ---------------------------------------------------


def test_tiny_model_interface(tiny_model) -> None:
    assert tiny_model.labels == [*TINY_LABELS, ""]
    assert tiny_model.num_layers == 2
    assert tiny_model.frame_shift_s == pytest.approx(0.02)
    for samples in (160, 161, 320, 1600, 16000, 16001):
        out = tiny_model.forward([_noise(samples / 16000, 0)], layers=(0, 1))[0]
        feature_frames = -(-samples // 160)
        assert len(out.logprobs) == (feature_frames - 1) // 2 + 1
        assert out.logprobs.shape[1] == len(tiny_model.labels)
        assert out.hidden[0].shape == (len(out.logprobs), 16)
        assert out.hidden[1].shape == (len(out.logprobs), 24)


def test_tiny_model_batch_equals_single(tiny_model) -> None:
    waves = [_noise(1.0, 1), _noise(0.37, 2), _noise(2.001, 3)]
    for wave, out in zip(waves, tiny_model.forward(waves, layers=(1,))):
        alone = tiny_model.forward([wave], layers=(1,))[0]
        np.testing.assert_allclose(out.logprobs, alone.logprobs, atol=1e-5)
        np.testing.assert_allclose(out.hidden[1], alone.hidden[1], atol=1e-5)
    assert tiny_model.forward([]) == []


@pytest.mark.parametrize("seconds", [1.5, 4.0, 5.33, 7.99])
def test_chunking_is_exact_when_overlap_exceeds_receptive_field(tiny_model, seconds) -> None:
    # The tiny model sees about +-10 frames; 0.5 s of context per side covers it.
    wave = _noise(seconds, 4)
    full = tiny_model.forward([wave], layers=(0,))[0]
    chunked = forward_long(tiny_model, wave, layers=(0,), chunk_s=2.0, overlap_s=1.0)
    assert isinstance(chunked, ModelOutput)
    assert chunked.logprobs.shape == full.logprobs.shape
    np.testing.assert_allclose(chunked.logprobs, full.logprobs, atol=1e-4)
    np.testing.assert_allclose(chunked.hidden[0], full.hidden[0], atol=1e-4)


def test_chunking_rejects_bad_arguments(tiny_model) -> None:
    wave = _noise(1.0, 0)
    with pytest.raises(ValueError, match="overlap_s"):
        forward_long(tiny_model, wave, chunk_s=1.0, overlap_s=1.0)
    with pytest.raises(ValueError, match="chunk_s"):
        forward_long(tiny_model, wave, chunk_s=0.0)
    with pytest.raises(ValueError, match="1-D"):
        forward_long(tiny_model, np.zeros((2, 100), dtype=np.float32))


def test_forward_rejects_bad_inputs(tiny_model) -> None:
    with pytest.raises(ValueError, match="layer 2"):
        tiny_model.forward([_noise(0.5, 0)], layers=(2,))
    with pytest.raises(ValueError, match=r"waves\[0\] must be 1-D"):
        tiny_model.forward([np.zeros((100, 2), dtype=np.float32)])
    with pytest.raises(ValueError, match="NaN"):
        tiny_model.forward([np.full(1000, np.nan, dtype=np.float32)])
    with pytest.raises(TypeError, match="dtype int16"):
        tiny_model.forward([np.zeros(1000, dtype=np.int16)])
    with pytest.raises(TypeError, match="wrap a single wave"):
        tiny_model.forward(_noise(0.5, 0))


def test_load_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="quartznet:DIR.*hf:DIR"):
        load_model(f"nemo:{tmp_path}")
    with pytest.raises(ValueError, match="unknown model spec"):
        load_model(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(f"quartznet:{tmp_path / 'missing'}")
    with pytest.raises(ValueError, match="lacks config.json, weights.npz"):
        load_model(f"quartznet:{tmp_path}")
    (tmp_path / "config.json").write_text('{"sample_rate": 16000}')
    (tmp_path / "weights.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="config.json lacks labels, features, convolutions"):
        load_model(f"quartznet:{tmp_path}")


def test_load_rejects_inconsistent_weights(tmp_path: Path) -> None:
    folder = write_tiny_quartznet(tmp_path / "broken")
    with np.load(folder / "weights.npz") as archive:
        weights = {k: archive[k] for k in archive.files}
    del weights["blocks.1.residual.bias"]
    np.savez(folder / "weights.npz", **weights)
    with pytest.raises(ValueError, match="blocks.1.residual.bias"):
        load_model(f"quartznet:{folder}")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_requested_without_cuda(tiny_quartznet_dir: Path) -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        load_model(f"quartznet:{tiny_quartznet_dir}", device="cuda")


def test_bad_device_name(tiny_quartznet_dir: Path) -> None:
    with pytest.raises(ValueError, match="device 'tpu'"):
        load_model(f"quartznet:{tiny_quartznet_dir}", device="tpu")


def test_frontend_batch_and_padding() -> None:
    config = json.loads(json.dumps({
        "n_mels": 8, "n_fft": 512, "win_length": 320, "hop_length": 160, "preemphasis": 0.97,
        "mel": "slaney, fmin 0, fmax 8000",
        "normalize": {"fixed_mean": [0.0] * 8, "fixed_std": [1.0] * 8},
    }))
    frontend = LogMelFrontend(frontend_config_from_json(config, 16000))
    waves = [_noise(0.5, 1), _noise(0.2, 2)]
    padded = torch.zeros(2, len(waves[0]))
    padded[0] = torch.from_numpy(waves[0])
    padded[1, : len(waves[1])] = torch.from_numpy(waves[1])
    feats, lengths = frontend(padded, torch.tensor([len(w) for w in waves]))
    assert lengths.tolist() == [50, 20]  # ceil(n / 160)
    alone, _ = frontend(torch.from_numpy(waves[1])[None], torch.tensor([len(waves[1])]))
    np.testing.assert_allclose(feats[1, :, :20].numpy(), alone[0, :, :20].numpy(), atol=1e-5)
    assert float(feats[1, :, 20:].abs().max()) == 0.0


def test_slaney_filterbank_shape_and_normalisation() -> None:
    filters = slaney_mel_filterbank(16000, 512, 64, 0.0, 8000.0)
    assert filters.shape == (64, 257)
    assert (filters >= 0).all()
    peaks = filters.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all()
    # Slaney normalisation scales each triangle by 2 / base width, so its area in Hz is 1;
    # the sampled rows match that once a band spans several FFT bins.
    bin_hz = 8000 / 256
    area = filters.sum(axis=1) * bin_hz
    np.testing.assert_allclose(area[8:], 1.0, rtol=0.1)


def test_importing_models_does_not_import_torch() -> None:
    code = (
        "import sys, biasing.models, biasing.audio; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'transformers' not in sys.modules, 'transformers imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
