"""Spelling normalised entity text with a model's units."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CHAR_LABELS

from biasing.tokenizer import (
    CharTokenizer,
    LabelTokenizer,
    SentencePieceTokenizer,
    make_tokenizer,
)


def test_characters() -> None:
    tokenizer = CharTokenizer(CHAR_LABELS)
    assert tokenizer.segmentations("ab c") == [[CHAR_LABELS.index(c) for c in "ab c"]]
    assert tokenizer.segmentations("a2") == []
    inventory = tokenizer.inventory
    assert inventory.lower_case and inventory.has_space and "'" in inventory.chars


def test_labels_by_greedy_longest_match() -> None:
    labels = ["▁new", "▁ne", "w", "▁york", "▁y", "y", "o", "r", "k", "▁", ""]
    tokenizer = LabelTokenizer(labels)
    assert tokenizer.segmentations("new york") == [[0, 3]]
    assert tokenizer.segmentations("newyork") == [[0, 5, 6, 7, 8]]  # "▁new", then letters
    assert tokenizer.segmentations("newt") == []  # no "t"
    assert tokenizer.inventory.has_space and "▁" not in tokenizer.inventory.chars


def test_sentencepiece_n_best(spm_model: Path, bpe_labels: list[str]) -> None:
    one = SentencePieceTokenizer(spm_model, bpe_labels, n_best=1).segmentations("zelensky")
    three = SentencePieceTokenizer(spm_model, bpe_labels).segmentations("zelensky")
    assert len(one) == 1 and one[0] == three[0] and 1 < len(three) <= 3
    assert len({tuple(s) for s in three}) == len(three)  # distinct
    pieces = ["".join(bpe_labels[i] for i in seg) for seg in three]
    assert set(pieces) == {"▁zelensky"}  # every segmentation spells the word


def test_sentencepiece_errors(spm_model: Path, bpe_labels: list[str], tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.model"):
        SentencePieceTokenizer(tmp_path / "missing.model", bpe_labels)
    with pytest.raises(TypeError, match="sentencepiece model or its path"):
        SentencePieceTokenizer(42, bpe_labels)
    with pytest.raises(ValueError, match="n_best"):
        SentencePieceTokenizer(spm_model, bpe_labels, n_best=0)


def test_make_tokenizer_picks_by_labels(spm_model: Path, bpe_labels: list[str]) -> None:
    assert isinstance(make_tokenizer(CHAR_LABELS), CharTokenizer)
    assert isinstance(make_tokenizer(bpe_labels), LabelTokenizer)
    assert isinstance(make_tokenizer(bpe_labels, spm_model), SentencePieceTokenizer)
    given = CharTokenizer(CHAR_LABELS)
    assert make_tokenizer(CHAR_LABELS, given) is given
