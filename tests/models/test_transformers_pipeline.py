"""transformers' ASR pipeline with our decoder: per-call lists through ``decoder_kwargs``,
and no listed name over noise from a random model (built here, no download)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
transformers = pytest.importorskip("transformers", reason="pip install 'ctc-biasing[hf]'")

from biasing import build_biased_decoder
from biasing.models.hf import hf_labels

LETTERS = "ETAONIHSRDLUMWCFGYPBVK'XJQZ"
VOCAB = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4,
         **{c: 5 + i for i, c in enumerate(LETTERS)}}
NAMES = ["Kyiv", "Kaiyo", "Fremont", "Zelenskyy", "Reykjavik"]


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A random 2-layer Wav2Vec2ForCTC over English letters, its processor, our decoder."""
    import torch

    folder: Path = tmp_path_factory.mktemp("w2v")
    (folder / "vocab.json").write_text(json.dumps(VOCAB))
    tokenizer = transformers.Wav2Vec2CTCTokenizer(str(folder / "vocab.json"),
                                                  word_delimiter_token="|")
    extractor = transformers.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000,
                                                      do_normalize=True)
    config = transformers.Wav2Vec2Config(
        vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, conv_dim=(8, 8, 8), conv_stride=(5, 8, 8),
        conv_kernel=(10, 8, 8), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
        pad_token_id=0)
    torch.manual_seed(0)
    model = transformers.Wav2Vec2ForCTC(config).eval()
    labels = hf_labels(tokenizer.get_vocab(), len(VOCAB), blank_id=0)
    return model, tokenizer, extractor, labels


def _pipeline(parts, decoder):  # type: ignore[no-untyped-def]
    model, tokenizer, extractor, _ = parts
    with warnings.catch_warnings():  # "decoding with a pyctcdecode decoder is deprecated"
        warnings.simplefilter("ignore")
        return transformers.pipeline("automatic-speech-recognition", model=model,
                                     tokenizer=tokenizer, feature_extractor=extractor,
                                     decoder=decoder)


def _noise(seconds: float = 3.0) -> np.ndarray:
    return (0.3 * np.random.default_rng(1).standard_normal(int(16000 * seconds))) \
        .astype(np.float32)


def _names_in(text: str) -> list[str]:
    return [n for n in NAMES if n.lower() in text.lower().split()]


def test_lists_go_per_call_and_noise_gets_no_names(parts) -> None:  # type: ignore[no-untyped-def]
    *_, labels = parts
    unchecked = _pipeline(parts, build_biased_decoder(labels, verify_units=False))
    listed = unchecked(_noise(), decoder_kwargs={"entities": NAMES})["text"]
    assert _names_in(listed)  # the list reached the decoder: boosting alone writes names
    assert not _names_in(unchecked(_noise(), decoder_kwargs={"entities": []})["text"])
    pipe = _pipeline(parts, build_biased_decoder(labels))
    assert _names_in(pipe(_noise(), decoder_kwargs={"entities": NAMES})["text"]) == []
    for seed in range(3):  # other noise, other lengths
        noise = (0.5 * np.random.default_rng(seed).standard_normal(16000 * (2 + seed)))
        text = pipe(noise.astype(np.float32), decoder_kwargs={"entities": NAMES})["text"]
        assert _names_in(text) == []
