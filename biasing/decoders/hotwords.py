"""pyctcdecode's hotwords, for drop-in use: words that score extra wherever they appear.

A completed hotword adds ``weight`` each time it occurs in a beam's text (whole words,
regex over the text); a partial word that starts a hotword adds ``weight * len(part) /
len(shortest hotword it starts)``. Multi-word hotwords count word by word. This is
pyctcdecode 0.5.0's ``HotwordScorer`` behaviour, kept so that ``hotwords=`` means the same
here; the entity list (context graph) is this package's own, stronger mechanism.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["DEFAULT_HOTWORD_WEIGHT", "HotwordScorer"]

DEFAULT_HOTWORD_WEIGHT = 10.0


class HotwordScorer:
    """Scores of the hotwords in text and in a word being spelled."""

    def __init__(self, hotwords: Iterable[str] | None = None,
                 weight: float = DEFAULT_HOTWORD_WEIGHT) -> None:
        unigrams = [w for phrase in (hotwords or []) if phrase.strip()
                    for w in phrase.strip().split()]
        self.weight = weight
        self._pattern = re.compile("|".join(
            r"(?<!\S)" + re.escape(w) + r"(?!\S)" for w in sorted(unigrams, key=len, reverse=True)
        )) if unigrams else None
        # prefix -> length of the first (shortest) hotword it starts
        self._shortest: dict[str, int] = {}
        for word in sorted(unigrams, key=len):
            for end in range(len(word) + 1):
                self._shortest.setdefault(word[:end], len(word))

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __contains__(self, part: str) -> bool:
        """Whether ``part`` starts a hotword."""
        return part in self._shortest

    def score(self, text: str) -> float:
        """``weight`` per hotword occurrence in ``text``."""
        if self._pattern is None:
            return self.weight * 0
        return self.weight * len(self._pattern.findall(text))

    def score_partial_token(self, part: str) -> float:
        """The share of a hotword ``part`` has spelled (0 when it starts none)."""
        length = self._shortest.get(part)
        return 0.0 if length is None else self.weight * len(part) / length
