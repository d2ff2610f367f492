"""The compiled search core: :func:`search.search` in C++ (``_native.cpp``), same results.

The C++ search and bias scorer follow the Python reference step for step (texts, frames
and scores agree to the last bit; ``tests/decoders/test_native.py`` checks them on the
golden fixtures and random inputs). Python still decides what needs Python's semantics:
each frame's candidate units in the order the reference tries them, and each label's
cleaned forms. A language model stays a Python object the core calls back for word
scores (cached per word sequence, as in the reference); without one the search runs with
the GIL released, so threads decode in parallel. pyctcdecode's hotwords run in the
Python core.

The core is built by ``pip install`` when a C++ compiler is there (``setup.py``); where
it is not, :func:`available` is False and the decoder warns once and runs the Python core.
``CTC_BIASING_CORE=python`` forces the Python core (benchmarks, bisecting).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .alphabet import BPE_TOKEN

if TYPE_CHECKING:
    from .bias import BiasScorer
    from .context_graph import ContextGraph
    from .spotting import UnitTrie

try:
    from . import _native  # type: ignore[attr-defined]
except ImportError:  # not built: the Python core runs
    _native = None

__all__ = ["available", "build_graph", "build_trie", "ctc_best", "ctc_forward", "enabled",
           "native_graph", "prepare_vocabulary", "run_native", "soft_posteriors",
           "span_best", "spot_tokens", "viterbi"]

_warned = False


def available() -> bool:
    """Whether the compiled core is built."""
    return _native is not None


def enabled() -> bool:
    """Whether searches run on the compiled core: built, and not turned off with
    ``CTC_BIASING_CORE=python``. Warns once when it is not built."""
    global _warned
    if os.environ.get("CTC_BIASING_CORE", "").lower() == "python":
        return False
    if _native is None:
        if not _warned:
            _warned = True
            warnings.warn("ctc-biasing's compiled search core is not built (no C++ compiler "
                          "at install?); decoding with the pure-Python core, several times "
                          "slower. Reinstall with a compiler: pip install -e .",
                          RuntimeWarning, stacklevel=3)
        return False
    return True


_vocabularies: dict[tuple[tuple[str, ...], bool], Any] = {}


def prepare_vocabulary(labels: Sequence[str], is_bpe: bool) -> Any:
    """The labels as the core sees them (built once per vocabulary)."""
    key = (tuple(labels), is_bpe)
    found = _vocabularies.get(key)
    if found is None:
        starts, ends, clean, forced = [], [], [], []
        for label in labels:
            start = is_bpe and label[:1] == BPE_TOKEN
            end = label[-1:] == BPE_TOKEN
            word = label[1:] if start else label
            starts.append(int(start))
            ends.append(int(end))
            # search._extend: the word part a piece begins (its "▁"s stripped)
            clean.append(word[:-1] if end else word)
            forced.append(label[:-1] if end else label)
        assert _native is not None
        found = _native.Vocabulary(list(labels), is_bpe, starts, ends, clean, forced)
        if len(_vocabularies) > 64:
            _vocabularies.clear()
        _vocabularies[key] = found
    return found


def native_graph(graph: ContextGraph, letters: Sequence[int]) -> Any:
    """The context graph in the core's form (built once per graph and kept on it)."""
    found = getattr(graph, "_native", None)
    if found is None:
        assert _native is not None
        a = graph.arrays
        found = _native.Graph(a.parent, a.symbol, a.depth, a.weight, a.entity,
                              a.entity_weight, np.asarray(letters, dtype=np.float64),
                              graph.boundary)
        graph._native = found  # type: ignore[attr-defined]
    return found


def run_native(logprobs: np.ndarray, labels: Sequence[str], is_bpe: bool, candidates: Any,
               beam_width: int, beam_prune_logp: float, prune_history: bool,
               language_model: Any, bias: BiasScorer | None, lm_start_state: Any,
               history: int) -> list[tuple[str, Any, list[tuple[int, int]], float, float]]:
    """The compiled search over the frames' ``candidates`` (a ``search._Frames``):
    ``(text, lm_state, word frames, logit score, score)`` per output beam, best first."""
    vocabulary = prepare_vocabulary(labels, is_bpe)
    offsets, units, values = candidates.flat()
    force_offsets = np.zeros(len(logprobs) + 1, dtype=np.int64)
    np.cumsum([len(f) for f in candidates.forcible], out=force_offsets[1:])
    forcible = np.fromiter((u for f in candidates.forcible for u in f), dtype=np.int32,
                           count=int(force_offsets[-1]))
    graph, numbers = None, []
    if bias is not None:
        graph = native_graph(bias.graph, bias.letters)
        numbers = bias.numbers()
    return vocabulary.search(
        np.ascontiguousarray(logprobs, dtype=np.float64), offsets, units, values,
        np.asarray(candidates.single, dtype=np.uint8),
        np.asarray(candidates.best_unit, dtype=np.int32),
        np.asarray(candidates.best, dtype=np.float64), force_offsets, forcible,
        beam_width, beam_prune_logp, prune_history, graph, numbers, language_model,
        lm_start_state, history)


