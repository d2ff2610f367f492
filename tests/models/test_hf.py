"""Hugging Face adapter on tiny randomly initialised Wav2Vec2ForCTC folders (no download)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the hf adapter needs torch: pip install 'ctc-biasing[torch]'")
transformers = pytest.importorskip(
    "transformers", reason="the hf adapter needs transformers: pip install 'ctc-biasing[hf]'"
)

from biasing.models import forward_long, load_model
from biasing.models.hf import hf_labels

VOCAB = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "A": 5, "B": 6, "C": 7, "'": 8}


def _write_tiny_wav2vec2(folder: Path, attention_mask: bool) -> Path:
    """Save a random 2-layer Wav2Vec2ForCTC with its processor, 20 ms frames like the real ones."""
    import torch

    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(VOCAB))
    tokenizer = transformers.Wav2Vec2CTCTokenizer(
        str(folder / "vocab.json"), unk_token="<unk>", pad_token="<pad>",
        word_delimiter_token="|",
    )
    extractor = transformers.Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
        return_attention_mask=attention_mask,
    )
    config = transformers.Wav2Vec2Config(
        vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, conv_dim=(8, 8, 8), conv_stride=(5, 8, 8), conv_kernel=(10, 8, 8),
        num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, pad_token_id=0,
        feat_extract_norm="layer" if attention_mask else "group",
        do_stable_layer_norm=attention_mask,
    )
    torch.manual_seed(0)
    transformers.Wav2Vec2ForCTC(config).save_pretrained(folder)
    extractor.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=[True, False], ids=["attention-mask", "group-norm"])
def tiny_hf(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    folder = _write_tiny_wav2vec2(tmp_path_factory.mktemp("hf") / "model", request.param)
    return load_model(f"hf:{folder}")


def _noise(samples: int, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(samples)).astype(np.float32)


def test_labels_follow_pyctcdecode(tiny_hf) -> None:
    assert tiny_hf.labels == ["", "<s>", "</s>", "⁇", " ", "A", "B", "C", "'"]
    assert tiny_hf.sample_rate == 16000
    assert tiny_hf.frame_shift_s == pytest.approx(0.02)
    assert tiny_hf.num_layers == 3


def test_forward_shapes_and_hidden_states(tiny_hf) -> None:
    out = tiny_hf.forward([_noise(16000, 0)], layers=(0, 2))[0]
    # conv stack (10/5, 8/8, 8/8): 3199 -> 399 -> 49 frames
    assert out.logprobs.shape == (49, len(VOCAB))
    np.testing.assert_allclose(np.exp(out.logprobs).sum(axis=1), 1.0, atol=1e-5)
    assert out.hidden[0].shape == (49, 16) and out.hidden[2].shape == (49, 16)


def test_batch_equals_single(tiny_hf) -> None:
    waves = [_noise(16000, 1), _noise(7777, 2), _noise(24321, 3)]
    for wave, out in zip(waves, tiny_hf.forward(waves, layers=(1,))):
        alone = tiny_hf.forward([wave], layers=(1,))[0]
        assert len(out.logprobs) == tiny_hf.output_frames(len(wave))
        np.testing.assert_allclose(out.logprobs, alone.logprobs, atol=1e-4)
        np.testing.assert_allclose(out.hidden[1], alone.hidden[1], atol=1e-4)


def test_forward_long_runs_and_keeps_frame_count(tiny_hf) -> None:
    wave = _noise(5 * 16000, 4)
    full = tiny_hf.forward([wave])[0]
    chunked = forward_long(tiny_hf, wave, chunk_s=2.0, overlap_s=1.0)
    # attention sees the whole input, so only the frame bookkeeping is exact here
    assert chunked.logprobs.shape == full.logprobs.shape
    with pytest.raises(ValueError, match="overlap_s=0.0 is too small"):
        forward_long(tiny_hf, wave, chunk_s=2.0, overlap_s=0.0)


def test_rejects_bad_inputs(tiny_hf) -> None:
    with pytest.raises(ValueError, match="layer 3"):
        tiny_hf.forward([_noise(16000, 0)], layers=(3,))
    with pytest.raises(ValueError, match="at least"):
        tiny_hf.forward([_noise(100, 0)])


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(f"hf:{tmp_path / 'missing'}")
    with pytest.raises(ValueError, match="no config.json"):
        load_model(f"hf:{tmp_path}")


def test_hf_labels_mapping() -> None:
    labels = hf_labels({"[PAD]": 2, "|": 0, "a": 1}, num_classes=4, blank_id=2)
    assert labels == [" ", "a", "", "<unused_3>"]
    with pytest.raises(ValueError, match="blank id 9"):
        hf_labels({"a": 0}, num_classes=2, blank_id=9)


def test_biasable_protocol_and_adapter(tiny_hf) -> None:
    """The representation lm_head reads, the output layer, layer sizes, and an adapter's
    shift through that output layer equal to running it on the changed representation."""
    import torch

    from biasing.adapters import Adapter, AdapterConfig, ContextualAdapter
    from biasing.adapters.adapter import labels_sha1
    from biasing.adapters.units import UnitSpeller

    out = tiny_hf.forward([_noise(16000, 3)], layers=(1, 2), representation=True)[0]
    assert out.representation.shape == (len(out.logprobs), tiny_hf.representation_size)
    with torch.no_grad():
        logits = tiny_hf.output_layer(torch.from_numpy(out.representation))
    np.testing.assert_allclose(torch.log_softmax(logits, -1).numpy(), out.logprobs, atol=1e-5)
    assert [tiny_hf.layer_size(k) for k in (1, 2)] == [16, 16]
    config = AdapterConfig(units="chars", vocab_size=UnitSpeller("chars").vocab_size,
                           layers=(1, 2), layer_sizes=(16, 16),
                           representation_size=tiny_hf.representation_size,
                           num_labels=len(tiny_hf.labels),
                           labels_sha1=labels_sha1(tiny_hf.labels), embed_dim=8,
                           encoder_dim=8, attention_dim=8, mlp_dim=8)
    torch.manual_seed(0)
    module = ContextualAdapter(config)
    torch.nn.init.normal_(module.out.weight, std=0.5)
    adapter = Adapter(module, tiny_hf)
    biased = adapter.bias(out, ["abc", "cab"])
    with torch.no_grad():
        hidden = [torch.from_numpy(out.hidden[k])[None] for k in (1, 2)]
        shift, _ = module(hidden, adapter.vectors(("abc", "cab")))
        full = torch.log_softmax(tiny_hf.output_layer(
            torch.from_numpy(out.representation) + shift[0]), -1).numpy()
    np.testing.assert_allclose(biased.logprobs, full, atol=1e-4)
    assert np.abs(biased.logprobs - out.logprobs).max() > 1e-3
