"""Word error rate over whitespace-tokenised, normalised text."""

from __future__ import annotations

from collections.abc import Sequence


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between two word sequences (substitutions, deletions,
    insertions all cost 1)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[-1]


def normalize_text(text: str) -> list[str]:
    """Lower-case words; punctuation other than apostrophes inside words removed."""
    cleaned = "".join(c if c.isalnum() or c in "' " else " " for c in text.casefold())
    return [w.strip("'") for w in cleaned.split() if w.strip("'")]


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus WER = (S + D + I) / N over normalised words of paired references and hypotheses."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    errors = words = 0
    for ref, hyp in zip(refs, hyps):
        ref_words = normalize_text(ref)
        errors += edit_distance(ref_words, normalize_text(hyp))
        words += len(ref_words)
    if words == 0:
        raise ValueError("references hold no words")
    return errors / words
