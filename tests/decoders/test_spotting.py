"""The token-passing spotter and the replace-if-better rule."""

from __future__ import annotations

import numpy as np

from biasing.decoders.lookup import apply_placements, covered_words, greedy_words, place_spots
from biasing.decoders.respell import EntityMatch
from biasing.decoders.spotting import Spot, SpotOptions, UnitTrie, spot


def _peaky(path: list[int], classes: int, peak: float = 0.96) -> np.ndarray:
    out = np.full((len(path), classes), (1 - peak) / (classes - 1))
    out[np.arange(len(path)), path] = peak
    return np.log(out)


def test_trie_shares_prefixes_and_keeps_every_key() -> None:
    trie = UnitTrie([(0, [1, 2]), (1, [1, 2, 3]), (2, [1, 2])])
    assert len(trie) == 4  # root, 1, 1-2, 1-2-3
    assert sorted(trie.ends[2]) == [(0, (1, 2)), (2, (1, 2))]
    which, kids = trie.children(np.array([0, 1]))
    assert which.tolist() == [0, 1] and kids.tolist() == [1, 2]


def test_spots_sequences_where_they_are_said() -> None:
    path = [0, 1, 1, 0, 2, 0, 0, 3, 3, 0, 0, 4, 0]
    found = spot(_peaky(path, 5), 0, UnitTrie([(7, [1, 2, 3]), (8, [2, 3]), (9, [3, 1])]))
    best = {s.key: s for s in found if s.score > -1}
    assert (best[7].start, best[7].end) == (1, 8)
    assert (best[8].start, best[8].end) == (4, 8)
    assert 9 not in best  # never said in that order


def test_repeated_unit_needs_a_blank_between() -> None:
    said_once = _peaky([0, 1, 1, 1, 0], 3)
    found = spot(said_once, 0, UnitTrie([(0, [1, 1])]), SpotOptions(unit_bonus=0, max_cost=1))
    assert found == []


def test_blank_gate_and_silence() -> None:
    silence = _peaky([0] * 30, 5, peak=0.99)
    assert spot(silence, 0, UnitTrie([(0, [1, 2])])) == []
    # low confidence: blank 0.7 everywhere, the rest flat: each unit costs 2.2 nats a
    # frame, more than its bonus, so a long entry runs out of allowance
    flat = np.full((40, 5), 0.3 / 4)
    flat[:, 0] = 0.7
    assert spot(np.log(flat), 0, UnitTrie([(0, [1, 2, 3, 4])])) == []


def test_many_entries_and_no_entries() -> None:
    rng = np.random.default_rng(0)
    sequences = [(i, [int(u) for u in rng.integers(1, 40, size=6)]) for i in range(5000)]
    trie = UnitTrie(sequences)
    said = [0] + [u for u in sequences[1234][1] for u in (u, 0)]
    found = spot(_peaky(said, 41, peak=0.99), 0, trie)
    assert found[0].key == 1234
    assert spot(_peaky(said, 41), 0, UnitTrie([])) == []


def test_covered_words_and_placement() -> None:
    words = [("call", (0, 10)), ("amles", (12, 20)), ("ran", (22, 26)), ("now", (40, 46))]
    assert covered_words(words, 11, 27) == (1, 3)
    assert covered_words(words, 30, 36) == (3, 3)  # a pause: an insertion point
    spots = [Spot(0, (1, 2), 11, 27, -1.0), Spot(1, (3,), 12, 18, -0.5)]
    gains = {0: 5.0, 1: 1.0}
    chosen = place_spots(words, spots, lambda s, covered, a, b: gains[s.key], margin=0.5)
    assert [p.spot.key for p in chosen] == [0]  # overlapping: the larger gain wins
    new_words, matches = apply_placements(
        words, [EntityMatch("Now", 3, 3, 40, 46)], chosen, ["Anne Lise", "x"], "lookup")
    assert [w for w, _ in new_words] == ["call", "Anne", "Lise", "now"]
    assert [(m.text, m.first_word, m.last_word, m.technique) for m in matches] == [
        ("Anne Lise", 1, 2, "lookup"), ("Now", 3, 3, "boost")]
    assert place_spots(words, spots, lambda *a: 0.0, margin=0.5) == []


def test_greedy_words_for_characters_and_pieces() -> None:
    chars = [" ", "a", "b", ""]
    path = [3, 1, 1, 3, 1, 0, 0, 2, 3]  # "aa" (blank between), space, "b"
    assert greedy_words(_peaky(path, 4), chars, is_bpe=False) == [("aa", (1, 5)), ("b", (7, 8))]
    pieces = ["▁the", "re", "▁cat", ""]
    path = [3, 0, 1, 3, 2, 2]
    assert greedy_words(_peaky(path, 4), pieces, is_bpe=True) == [("there", (1, 3)),
                                                                   ("cat", (4, 6))]
