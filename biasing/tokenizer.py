"""Spell normalised entity text with a model's own output units.

Three tokenizers share one small surface (:class:`Tokenizer`):

- :class:`CharTokenizer` for character vocabularies (``" "`` between words);
- :class:`SentencePieceTokenizer` for sentencepiece vocabularies, with several
  segmentations per entity (n-best), since an acoustic model may spell a rare word with
  pieces other than the tokenizer's first choice;
- :class:`LabelTokenizer` for ``"▁"``-style subword labels without a sentencepiece model
  (greedy longest match over the labels).

All return label indices in the decoder's label list (pyctcdecode convention).
"""

from __future__ import annotations

import os
import re
from typing import Any, Protocol

from .entities import UnitInventory

BPE_MARK = "▁"


class Tokenizer(Protocol):
    """Spells normalised text as label-index sequences."""

    inventory: UnitInventory  # what the labels can spell

    def segmentations(self, text: str) -> list[list[int]]:
        """Label-index sequences spelling ``text`` (normalised, words split by one space).

        Returns an empty list when the units cannot spell it.
        """
        ...


_SPECIAL = re.compile(r"^[<\[].+[>\]]$")  # "<s>", "</s>", "[PAD]": never spoken


def _inventory(labels: list[str]) -> UnitInventory:
    spoken = [label for label in labels if not _SPECIAL.match(label)]
    chars = frozenset("".join(spoken).replace(BPE_MARK, "").replace("⁇", "").replace(" ", ""))
    letters = [c for c in chars if c.isalpha()]
    lower = not any(c.isupper() for c in letters)
    upper = bool(letters) and not any(c.islower() for c in letters)
    has_space = " " in labels or any(label.startswith(BPE_MARK) for label in labels)
    return UnitInventory(chars=chars, lower_case=lower, has_space=has_space, upper_case=upper)


class CharTokenizer:
    """One label per character; ``" "`` separates words."""

    def __init__(self, labels: list[str]) -> None:
        self._index = {label: i for i, label in enumerate(labels) if label}
        self.inventory = _inventory(labels)

    def segmentations(self, text: str) -> list[list[int]]:
        try:
            return [[self._index[c] for c in text]]
        except KeyError:
            return []


class LabelTokenizer:
    """Greedy longest-match segmentation over ``"▁"``-style subword labels."""

    def __init__(self, labels: list[str]) -> None:
        self._index = {label: i for i, label in enumerate(labels) if label}
        self._sizes = sorted({len(label) for label in self._index}, reverse=True)
        self.inventory = _inventory(labels)

    def segmentations(self, text: str) -> list[list[int]]:
        ids: list[int] = []
        index = self._index
        for word in text.split(" "):
            rest = BPE_MARK + word
            start, end = 0, len(rest)
            while start < end:
                for size in self._sizes:
                    unit = index.get(rest[start:start + size]) if start + size <= end else None
                    if unit is not None:
                        ids.append(unit)
                        start += size
                        break
                else:
                    return []
        return [ids]


class SentencePieceTokenizer:
    """Segment with a sentencepiece model; ``n_best`` segmentations per entity.

    Args:
        model: a ``sentencepiece.SentencePieceProcessor`` or the path of a ``.model`` file.
        labels: the decoder's labels; every piece an entity uses must be one of them.
        n_best: how many distinct segmentations to keep per entity (1 = the model's first
            choice only). Default 3.
    """

    def __init__(self, model: Any, labels: list[str], n_best: int = 3) -> None:
        import sentencepiece as spm

        if isinstance(model, (str, os.PathLike)):
            from .readers import check_file

            path = check_file(model, "tokenizer model")
            processor = spm.SentencePieceProcessor()
            try:
                processor.Load(str(path))
            except (RuntimeError, OSError) as err:
                raise ValueError(f"cannot read the sentencepiece model {path}: "
                                 f"{str(err).strip()}") from None
            model = processor
        if not hasattr(model, "NBestEncodeAsPieces"):
            raise TypeError(
                f"tokenizer must be a sentencepiece model or its path, got {type(model).__name__}")
        if n_best < 1:
            raise ValueError(f"n_best must be >= 1, got {n_best}")
        self._sp = model
        self._n_best = n_best
        self._index = {label: i for i, label in enumerate(labels) if label}
        self.inventory = _inventory(labels)

    def segmentations(self, text: str) -> list[list[int]]:
        if self._n_best == 1:
            candidates = [self._sp.EncodeAsPieces(text)]
        else:
            candidates = self._sp.NBestEncodeAsPieces(text, self._n_best)
        out: list[list[int]] = []
        for pieces in candidates:
            ids = [self._index.get(piece, -1) for piece in pieces]
            if ids and -1 not in ids and ids not in out:
                out.append(ids)
        return out


def make_tokenizer(labels: list[str], tokenizer: Any = None) -> Tokenizer:
    """Choose the tokenizer for a label list: sentencepiece if given, else from the labels."""
    if tokenizer is not None:
        if hasattr(tokenizer, "segmentations") and hasattr(tokenizer, "inventory"):
            return tokenizer  # type: ignore[no-any-return]
        return SentencePieceTokenizer(tokenizer, labels)
    if any(label.startswith(BPE_MARK) for label in labels):
        return LabelTokenizer(labels)
    return CharTokenizer(labels)
