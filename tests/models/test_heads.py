"""Auxiliary CTC heads (self-conditioned and plain) and int8 weights of QuartzNet folders."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import TINY_LABELS, write_tiny_quartznet

from biasing.models import forward_long, load_model
from biasing.models.quartznet import quantize_int8, read_weights

PHONES = ["AA", "B", "K", ""]


def _with_heads(folder: Path, feedback_scale: float = 0.0, int8: bool = False) -> Path:
    """The tiny QuartzNet plus a fed-back CTC head on block 0 and a phone head on 1."""
    write_tiny_quartznet(folder)
    config = json.loads((folder / "config.json").read_text())
    weights = read_weights(folder / "weights.npz")
    classes = len(TINY_LABELS) + 1
    config["heads"] = [{"name": "ctc_0", "layer": 0, "classes": classes, "feedback": True},
                       {"name": "phones", "layer": 1, "classes": len(PHONES)}]
    config["head_labels"] = {"ctc_0": TINY_LABELS + [""], "phones": PHONES}
    rng = np.random.default_rng(1)
    weights["heads.ctc_0.proj.weight"] = rng.standard_normal((classes, 16, 1)).astype("f4")
    weights["heads.ctc_0.proj.bias"] = np.zeros(classes, "f4")
    weights["heads.ctc_0.back.weight"] = (
        feedback_scale * rng.standard_normal((16, classes, 1))).astype("f4")
    weights["heads.phones.proj.weight"] = rng.standard_normal((len(PHONES), 24, 1)).astype("f4")
    weights["heads.phones.proj.bias"] = np.zeros(len(PHONES), "f4")
    (folder / "config.json").write_text(json.dumps(config))
    np.savez(folder / "weights.npz", **(quantize_int8(weights) if int8 else weights))
    return folder


def _waves() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (8000, 5000)]


def test_heads_come_back_as_log_probabilities(tmp_path: Path) -> None:
    model = load_model(f"quartznet:{_with_heads(tmp_path)}")
    assert model.head_labels["phones"] == PHONES
    for out in model.forward(_waves(), layers=(0, 1)):
        assert set(out.heads) == {"ctc_0", "phones"}
        assert out.heads["phones"].shape == (len(out.logprobs), len(PHONES))
        assert out.heads["ctc_0"].shape == out.logprobs.shape
        for logprobs in out.heads.values():
            np.testing.assert_allclose(np.exp(logprobs).sum(axis=1), 1.0, atol=1e-5)


def test_zero_feedback_and_plain_heads_leave_the_network_unchanged(tmp_path: Path) -> None:
    plain = load_model(f"quartznet:{write_tiny_quartznet(tmp_path / 'plain')}")
    headed = load_model(f"quartznet:{_with_heads(tmp_path / 'headed')}")
    for a, b in zip(plain.forward(_waves()), headed.forward(_waves())):
        np.testing.assert_array_equal(a.logprobs, b.logprobs)


def test_feedback_reaches_the_following_blocks(tmp_path: Path) -> None:
    zero = load_model(f"quartznet:{_with_heads(tmp_path / 'zero')}")
    fed = load_model(f"quartznet:{_with_heads(tmp_path / 'fed', feedback_scale=1.0)}")
    a, b = zero.forward(_waves(), layers=(0, 1))[0], fed.forward(_waves(), layers=(0, 1))[0]
    np.testing.assert_array_equal(a.heads["ctc_0"], b.heads["ctc_0"])  # same input
    assert not np.allclose(a.hidden[0], b.hidden[0])  # block 0 output as block 1 reads it
    assert not np.allclose(a.logprobs, b.logprobs)


def test_int8_weights_load_close_to_float(tmp_path: Path) -> None:
    full = load_model(f"quartznet:{_with_heads(tmp_path / 'f32', feedback_scale=1.0)}")
    small = load_model(f"quartznet:{_with_heads(tmp_path / 'i8', 1.0, int8=True)}")
    assert (tmp_path / "i8" / "weights.npz").stat().st_size < (
        tmp_path / "f32" / "weights.npz").stat().st_size
    for a, b in zip(full.forward(_waves()), small.forward(_waves())):
        np.testing.assert_allclose(np.exp(a.logprobs), np.exp(b.logprobs), atol=0.05)
        np.testing.assert_allclose(np.exp(a.heads["phones"]), np.exp(b.heads["phones"]),
                                   atol=0.05)


def test_quantize_int8_error_is_half_a_step_per_channel() -> None:
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((4, 3, 5)).astype(np.float32) * np.array([1, 10, 0.01, 0])[
        :, None, None].astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    packed = quantize_int8({"w.weight": weight, "w.bias": bias})
    assert packed["w.weight.int8"].dtype == np.int8 and packed["w.bias"].dtype == np.float32
    restored = packed["w.weight.int8"].astype(np.float32) * packed["w.weight.scale"][:, None, None]
    step = np.abs(weight).reshape(4, -1).max(axis=1) / 127
    assert (np.abs(restored - weight).reshape(4, -1).max(axis=1) <= step / 2 + 1e-7).all()
    np.testing.assert_array_equal(restored[3], 0.0)


def test_int8_weight_without_scale_is_rejected(tmp_path: Path) -> None:
    folder = _with_heads(tmp_path, int8=True)
    with np.load(folder / "weights.npz") as archive:
        weights = {k: archive[k] for k in archive.files if k != "head.weight.scale"}
    np.savez(folder / "weights.npz", **weights)
    with pytest.raises(ValueError, match="'head.weight.int8' has no 'head.weight.scale'"):
        load_model(f"quartznet:{folder}")


def test_forward_long_stitches_heads(tmp_path: Path) -> None:
    model = load_model(f"quartznet:{_with_heads(tmp_path)}")
    wave = (0.1 * np.random.default_rng(5).standard_normal(16000 * 3)).astype(np.float32)
    whole = model.forward([wave])[0]
    long = forward_long(model, wave, chunk_s=1.0, overlap_s=0.4)
    # the tiny network sees about +-10 frames, less than the 0.2 s kept at each border, so
    # the stitched heads are the heads of one pass, frame for frame
    for name in ("ctc_0", "phones"):
        assert long.heads[name].shape == whole.heads[name].shape
        np.testing.assert_allclose(long.heads[name], whole.heads[name], atol=1e-4)


def _with_deep_phone_head(folder: Path) -> Path:
    """``_with_heads`` whose phone head has a depthwise convolution and a hidden layer."""
    _with_heads(folder)
    config = json.loads((folder / "config.json").read_text())
    weights = read_weights(folder / "weights.npz")
    config["heads"][1].update(kernel=3, hidden=8)
    rng = np.random.default_rng(2)
    weights["heads.phones.dw.weight"] = rng.standard_normal((24, 1, 3)).astype("f4")
    weights["heads.phones.hidden.weight"] = rng.standard_normal((8, 24, 1)).astype("f4")
    weights["heads.phones.hidden.bias"] = rng.standard_normal(8).astype("f4")
    weights["heads.phones.proj.weight"] = rng.standard_normal((len(PHONES), 8, 1)).astype("f4")
    (folder / "config.json").write_text(json.dumps(config))
    np.savez(folder / "weights.npz", **weights)
    return folder


def test_deep_head_gives_the_same_frames_alone_and_in_a_padded_batch(tmp_path: Path) -> None:
    model = load_model(f"quartznet:{_with_deep_phone_head(tmp_path)}")
    waves = _waves()
    batched = model.forward(waves)
    for wave, together in zip(waves, batched):
        alone = model.forward([wave])[0]
        np.testing.assert_allclose(alone.heads["phones"], together.heads["phones"], atol=1e-4)


@pytest.mark.parametrize(("make", "edit", "message"), [
    (_with_heads, lambda config: config["head_labels"].pop("phones"),
     "head 'phones' has 4 classes but 0 labels"),
    (_with_heads, lambda config: config["heads"][1].update(layer=7), "layer 7 is not a block"),
    (_with_deep_phone_head, lambda config: config["heads"][1].update(kernel=4),
     "kernel 4 must be odd"),
], ids=["head without labels", "head on a missing block", "even head kernel"])
def test_bad_head_config_is_rejected(tmp_path: Path, make: Callable[[Path], Path],
                                     edit: Callable[[dict], object], message: str) -> None:
    folder = make(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message):
        load_model(f"quartznet:{folder}")


def test_folder_round_trip_and_network_arrays(tmp_path: Path) -> None:
    from biasing.models.quartznet import build_network, network_arrays, read_folder, write_folder

    folder = read_folder(_with_heads(tmp_path / "src", feedback_scale=0.5))
    network = build_network(folder.config, folder.weights)
    arrays = network_arrays(network)
    assert set(arrays) == set(folder.weights)  # module names are the on-disk names
    for name, array in arrays.items():
        np.testing.assert_array_equal(array, folder.weights[name])
    copy = read_folder(write_folder(tmp_path / "copy", folder.config, arrays, int8=False))
    assert copy.config == folder.config
    for name, array in copy.weights.items():
        np.testing.assert_array_equal(array, folder.weights[name])
    wave = _waves()[:1]
    original = load_model(f"quartznet:{tmp_path / 'src'}").forward(wave)[0]
    written = load_model(f"quartznet:{tmp_path / 'copy'}").forward(wave)[0]
    np.testing.assert_allclose(written.logprobs, original.logprobs, atol=1e-5)


def test_partial_weights_leave_new_heads_at_zero(tmp_path: Path) -> None:
    from biasing.models.quartznet import build_network, read_folder

    folder = read_folder(_with_heads(tmp_path))
    weights = {k: v for k, v in folder.weights.items() if not k.startswith("heads.")}
    with pytest.raises(ValueError, match="has no array 'heads.ctc_0.proj.weight'"):
        build_network(folder.config, weights)
    network = build_network(folder.config, weights, strict=False)
    assert not network.heads["ctc_0"].proj.weight.detach().any()
