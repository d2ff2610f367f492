"""How the adapter's entity encoder spells an entity: characters, or sentencepiece pieces.

Ids 0 and 1 are padding and unknown; the rest are the units. Characters are the entity's
text case-folded with accents removed (``"Zelenskyy"`` -> z e l e n s k y y); pieces are
the sentencepiece model's segmentation of that text, its ids shifted by 2.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import numpy as np

__all__ = ["CHARS", "PAD", "UNK", "UnitSpeller", "plain_text"]

PAD, UNK = 0, 1
CHARS = " abcdefghijklmnopqrstuvwxyz0123456789'&-."  # ids 2, 3, ...
MAX_UNITS = 48  # longer spellings are cut (entities are names, not sentences)


def plain_text(text: str) -> str:
    """Case-folded, accents removed, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.replace("’", "'").split())


class UnitSpeller:
    """Entity text -> unit ids for the entity encoder.

    Args:
        units: ``"chars"`` or ``"pieces"``.
        sentencepiece_model: the serialised sentencepiece model (bytes), for ``"pieces"``.

    Raises:
        ValueError: an unknown kind, or pieces without a model.
    """

    def __init__(self, units: str, sentencepiece_model: bytes | None = None) -> None:
        if units not in ("chars", "pieces"):
            raise ValueError(f"adapter units must be 'chars' or 'pieces', got {units!r}")
        self.units = units
        self._index = {c: i + 2 for i, c in enumerate(CHARS)}
        self._processor = None
        if units == "pieces":
            if not sentencepiece_model:
                raise ValueError("adapter units 'pieces' need a sentencepiece model")
            import sentencepiece

            self._processor = sentencepiece.SentencePieceProcessor(
                model_proto=sentencepiece_model)

    @property
    def vocab_size(self) -> int:
        if self._processor is not None:
            return int(self._processor.get_piece_size()) + 2
        return len(CHARS) + 2

    def unit_of_label(self, label: str) -> int:
        """The unit id of a model label spelt like the units (a character, or a piece as
        sentencepiece writes it); ``UNK`` when it is none of them."""
        if self._processor is not None:
            piece = int(self._processor.piece_to_id(label))
            return UNK if piece == self._processor.unk_id() else piece + 2
        return self._index.get(label.casefold(), UNK) if len(label) == 1 else UNK

    def spell(self, text: str) -> list[int]:
        """Unit ids of ``text`` (at least one: an empty spelling is ``[UNK]``)."""
        plain = plain_text(text)
        if self._processor is not None:
            ids = [i + 2 for i in self._processor.encode(plain)]
        else:
            ids = [self._index.get(c, UNK) for c in plain]
        return ids[:MAX_UNITS] or [UNK]

    def batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(N, U) int64 ids, 0-padded, and (N,) lengths."""
        spelt = [self.spell(t) for t in texts]
        lengths = np.array([len(s) for s in spelt], dtype=np.int64)
        ids = np.zeros((len(spelt), int(lengths.max(initial=1))), dtype=np.int64)
        for row, s in zip(ids, spelt):
            row[: len(s)] = s
        return ids, lengths
