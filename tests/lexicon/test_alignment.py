"""EM letter-phone alignment: sensible chunks, caching, options."""

from __future__ import annotations

from pathlib import Path

import pytest

from biasing.lexicon import AlignmentOptions, align_word, alignment, load_alignment


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("alignment")


SMALL = AlignmentOptions(words=5000, iterations=4)


def test_alignment_finds_the_usual_chunks() -> None:
    table = load_alignment()
    phoenix = align_word("phoenix", ("F", "IY1", "N", "IH0", "K", "S"), table)
    assert phoenix[0] == ("ph", ("F",)) and phoenix[-1] == ("x", ("K", "S"))
    assert "".join(g for g, _ in align_word("knight", ("N", "AY1", "T"), table)) == "knight"
    counts = dict(zip(table.pairs, table.unigrams))
    assert counts[("e", ())] > 100  # silent e
    with pytest.raises(ValueError, match="cannot align"):
        align_word("a", ("K", "S", "T"), table)


def test_table_is_trained_once_and_cached(table_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_alignment(SMALL, cache_dir=table_dir)
    assert len(list(table_dir.glob("alignment-*.json"))) == 1

    def no_training(options: AlignmentOptions) -> None:
        raise AssertionError("a cached table was trained again")

    with monkeypatch.context() as patch:
        patch.setattr(alignment, "train_alignment", no_training)
        again = load_alignment(SMALL, cache_dir=table_dir)
    assert again == first
    other = load_alignment(AlignmentOptions(words=5000, iterations=4, seed=1),
                           cache_dir=table_dir)
    assert other.key != first.key


def test_damaged_cache_is_retrained(table_dir: Path) -> None:
    table = load_alignment(SMALL, cache_dir=table_dir)
    (path,) = [p for p in table_dir.glob("alignment-*.json") if table.key[:16] in p.name]
    path.write_text("{not json", encoding="utf-8")
    assert load_alignment(SMALL, cache_dir=table_dir) == table


@pytest.mark.parametrize("bad", [{"words": 10}, {"iterations": 0}, {"max_letters": 1}])
def test_bad_options(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="AlignmentOptions"):
        AlignmentOptions(**bad)
