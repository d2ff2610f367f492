"""Metrics against hand-computed cases, plus invariants fuzzed with hypothesis."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from biasing.metrics import (
    EntityOccurrence,
    aggregate,
    align,
    edit_distance,
    normalize_text,
    score_utterance,
    wer,
)


def _w(text: str) -> list[str]:
    return text.split()


def test_edit_distance() -> None:
    assert edit_distance(_w("a b c"), _w("a b c")) == 0
    assert edit_distance(_w("a b c"), _w("a x c")) == 1  # one substitution
    assert edit_distance(_w("a b c"), _w("a c")) == 1  # one deletion
    assert edit_distance(_w("a b"), _w("x a b y")) == 2  # two insertions
    assert edit_distance([], _w("a b")) == 2


def test_wer_normalises() -> None:
    assert normalize_text("Hello, World! It's 'quoted'") == ["hello", "world", "it's", "quoted"]
    assert wer(["The cat sat.", "on the mat"], ["the cat", "on a mat"]) == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="2 references but 1"):
        wer(["a", "b"], ["a"])


# --- alignment ---------------------------------------------------------------------------

def test_align_operations() -> None:
    assert align(_w("a b c d"), _w("a x c d e")) == [
        ("a", "a", "C"), ("b", "x", "S"), ("c", "c", "C"), ("d", "d", "C"), (None, "e", "I")]
    assert align(_w("a b c d"), _w("a c d")) == [
        ("a", "a", "C"), ("b", None, "D"), ("c", "c", "C"), ("d", "d", "C")]
    assert align([], []) == []
    assert align(["a"], []) == [("a", None, "D")]
    assert align([], ["a"]) == [(None, "a", "I")]


def test_align_tie_breaking() -> None:
    # two substitutions or D, C, I: both two edits; the one with a correct word wins
    assert align(_w("a b"), _w("b c")) == [("a", None, "D"), ("b", "b", "C"),
                                                   (None, "c", "I")]
    # S, I or I, S: settled left to right, substitution first
    assert align(["a"], _w("b c")) == [("a", "b", "S"), (None, "c", "I")]
    # S, D or D, S: substitution first
    assert align(_w("new york"), ["newark"]) == [("new", "newark", "S"), ("york", None, "D")]


# --- word counts -------------------------------------------------------------------------

def test_perfect_match() -> None:
    score = score_utterance("The cat sat.", "the cat sat", ["Cat"])
    assert (score.substitutions, score.deletions, score.insertions, score.errors) == (0, 0, 0, 0)
    assert [op for _, _, op in score.alignment] == ["C", "C", "C"]
    assert (score.entity_tp, score.entity_fn, score.entity_fp) == (1, 0, 0)
    assert score.entities == (EntityOccurrence("Cat", "found", (1, 2), (1, 2)),)
    corpus = aggregate([score])
    assert corpus.wer == 0.0
    assert (corpus.entity_precision, corpus.entity_recall, corpus.entity_f1) == (1.0, 1.0, 1.0)


def test_substitution_deletion_insertion_counts() -> None:
    # ref a b c d e / hyp a x c e f g: b->x (S), d deleted (D), f g inserted (2 I)
    score = score_utterance("a b c d e", "a x c e f g", [])
    assert (score.substitutions, score.deletions, score.insertions) == (1, 1, 2)
    assert aggregate([score]).wer == pytest.approx(4 / 5)


def test_empty_hypothesis() -> None:
    score = score_utterance("a b c", "", ["B"])
    assert (score.substitutions, score.deletions, score.insertions) == (0, 3, 0)
    assert (score.entity_tp, score.entity_fn, score.entity_fp) == (0, 1, 0)
    assert score.entities == (EntityOccurrence("B", "missed", (1, 2), (0, 0)),)
    assert aggregate([score]).wer == 1.0


def test_casing_and_punctuation_are_normalised() -> None:
    score = score_utterance("Hello, World! It's Jean-Luc.", "hello world it's jean luc",
                            ["JEAN-LUC"])
    assert score.errors == 0
    assert score.ref_words == ("hello", "world", "it's", "jean", "luc")
    assert (score.entity_tp, score.entity_fn, score.entity_fp) == (1, 0, 0)
    assert score.entities[0] == EntityOccurrence("JEAN-LUC", "found", (3, 5), (3, 5))


# --- entities ----------------------------------------------------------------------------

def test_multi_word_entity_found() -> None:
    score = score_utterance("we visited New York City", "we visited new york city",
                            ["New York City"])
    assert (score.entity_tp, score.entity_fn, score.entity_fp) == (1, 0, 0)


def test_multi_word_entity_partly_right_is_missed() -> None:
    score = score_utterance("we visited new york city", "we visited new york sitty",
                            ["New York City"])
    assert (score.entity_tp, score.entity_fn, score.entity_fp) == (0, 1, 0)
    assert score.entities == (EntityOccurrence("New York City", "missed", (2, 5), (2, 5)),)


def test_insertion_inside_entity_is_missed() -> None:
    # every entity word is "C", but the hypothesis does not hold the n-gram "new york"
    score = score_utterance("new york", "new big york", ["New York"])
    assert (score.entity_tp, score.entity_fn, score.entity_fp) == (0, 1, 0)
    assert score.entities == (EntityOccurrence("New York", "missed", (0, 2), (0, 3)),)


def test_false_alarms() -> None:
    substituted = score_utterance("i met him today", "i met kim today", ["Kim"])
    assert (substituted.entity_tp, substituted.entity_fn, substituted.entity_fp) == (0, 0, 1)
    assert substituted.entities == (EntityOccurrence("Kim", "false_alarm", (2, 3), (2, 3)),)
    inserted = score_utterance("call me later", "call me kim later", ["Kim"])
    assert (inserted.entity_tp, inserted.entity_fn, inserted.entity_fp) == (0, 0, 1)
    assert inserted.entities == (EntityOccurrence("Kim", "false_alarm", (2, 2), (2, 3)),)
    corpus = aggregate([substituted, inserted])
    # nothing in the references: recall undefined; precision 0/2; F1 = 0 / (0 + 2 + 0)
    assert (corpus.entity_recall, corpus.entity_precision, corpus.entity_f1) == (None, 0.0, 0.0)


def test_entity_said_twice_counts_twice() -> None:
    score = score_utterance("paris is nice and paris is big", "paris is nice and paras is big",
                            ["Paris"])
    assert (score.entity_tp, score.entity_fn, score.entity_fp) == (1, 1, 0)
    assert [e.outcome for e in score.entities] == ["found", "missed"]
    corpus = aggregate([score])
    assert (corpus.entity_precision, corpus.entity_recall) == (1.0, 0.5)
    assert corpus.entity_f1 == pytest.approx(2 * 1.0 * 0.5 / 1.5)


def test_entity_in_both_but_misaligned() -> None:
    # alignment: I paris, C i, C saw, D paris, C yesterday
    score = score_utterance("i saw paris yesterday", "paris i saw yesterday", ["Paris"])
    assert (score.entity_tp, score.entity_fn, score.entity_fp) == (0, 1, 1)
    assert score.entities == (EntityOccurrence("Paris", "false_alarm", (0, 0), (0, 1)),
                              EntityOccurrence("Paris", "missed", (2, 3), (3, 3)))


def test_spellings_that_normalise_alike_count_once() -> None:
    score = score_utterance("in new york", "in new york", ["New York", "new-york", "NEW YORK"])
    assert (score.entity_tp, score.entity_fn, score.entity_fp) == (1, 0, 0)
    assert score.entities[0].entity == "New York"


def test_bad_entities() -> None:
    with pytest.raises(ValueError, match="'!!' has no words"):
        score_utterance("a", "a", ["ok", "!!"])
    with pytest.raises(TypeError, match="the string 'Paris'"):
        score_utterance("a", "a", "Paris")


# --- B-WER / U-WER -----------------------------------------------------------------------

def test_biased_and_unbiased_wer() -> None:
    entities = ["Jean Luc", "Fremont"]  # biasing set: {jean, luc, fremont}
    # alignment: S jean->john, C luc, C lives, C in, I the, C fremont, D california
    first = score_utterance("Jean Luc lives in Fremont, California",
                            "john luc lives in the fremont", entities)
    # biasing reference words: jean luc fremont = 3, errors: S jean = 1
    assert (first.biased_words, first.biased_errors) == (3, 1)
    # other reference words: lives in california = 3, errors: D california + I "the" = 2
    assert (first.unbiased_words, first.unbiased_errors) == (3, 2)
    # an inserted biasing word counts toward B-WER even with no biasing word in the reference
    second = score_utterance("hello world", "hello luc world", entities)
    assert (second.biased_words, second.biased_errors) == (0, 1)
    assert (second.unbiased_words, second.unbiased_errors) == (2, 0)
    assert aggregate([second]).b_wer is None  # no biasing word in the reference
    corpus = aggregate([first, second])
    assert corpus.b_wer == pytest.approx((1 + 1) / (3 + 0))  # 2/3
    assert corpus.u_wer == pytest.approx((2 + 0) / (3 + 2))  # 2/5
    assert corpus.wer == pytest.approx((3 + 1) / (6 + 2))  # 4/8


def test_aggregate_undefined_rates() -> None:
    no_entities = aggregate([score_utterance("a b", "a c", [])])
    assert (no_entities.entity_precision, no_entities.entity_recall,
            no_entities.entity_f1) == (None, None, None)
    assert no_entities.b_wer is None and no_entities.u_wer == 0.5
    all_missed = aggregate([score_utterance("a b", "a c", ["B"])])
    # precision undefined (no entity recognised), recall 0, F1 = 2*0 / (0 + 0 + 1) = 0
    assert (all_missed.entity_precision, all_missed.entity_recall,
            all_missed.entity_f1) == (None, 0.0, 0.0)
    with pytest.raises(ValueError, match="no utterance scores"):
        aggregate([])
    with pytest.raises(ValueError, match="hold no words"):
        aggregate([score_utterance("", "a", [])])


# --- invariants --------------------------------------------------------------------------

_WORDS = st.sampled_from(["a", "b", "c", "d"])
_TEXTS = st.lists(_WORDS, max_size=8).map(" ".join)
_ENTITIES = st.lists(st.lists(_WORDS, min_size=1, max_size=3).map(" ".join), max_size=4)


def _count(words: tuple[str, ...], entities: list[str]) -> int:
    ngrams = {tuple(e.split()) for e in entities}
    return sum(words[i:i + len(g)] == g for g in ngrams for i in range(len(words)))


@given(_TEXTS, _TEXTS, st.sampled_from([" ", ", ", " - ", "! "]), st.booleans())
def test_wer_zero_iff_normalised_texts_equal(ref: str, hyp: str, sep: str, upper: bool) -> None:
    noisy = sep.join(hyp.split())
    noisy = noisy.upper() if upper else noisy
    score = score_utterance(ref, noisy, [])
    assert (score.errors == 0) == (normalize_text(ref) == normalize_text(hyp))
    assert score.errors == edit_distance(normalize_text(ref), normalize_text(hyp))
    assert score_utterance(ref, ref.upper() + ".", []).errors == 0


@given(_TEXTS, _TEXTS)
def test_alignment_covers_both_sides(ref: str, hyp: str) -> None:
    pairs = align(ref.split(), hyp.split())
    assert [r for r, _, _ in pairs if r is not None] == ref.split()
    assert [h for _, h, _ in pairs if h is not None] == hyp.split()
    assert sum(op != "C" for _, _, op in pairs) == edit_distance(ref.split(), hyp.split())
    for r, h, op in pairs:
        assert op == {(True, True): "C" if r == h else "S", (True, False): "D",
                      (False, True): "I"}[(r is not None, h is not None)]


@given(_TEXTS, _TEXTS, _ENTITIES)
def test_entity_counts_match_occurrences(ref: str, hyp: str, entities: list[str]) -> None:
    score = score_utterance(ref, hyp, entities)
    assert score.entity_tp + score.entity_fn == _count(score.ref_words, entities)
    assert score.entity_tp + score.entity_fp == _count(score.hyp_words, entities)
    assert len(score.entities) == score.entity_tp + score.entity_fn + score.entity_fp
    assert score.biased_errors + score.unbiased_errors == score.errors
    assert score.biased_words + score.unbiased_words == len(score.ref_words)
    if score.errors == 0:
        assert score.entity_fn == score.entity_fp == 0
