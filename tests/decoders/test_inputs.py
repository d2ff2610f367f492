"""Bad inputs get clear errors, other inputs are converted as pyctcdecode converts them;
hypothesis fuzzes shapes, values and entity lists."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import CHAR_LABELS, char_logprobs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from biasing import EntityList, build_biased_decoder
from biasing.decoders.inputs import to_logprobs

DECODER = build_biased_decoder(CHAR_LABELS)
V = len(CHAR_LABELS)


def _normalise(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("logits, message", [
    (np.zeros((10,)), r"shape \(10,\), but need \(frames, 29\)"),
    (np.zeros((10, 28)), r"shape \(10, 28\)"),
    (np.zeros((2, 10, 29)), r"shape \(2, 10, 29\)"),
    (np.zeros((10, 29), dtype=complex), "dtype complex128, expected numbers"),
    (np.full((3, 29), -np.inf), "frame 0 has no finite value"),
])
def test_bad_logits(logits: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DECODER.decode(logits)


def test_probabilities_raw_logits_and_integers_are_converted() -> None:
    logprobs = _normalise(char_logprobs("the city").astype(np.float64))
    said = DECODER.decode(logprobs)
    assert said == "the city"
    # probabilities (rows sum to 1, to within 1e-9 on average): their log is taken
    np.testing.assert_allclose(to_logprobs(np.exp(logprobs)), logprobs, atol=1e-12)
    assert DECODER.decode(np.exp(logprobs)) == said
    # raw logits (anything else): log_softmax
    np.testing.assert_allclose(to_logprobs(3.0 * logprobs + 7.0),
                               3.0 * logprobs - np.log(np.exp(3.0 * logprobs).sum(1))[:, None],
                               atol=1e-12)
    assert DECODER.decode(3.0 * logprobs + 7.0) == said
    # integers, as one-hot "probabilities" and as scores
    one_hot = (logprobs == logprobs.max(axis=1, keepdims=True)).astype(np.int64)
    assert DECODER.decode(one_hot) == said
    assert DECODER.decode(one_hot * 20) == said
    assert to_logprobs(one_hot).max() == 0.0 and to_logprobs(one_hot).min() == np.log(1e-15)


def test_labels_without_the_blank_are_caught() -> None:
    no_blank = CHAR_LABELS[:-1]
    decoder = build_biased_decoder(no_blank)  # pyctcdecode appends one; the logits say so
    with pytest.raises(ValueError, match="had no CTC blank.*index your model uses"):
        decoder.decode(char_logprobs("the city")[:, :-1])
    # the blank at the wrong index: the "blank" is almost never best, another label almost
    # always is (CTC output is mostly blanks)
    spoken = char_logprobs("we met in the city today")
    blank = spoken[:1]
    ctc_like = np.concatenate([np.concatenate([row[None]] + [blank] * 3)
                               if row.argmax() == V - 1 else row[None] for row in spoken])
    assert DECODER.decode(ctc_like) == "we met in the city today"
    wrong = [""] + CHAR_LABELS[:-1]
    with pytest.warns(UserWarning, match=r"label \"'\" \(index 28\) is the best label in 6"):
        build_biased_decoder(wrong).decode(ctc_like)


def test_nan_and_inf() -> None:
    logprobs = char_logprobs("abc").astype(np.float64)
    logprobs[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN or \\+inf \\(first at frame 3\\)"):
        DECODER.decode(logprobs)
    logprobs[3, 4] = -np.inf  # log(0) is a valid log-probability
    logprobs[3] = _normalise(logprobs[3:4])[0]
    assert DECODER.decode(logprobs) == "abc"
    assert DECODER.decode(logprobs, entities=["abc"]) == "abc"


def test_not_an_array() -> None:
    with pytest.raises(TypeError, match="numpy array"):
        DECODER.decode([[0.0] * V])


def test_torch_tensor_is_accepted() -> None:
    torch = pytest.importorskip("torch", reason="torch is an optional extra")
    logprobs = char_logprobs("fremont")
    assert DECODER.decode(torch.from_numpy(logprobs)) == DECODER.decode(logprobs)


def test_zero_frames() -> None:
    assert DECODER.decode(np.zeros((0, V), dtype=np.float32), entities=["Fremont"]) == ""


def test_bad_options_and_labels() -> None:
    with pytest.raises(TypeError, match="unknown option.*boost_everything"):
        build_biased_decoder(CHAR_LABELS, boost_everything=True)
    with pytest.raises(ValueError, match="unit_bonus must be"):
        build_biased_decoder(CHAR_LABELS, unit_bonus=-1.0)
    with pytest.raises(ValueError, match="duplicates"):
        build_biased_decoder(["a", "a", ""])
    with pytest.raises(FileNotFoundError, match="missing.arpa"):
        build_biased_decoder(CHAR_LABELS, kenlm_model_path="missing.arpa")
    with pytest.raises(ValueError, match="beam_width"):
        DECODER.decode(char_logprobs("a"), beam_width=0)


def test_unrepresentable_entities() -> None:
    with pytest.raises(ValueError, match=r"'R2-D2' \('2'\).*'AT&T' \('&'\)"):
        DECODER.decode(char_logprobs("a"), entities=["R2-D2", "Fremont", "AT&T"])
    skipping = EntityList(["R2-D2", "Fremont"], on_unrepresentable="skip")
    with pytest.warns(UserWarning, match="R2-D2"):
        compiled = DECODER.compile(skipping)
    assert compiled.skipped == ("R2-D2",)
    assert DECODER.decode(char_logprobs("fremont"), entities=skipping) == "Fremont"


_texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
                 min_size=0, max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    logits=st.integers(0, 25).flatmap(lambda t: arrays(
        np.float32, (t, V), elements=st.floats(-30, 5, width=32))),
    entities=st.lists(_texts, max_size=8),
)
def test_fuzz_never_crashes_unclearly(logits: np.ndarray, entities: list[str]) -> None:
    logprobs = _normalise(logits.astype(np.float64)) if len(logits) else logits
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # skipped entries are announced
            text = DECODER.decode(logprobs, entities=EntityList(entities,
                                                                on_unrepresentable="skip"))
    except ValueError as error:
        assert str(error).startswith("entity #")  # names the entry
        return
    assert isinstance(text, str)
    assert set(text.casefold()) <= set("".join(CHAR_LABELS) + "".join(entities).casefold())


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(alphabet="abcdefghABCF '", min_size=1, max_size=12), max_size=40))
def test_fuzz_lists_of_representable_names(names: list[str]) -> None:
    # Clean, confident speech comes out as said whatever the list holds: a listed name may
    # change the spelling of words that are said (case), never the words.
    said = "a bad cafe had a face"
    try:
        entities = EntityList(names)
    except ValueError:
        return  # whitespace-only names
    text = DECODER.decode(char_logprobs(said), entities=entities)
    assert text.casefold() == said
    listed = {e.text.casefold() for e in entities}
    changed = [w for w, s in zip(text.split(), said.split()) if w != s]
    assert all(any(w.casefold() in name.split() for name in listed) for w in changed)
