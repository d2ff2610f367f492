"""WER against hand-computed cases."""

import pytest

from biasing.metrics import edit_distance, normalize_text, wer


def test_edit_distance() -> None:
    assert edit_distance("a b c".split(), "a b c".split()) == 0
    assert edit_distance("a b c".split(), "a x c".split()) == 1  # one substitution
    assert edit_distance("a b c".split(), "a c".split()) == 1  # one deletion
    assert edit_distance("a b".split(), "x a b y".split()) == 2  # two insertions
    assert edit_distance([], "a b".split()) == 2


def test_wer_normalises() -> None:
    assert normalize_text("Hello, World! It's 'quoted'") == ["hello", "world", "it's", "quoted"]
    assert wer(["The cat sat.", "on the mat"], ["the cat", "on a mat"]) == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="2 references but 1"):
        wer(["a", "b"], ["a"])
