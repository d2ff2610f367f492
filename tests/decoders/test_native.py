"""The compiled core against the Python reference: the same beams (texts, word frames,
scores) on the golden fixtures and on random inputs, with and without lists, LM,
forcing and history pruning; the context graph's links and bonuses; threads; and the
Python core with one warning when the core is not built."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
from conftest import CHAR_LABELS, char_logprobs

from biasing import EntityList, build_biased_decoder
from biasing.decoders import native
from biasing.decoders.bias import BiasScorer
from biasing.decoders.context_graph import BOUNDARY
from biasing.decoders.options import Boosting
from biasing.decoders.search import SearchParams, reference_search, search

pytestmark = pytest.mark.skipif(not native.available(),
                                reason="the compiled core is not built (no C++ compiler)")

NAMES = ["Zelensky", "Fremont", "New York", "Acme Corporation", "annual", "the city",
         "dapagliflozin", "Ann", "Yorkshire", "New Jersey"]


def _random_logprobs(rng: np.random.Generator, frames: int, vocab: int, peaky: bool,
                     ) -> np.ndarray:
    x = rng.normal(size=(frames, vocab)) * (1.5 if peaky else 0.7)
    if peaky:
        x[np.arange(frames), rng.integers(0, vocab, frames)] += 6.0
        x[rng.random(frames) < 0.4, -1] += 8.0  # blanks
    x -= x.max(axis=1, keepdims=True)
    return (x - np.log(np.exp(x).sum(axis=1, keepdims=True))).astype(np.float32)


def _same(logprobs: np.ndarray, labels: list[str], is_bpe: bool, params: SearchParams,
          lm: object = None, bias: BiasScorer | None = None) -> list:
    ours = search(logprobs, labels, is_bpe, params, lm, None, bias)
    reference = reference_search(logprobs, labels, is_bpe, params, lm, None, bias)
    assert [(r.text, r.words) for r in ours] == [(r.text, r.words) for r in reference]
    got = [x for r in ours for x in (r.logit_score, r.score)]
    expected = [x for r in reference for x in (r.logit_score, r.score)]
    assert got == pytest.approx(expected, rel=0, abs=1e-9)
    assert got == expected  # in fact bit for bit: the same operations in the same order
    if lm is not None:
        assert [type(r.lm_state) for r in ours] == [type(r.lm_state) for r in reference]
    return ours


def _scorer(labels: list[str], names: list[str], weight: float = 1.0, lm: str | None = None,
            **boosting: float) -> tuple[BiasScorer, object]:
    decoder = build_biased_decoder(labels, lm)
    compiled = decoder.compile(EntityList(names))
    return (BiasScorer(compiled, weight, Boosting(**boosting)),  # type: ignore[arg-type]
            decoder._language_model)


PARAMS = [SearchParams(), SearchParams(beam_width=8, beam_prune_logp=-6.0),
          SearchParams(beam_width=30, token_min_logp=-8.0, prune_history=True),
          SearchParams(beam_width=16, force_window=4.0)]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("params", PARAMS, ids=["default", "narrow", "history", "force"])
def test_random_character_inputs(seed: int, params: SearchParams) -> None:
    rng = np.random.default_rng(seed)
    logprobs = _random_logprobs(rng, 60, len(CHAR_LABELS), peaky=seed % 2 == 0)
    _same(logprobs, CHAR_LABELS, False, params)
    bias, _ = _scorer(CHAR_LABELS, NAMES, weight=1.0 + seed)
    _same(logprobs, CHAR_LABELS, False, params, bias=bias)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("params", PARAMS, ids=["default", "narrow", "history", "force"])
def test_random_subword_inputs(seed: int, params: SearchParams, bpe_labels: list[str]) -> None:
    rng = np.random.default_rng(100 + seed)
    logprobs = _random_logprobs(rng, 50, len(bpe_labels), peaky=seed % 2 == 0)
    _same(logprobs, bpe_labels, True, params)
    bias, _ = _scorer(bpe_labels, NAMES, weight=2.0, completion_bonus=3.0)
    _same(logprobs, bpe_labels, True, params, bias=bias)


@pytest.mark.parametrize("params", PARAMS[:3], ids=["default", "narrow", "history"])
def test_with_a_language_model(params: SearchParams, arpa_path: object) -> None:
    pytest.importorskip("kenlm", reason="the LM cases need the lm extra")
    rng = np.random.default_rng(7)
    bias, lm = _scorer(CHAR_LABELS, NAMES, lm=str(arpa_path))
    for peaky in (True, False):
        logprobs = _random_logprobs(rng, 50, len(CHAR_LABELS), peaky)
        _same(logprobs, CHAR_LABELS, False, params, lm=lm)
        _same(logprobs, CHAR_LABELS, False, params, lm=lm, bias=bias)
    spoken = char_logprobs("we met the president in new york today")
    beams = _same(spoken, CHAR_LABELS, False, params, lm=lm, bias=bias)
    assert beams[0].text == "we met the president in new york today"


def test_a_listed_name_is_found_the_same_way() -> None:
    logprobs = char_logprobs("zelensky spoke", weak={7: ("i", 0.6, 0.3)})
    bias, _ = _scorer(CHAR_LABELS, ["Zelensky"])
    plain = _same(logprobs, CHAR_LABELS, False, SearchParams())
    biased = _same(logprobs, CHAR_LABELS, False, SearchParams(force_window=8.0), bias=bias)
    assert (plain[0].text, biased[0].text) == ("zelenski spoke", "zelensky spoke")


def test_the_decoder_gives_the_same_output_on_either_core(
        monkeypatch: pytest.MonkeyPatch, bpe_labels: list[str]) -> None:
    decoder = build_biased_decoder(bpe_labels, entities=NAMES)
    logprobs = _random_logprobs(np.random.default_rng(3), 80, len(bpe_labels), peaky=True)
    compiled = decoder.decode_beams(logprobs)
    monkeypatch.setenv("CTC_BIASING_CORE", "python")
    assert not native.enabled()
    reference = decoder.decode_beams(logprobs)
    assert [(text, words, logit, score) for text, _, words, logit, score in compiled] == \
        [(text, words, logit, score) for text, _, words, logit, score in reference]


def test_graph_links_and_bonuses_match_the_python_graph(bpe_labels: list[str]) -> None:
    bias, _ = _scorer(bpe_labels, NAMES + ["York", "New York City", "Fremont Street"],
                      weight=1.5)
    graph = bias.graph
    core = native.native_graph(graph, bias.letters)
    assert len(core) == len(graph)
    assert [core.fail(n) for n in range(len(graph))] == [graph.fail(n)
                                                          for n in range(len(graph))]
    assert core.start == bias.start.node
    rng = np.random.default_rng(0)
    symbols = [BOUNDARY, *range(len(bpe_labels))]
    common = [s for n in range(len(graph)) for s in graph.children[n]]
    state, node, partial = bias.start, core.start, 0.0
    for _ in range(3000):
        unit = int(rng.choice(common)) if rng.random() < 0.8 else int(rng.choice(symbols))
        gap = float(rng.random() * 3)
        bonus, state = bias.advance(state, unit, gap)
        got, node, partial = core.advance(bias.numbers(), node, partial, unit, gap)
        assert (got, node, partial) == (bonus, state.node, state.partial)
        if unit != BOUNDARY:
            assert core.continues(node, unit) == (unit in bias.continuations(state))


def test_threads_decode_in_parallel_with_the_same_results(bpe_labels: list[str]) -> None:
    decoder = build_biased_decoder(bpe_labels, entities=NAMES)
    inputs = [_random_logprobs(np.random.default_rng(s), 80, len(bpe_labels), True)
              for s in range(8)]
    expected = [decoder.decode(x) for x in inputs]
    got: dict[int, str] = {}

    def work(i: int) -> None:
        got[i] = decoder.decode(inputs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [got[i] for i in range(len(inputs))] == expected


def test_decode_batch_takes_a_thread_pool(bpe_labels: list[str]) -> None:
    from multiprocessing.pool import ThreadPool

    decoder = build_biased_decoder(bpe_labels)
    inputs = [_random_logprobs(np.random.default_rng(s), 60, len(bpe_labels), True)
              for s in range(6)]
    lists = [NAMES[:3], NAMES[3:], [], NAMES, NAMES[:1], NAMES[5:]]
    expected = decoder.decode_batch(None, inputs, entity_lists=lists)
    with ThreadPool(3) as pool:
        assert decoder.decode_batch(pool, inputs, entity_lists=lists) == expected


def test_without_the_core_the_python_core_runs_with_one_warning(
        monkeypatch: pytest.MonkeyPatch) -> None:
    logprobs = char_logprobs("we met zelensky in the city", weak={14: ("i", 0.6, 0.3)})
    expected = build_biased_decoder(CHAR_LABELS, entities=NAMES).decode_beams(logprobs)
    monkeypatch.setattr(native, "_native", None)
    monkeypatch.setattr(native, "_warned", False)
    decoder = build_biased_decoder(CHAR_LABELS, entities=NAMES)  # compiled in Python too
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert decoder.decode_beams(logprobs) == expected
        assert decoder.decode(logprobs) == "we met Zelensky in the city"
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "compiled search core is not built" in messages[0]


def test_the_spotter_trie_is_built_node_for_node_as_in_python(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from biasing.decoders.spotting import UnitTrie

    rng = np.random.default_rng(9)
    sequences = [(k % 40, [int(u) for u in rng.integers(0, 7, rng.integers(0, 6))])
                 for k in range(200)]
    compiled = UnitTrie(sequences)
    monkeypatch.setattr(native, "_native", None)
    monkeypatch.setattr(native, "_warned", True)
    reference = UnitTrie(sequences)
    for name in ("parent", "unit", "depth", "child_ptr", "child_ids", "terminal"):
        assert getattr(compiled, name).tolist() == getattr(reference, name).tolist(), name
        assert getattr(compiled, name).dtype == getattr(reference, name).dtype, name
    assert compiled.ends == reference.ends


@pytest.mark.parametrize("seed", range(12))
def test_ctc_scores_match_the_numpy_references(seed: int, monkeypatch: pytest.MonkeyPatch,
                                               ) -> None:
    from biasing.decoders.ctc_score import ctc_best_score, ctc_log_likelihood

    rng = np.random.default_rng(seed)
    logprobs = _random_logprobs(rng, int(rng.integers(1, 50)), 9, peaky=seed % 2 == 0)
    units = [int(u) for u in rng.integers(1, 9, rng.integers(0, 9))]
    if seed % 3 == 0 and units:
        units.insert(1, units[0])  # a repeated unit needs a blank between
    deletion = None if seed % 4 == 0 else float(rng.random() * 3)

    def scores() -> list[float]:
        return [ctc_log_likelihood(logprobs, units, 0), ctc_best_score(logprobs, units, 0),
                ctc_best_score(logprobs, units, 0, deletion)]

    compiled = scores()
    monkeypatch.setenv("CTC_BIASING_CORE", "python")
    assert compiled == scores()  # bit for bit (-inf where the frames cannot hold the units)


def test_soft_posteriors_match_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    from biasing.lexicon.confusion import soft_posteriors

    rng = np.random.default_rng(4)
    logprobs = _random_logprobs(rng, 70, 12, peaky=True).astype(np.float64)
    logprobs -= logprobs.max(axis=1, keepdims=True)
    costs = rng.choice([0.0, 1.5, np.inf], size=(12, 12))
    np.fill_diagonal(costs, 0.0)
    compiled = soft_posteriors(logprobs, costs)
    monkeypatch.setenv("CTC_BIASING_CORE", "python")
    assert compiled.tolist() == soft_posteriors(logprobs, costs).tolist()


@pytest.mark.parametrize("seed", range(10))
def test_span_scores_match_the_numpy_references(seed: int, monkeypatch: pytest.MonkeyPatch,
                                                ) -> None:
    from biasing.decoders.ctc_score import ctc_best_score, ctc_viterbi

    monkeypatch.setenv("CTC_BIASING_CORE", "python")  # the references in numpy
    rng = np.random.default_rng(seed)
    rel = _random_logprobs(rng, 40, 9, peaky=seed % 2 == 0).astype(np.float64)
    rel -= rel.max(axis=1, keepdims=True)
    for _ in range(50):
        units = tuple(int(u) for u in rng.integers(1, 9, rng.integers(1, 7)))
        start = int(rng.integers(0, 41))
        end = start + int(rng.integers(-2, 20))
        deletion = None if rng.random() < 0.5 else float(rng.random() * 3)
        assert native.span_best(rel, start, end, units, 0, deletion) == \
            ctc_best_score(rel[start:end], units, 0, deletion)
        assert native.span_best(rel, start, end, units, 0) == \
            ctc_viterbi(rel[start:end], units, 0)[0]