def build_graph(paths: Sequence[tuple[int, Sequence[int], float]], boundary: int,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                           list[tuple[int, tuple[int, ...]]]]:
    """``context_graph._build_tree`` compiled (parent, symbol, depth, weight and entity per
    node), and the spotter's ``(entity, units)`` sequences of the paths."""
    from .context_graph import BOUNDARY

    assert _native is not None
    return _native.build_graph(paths if isinstance(paths, list) else list(paths), boundary,
                               BOUNDARY)


def build_trie(sequences: list[tuple[int, Sequence[int]]],
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                          np.ndarray]:
    """``spotting.UnitTrie``'s arrays compiled (parent, unit, depth, child_ptr, child_ids)
    and each sequence's last node."""
    assert _native is not None
    return _native.build_trie(sequences)


def spot_tokens(rel: np.ndarray, gate_open: np.ndarray, blank: int, trie: UnitTrie,
                unit_bonus: float, max_cost: float, max_active: int,
                ) -> list[tuple[int, int, float, int]]:
    """``spotting._tokens`` compiled: ``(node, start, score, end)`` per completed (trie
    node, start frame), in the order the reference records them."""
    assert _native is not None
    return _native.spot_tokens(
        np.ascontiguousarray(rel, dtype=np.float64), np.asarray(gate_open, dtype=np.uint8),
        blank, trie.unit, trie.depth, trie.child_ptr, trie.child_ids,
        trie.terminal.view(np.uint8), float(unit_bonus), float(max_cost), int(max_active))


def viterbi(emit: np.ndarray, skip: np.ndarray) -> tuple[float, np.ndarray | None]:
    """``ctc_score.ctc_viterbi``'s recursion and backtracking compiled, over the
    extended sequence's (frames, states) emissions: the best score and per unit its
    ``(first frame, last frame + 1)`` (None when no alignment fits)."""
    assert _native is not None
    return _native.viterbi(np.ascontiguousarray(emit, dtype=np.float64),
                           np.asarray(skip, dtype=np.uint8))


def ctc_forward(emit: np.ndarray, skip: np.ndarray) -> float:
    """``ctc_score.ctc_log_likelihood``'s forward recursion compiled (numpy's logaddexp,
    operation for operation)."""
    assert _native is not None
    return _native.ctc_forward(np.ascontiguousarray(emit, dtype=np.float64),
                               np.asarray(skip, dtype=np.uint8))


def ctc_best(emit: np.ndarray, skip: np.ndarray, jump: np.ndarray, from_unit: np.ndarray,
             deletion: float, use_jump: bool) -> float:
    """``ctc_score.ctc_best_score``'s max-plus recursion compiled."""
    assert _native is not None
    return _native.ctc_best(np.ascontiguousarray(emit, dtype=np.float64),
                            np.asarray(skip, dtype=np.uint8), np.asarray(jump, dtype=np.uint8),
                            np.asarray(from_unit, dtype=np.uint8), float(deletion), use_jump)


def soft_posteriors(logprobs: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """``confusion.soft_posteriors`` compiled: per frame and phone ``p``,
    ``max_q logprobs[q] - costs[p, q]``."""
    assert _native is not None
    return _native.soft_posteriors(np.ascontiguousarray(logprobs, dtype=np.float64),
                                   np.ascontiguousarray(costs, dtype=np.float64))


def span_best(rel: np.ndarray, start: int, end: int, units: Sequence[int], blank: int,
              deletion: float | None = None) -> float:
    """``ctc_score.ctc_best_score(rel[start:end], units, blank, deletion)`` compiled, the
    extended sequence built in C++ (``rel``: float64, C-contiguous, (frames, classes))."""
    assert _native is not None
    return _native.span_best(rel, start, end, np.asarray(units, dtype=np.int64), blank,
                             0.0 if deletion is None else float(deletion), deletion is not None)
