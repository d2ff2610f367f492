"""The decoder's alphabet: a model's labels in pyctcdecode's conventions.

Labels are normalised exactly as pyctcdecode 0.5.0 does it, so a label list means the same
to both decoders and a saved ``alphabet.json`` reads in either:

- a vocabulary is *BPE style* when a label starts with ``"▁"`` or ``"##"`` (``"##"`` pieces
  are rewritten to ``"▁"`` style: ``"##ab"`` -> ``"ab"``, ``"ab"`` -> ``"▁ab"``);
- ``"<pad>"``/``"[pad]"`` is the CTC blank ``""``; for character vocabularies ``"|"`` becomes the
  space when there is no ``" "``, and ``"_"`` the blank when there is no ``""``;
- ``"<unk>"``/``"[unk]"`` becomes ``"⁇"`` (characters) or ``"▁⁇▁"`` (BPE);
- a vocabulary without a blank gets one appended (then the model's logits have one column
  fewer than the alphabet, which the decoder reports).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BPE_TOKEN", "UNK_BPE_TOKEN", "UNK_TOKEN", "Alphabet", "build_alphabet"]

BPE_TOKEN = "▁"  # starts a word in BPE-style vocabularies
UNK_TOKEN = "⁇"  # the unknown token of a character vocabulary
UNK_BPE_TOKEN = "▁⁇▁"  # the unknown token of a BPE vocabulary (a word by itself)
_SPECIAL = re.compile(r"^[<\[].+[>\]]$")
_BLANK = re.compile(r"^[<\[]pad[>\]]$", flags=re.IGNORECASE)
_UNK = re.compile(r"^[<\[]unk[>\]]$", flags=re.IGNORECASE)


@dataclass(frozen=True)
class Alphabet:
    """Normalised labels and whether they are BPE style (see the module docs)."""

    labels: tuple[str, ...]  # one per model output, "" = blank
    is_bpe: bool  # "▁" starts a word (else " " separates words)
    appended_blank: bool = False  # the blank was not in the model's labels: it was appended

    @property
    def blank(self) -> int:
        """Index of the CTC blank."""
        return self.labels.index("")

    def dumps(self) -> str:
        """pyctcdecode's ``alphabet.json`` content."""
        return json.dumps({"labels": list(self.labels), "is_bpe": self.is_bpe})

    @classmethod
    def loads(cls, text: str) -> Alphabet:
        """Read :meth:`dumps` output (or pyctcdecode's).

        Raises:
            ValueError: not JSON, or not exactly the keys ``labels`` and ``is_bpe``.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"alphabet is not valid JSON: {err}") from err
        if not isinstance(data, dict) or set(data) != {"labels", "is_bpe"}:
            raise ValueError(f"alphabet JSON must have exactly the keys 'labels' and 'is_bpe', "
                             f"got {sorted(data) if isinstance(data, dict) else type(data)}")
        labels = data["labels"]
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ValueError("alphabet JSON 'labels' must be a list of strings")
        return cls(tuple(labels), bool(data["is_bpe"]))


def build_alphabet(labels: Sequence[str]) -> Alphabet:
    """Normalise a model's labels (see the module docs).

    Raises:
        TypeError: ``labels`` is not a non-empty sequence of strings.
        ValueError: duplicate labels, or a BPE-style vocabulary with a ``" "`` label.
    """
    if isinstance(labels, str) or not labels or not all(isinstance(x, str) for x in labels):
        raise TypeError("labels must be a non-empty list of strings (one per model output)")
    labels = list(labels)
    is_bpe = any(x.startswith(("##", BPE_TOKEN)) for x in labels)
    if len(set(labels)) != len(labels):
        duplicates = sorted({x for x in labels if labels.count(x) > 1})
        raise ValueError(f"labels contain duplicates: {duplicates}")
    if is_bpe and any(" " in x for x in labels):
        raise ValueError("labels look like BPE pieces (some start with '▁' or '##') but one "
                         "contains a space ' '")
    out = _bpe_labels(labels) if is_bpe else _char_labels(labels)
    appended = "" not in out
    if appended:
        out.append("")
    unk = UNK_BPE_TOKEN if is_bpe else UNK_TOKEN
    out = [unk if _UNK.match(x) else x for x in out]
    return Alphabet(tuple(out), is_bpe, appended)


def _char_labels(labels: list[str]) -> list[str]:
    out = list(labels)
    if "|" in out and " " not in out:
        out[out.index("|")] = " "
    out = ["" if _BLANK.match(x) else x for x in out]
    if "_" in out and "" not in out:
        out[out.index("_")] = ""
    return out


def _bpe_labels(labels: list[str]) -> list[str]:
    out = list(labels)
    if any(x.startswith("##") for x in labels):
        out = [_from_wordpiece(x) for x in out]
    return ["" if _BLANK.match(x) else x for x in out]


def _from_wordpiece(token: str) -> str:
    """``"##ab"`` (continues a word) -> ``"ab"``; ``"ab"`` (starts one) -> ``"▁ab"``."""
    if token.startswith("##"):
        return token[2:]
    if _SPECIAL.match(token) or token in ("", BPE_TOKEN, UNK_BPE_TOKEN):
        return token
    return BPE_TOKEN + token
