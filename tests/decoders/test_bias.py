"""The bias scorer alone: what each unit earns, give-back, completion, short names,
failure links across words, multi-word entities, weights."""

from __future__ import annotations

import pytest
from conftest import CHAR_LABELS

from biasing.decoders.bias import BiasScorer, BiasState
from biasing.decoders.compile import compile_entities
from biasing.decoders.options import Boosting
from biasing.entities import EntityList
from biasing.tokenizer import CharTokenizer

SPACE = CHAR_LABELS.index(" ")
OPTIONS = {"weight": 1.0, "unit_bonus": 0.3, "adaptive_scale": 0.5, "max_adaptive": 2.0,
           "completion_bonus": 2.0, "full_bonus_chars": 5}


def _scorer(entities: list, **changes: float) -> BiasScorer:
    compiled = compile_entities(EntityList(entities), CharTokenizer(CHAR_LABELS), CHAR_LABELS,
                                is_bpe=False)
    settings = {**OPTIONS, **changes}
    weight = settings.pop("weight")
    return BiasScorer(compiled, weight, Boosting(**settings))  # type: ignore[arg-type]


def _walk(scorer: BiasScorer, text: str, gap: float = 0.0,
          state: BiasState | None = None) -> tuple[float, BiasState]:
    """Emit ``text`` (a space is the boundary); the total bonus and the final state."""
    state = scorer.start if state is None else state
    total = 0.0
    for char in text:
        unit = CHAR_LABELS.index(char)
        bonus, state = scorer.advance(state, unit, 0.0 if unit == SPACE else gap)
        total += bonus
    return total, state


def test_each_unit_earns_the_static_and_adaptive_bonus() -> None:
    scorer = _scorer(["fremont"])
    assert scorer.gain(0.0) == pytest.approx(0.3)
    assert scorer.gain(1.0) == pytest.approx(0.8)
    assert scorer.gain(10.0) == pytest.approx(2.3)  # the adaptive part is capped
    total, state = _walk(scorer, "fre", gap=1.0)
    assert total == pytest.approx(3 * 0.8) and state.partial == pytest.approx(3 * 0.8)
    assert scorer.inside(state)


def test_a_completed_entity_keeps_its_bonus_and_earns_the_completion() -> None:
    scorer = _scorer(["fremont"])
    total, state = _walk(scorer, "fremont ")
    assert total == pytest.approx(7 * 0.3 + 2.0)
    assert state.partial == 0.0  # committed
    assert scorer.finalize(state) == 0.0


def test_a_broken_path_gives_everything_back() -> None:
    scorer = _scorer(["fremont"])
    total, state = _walk(scorer, "frem")
    assert total == pytest.approx(4 * 0.3)
    give_back, state = scorer.advance(state, CHAR_LABELS.index("x"), 0.0)
    assert give_back == pytest.approx(-4 * 0.3) and state == (0, 0.0)
    # an utterance ending inside an entity gives it back too
    total, state = _walk(scorer, "fremon")
    assert total + scorer.finalize(state) == pytest.approx(0.0)
    # ... and so does a word that is longer than the entity ("fremonts")
    total, state = _walk(scorer, "fremonts ")
    assert total == pytest.approx(0.0)


def test_short_names_earn_a_smaller_completion() -> None:
    total, _ = _walk(_scorer(["ann"]), "ann ")
    assert total == pytest.approx(3 * 0.3 + 2.0 * 3 / 5)
    total, _ = _walk(_scorer(["ann"], full_bonus_chars=0), "ann ")
    assert total == pytest.approx(3 * 0.3 + 2.0)


def test_failure_links_resume_matching_across_words() -> None:
    # "new york" breaks off at "new jersey", whose " jersey" may still complete "jersey"
    scorer = _scorer(["new york", "jersey"])
    total, _ = _walk(scorer, "new jersey ")
    assert total == pytest.approx(6 * 0.3 + 2.0)  # "new" given back, "jersey" kept
    # a multi-word entity earns one completion, after its last word
    total, _ = _walk(scorer, "new york ")
    assert total == pytest.approx(7 * 0.3 + 2.0)


def test_weights_scale_units_and_completion() -> None:
    plain, _ = _walk(_scorer(["fremont"]), "fremont ")
    heavy, _ = _walk(_scorer([("fremont", 2.0)]), "fremont ")
    assert heavy == pytest.approx(2 * plain)
    half, _ = _walk(_scorer(["fremont"], weight=0.5), "fremont ")
    assert half == pytest.approx(plain / 2)


def test_continuations_are_the_next_units_of_started_entities() -> None:
    scorer = _scorer(["fremont", "frank"])
    _, state = _walk(scorer, "fr")
    assert sorted(CHAR_LABELS[u] for u in scorer.continuations(state)) == ["a", "e"]
    _, outside = _walk(scorer, " ")
    assert not scorer.inside(outside)


def test_words_are_interned_with_their_history() -> None:
    from biasing.decoders.search import Words

    words = Words(history=2)
    a = words.add(0, "we")
    b = words.add(a, "met")
    assert words.add(a, "met") == b and words.add(b, "") == b
    c = words.add(b, "fremont")
    assert words.text(c) == "we met fremont"
    assert words.tail[c] == ("met", "fremont") and words.tail[a] == ("we",)
    assert words.parent[c] == b and words.word[c] == "fremont"
