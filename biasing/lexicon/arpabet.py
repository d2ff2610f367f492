"""The ARPAbet phone set (CMUdict's), parsing and validating pronunciations.

A word's pronunciation is a tuple of ARPAbet phones (:data:`Phones`), vowels with a stress
digit (``"AH0"``, ``"IY1"``) or without one when the stress is unknown (``"AH"``). An
entity's pronunciation is one :data:`Phones` per word (:data:`Pronunciation`), written in
text as phones separated by spaces and words separated by ``" | "``::

    >>> parse_pronunciation("N UW1 | Y AO1 R K")
    (('N', 'UW1'), ('Y', 'AO1', 'R', 'K'))
    >>> strip_stress(("Z", "EH0", "L", "EH1", "N", "S", "K", "IY0"))
    ('Z', 'EH', 'L', 'EH', 'N', 'S', 'K', 'IY')
"""

from __future__ import annotations

from collections.abc import Iterable

Phones = tuple[str, ...]
Pronunciation = tuple[Phones, ...]

VOWELS = frozenset(["AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW",
                    "OY", "UH", "UW"])
CONSONANTS = frozenset(["B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG",
                        "P", "R", "S", "SH", "T", "TH", "V", "W", "Y", "Z", "ZH"])
# the 39 stressless phones, in a fixed order (indices are stable across versions)
BASE_PHONES: tuple[str, ...] = tuple(sorted(VOWELS | CONSONANTS))
PHONES = frozenset(BASE_PHONES) | frozenset(v + s for v in VOWELS for s in "012")
WORD_BOUNDARY = "|"


def strip_stress(phones: Iterable[str]) -> Phones:
    """Drop the stress digits: ``("AH0", "B")`` -> ``("AH", "B")``."""
    return tuple(p.rstrip("012") for p in phones)


def check_phones(phones: Iterable[str], where: str) -> Phones:
    """Validate ARPAbet phones; ``where`` names the entry in the error message."""
    out = tuple(phones)
    if not out:
        raise ValueError(f"{where}: empty pronunciation")
    for phone in out:
        if phone not in PHONES:
            hint = ""
            if phone.upper() in PHONES:
                hint = f" (ARPAbet phones are upper-case: {phone.upper()!r})"
            elif phone.rstrip("012") in CONSONANTS:
                hint = f" (consonants carry no stress digit: {phone.rstrip('012')!r})"
            raise ValueError(
                f"{where}: {phone!r} is not an ARPAbet phone{hint}; expected one of "
                f"{' '.join(BASE_PHONES)}, vowels optionally with stress 0/1/2")
    return out


def parse_pronunciation(text: str, where: str = "pronunciation") -> Pronunciation:
    """Parse ``"P1 P2 | P3 P4"`` (words separated by ``|``) into per-word phone tuples."""
    words = text.split(WORD_BOUNDARY)
    return tuple(check_phones(word.split(), f"{where} (word {i + 1} of {text.strip()!r})"
                              if len(words) > 1 else f"{where} ({text.strip()!r})")
                 for i, word in enumerate(words))


def format_pronunciation(pronunciation: Pronunciation) -> str:
    """Inverse of :func:`parse_pronunciation`."""
    return f" {WORD_BOUNDARY} ".join(" ".join(word) for word in pronunciation)
