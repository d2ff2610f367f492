"""Map decoded words back to the entities' original spelling, and say where they are."""

from __future__ import annotations

from .hypothesis import EntityMatch, WordFrames

__all__ = ["EntityMatch", "WordFrames", "respell"]


def respell(words: list[WordFrames], spelling: dict[tuple[str, ...], str], max_words: int,
            ) -> tuple[list[WordFrames], list[EntityMatch]]:
    """Replace runs of words that spell an entity by its original spelling (longest first).

    A run keeps one word per original word when the word counts agree ("new york" ->
    "New", "York"); otherwise it becomes one word spanning the run ("jean luc" ->
    "Jean-Luc").
    """
    out: list[WordFrames] = []
    matches: list[EntityMatch] = []
    i = 0
    while i < len(words):
        for n in range(min(max_words, len(words) - i), 0, -1):
            original = spelling.get(tuple(w for w, _ in words[i:i + n]))
            if original is None:
                continue
            start, end = words[i][1][0], words[i + n - 1][1][1]
            parts = original.split(" ")
            first = len(out)
            if len(parts) == n:
                out.extend((part, frames) for part, (_, frames) in zip(parts, words[i:i + n]))
            else:
                out.append((original, (start, end)))
            matches.append(EntityMatch(original, first, len(out) - 1, start, end))
            i += n
            break
        else:
            out.append(words[i])
            i += 1
    return out, matches
