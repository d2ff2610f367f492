"""Decoders: the biased CTC beam search and its factory."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Collection, Iterator, Sequence
from dataclasses import fields
from typing import Any

from ..entities import EntityInput, as_entity_list
from ..tokenizer import make_tokenizer

# pyctcdecode logs warnings at import time and on every small LM; stay silent unless the
# application configures logging.
logging.getLogger("pyctcdecode").addHandler(logging.NullHandler())

from pyctcdecode.alphabet import Alphabet
from pyctcdecode.constants import (
    DEFAULT_ALPHA,
    DEFAULT_BEAM_WIDTH,
    DEFAULT_BETA,
    DEFAULT_SCORE_LM_BOUNDARY,
    DEFAULT_UNK_LOGP_OFFSET,
)
from pyctcdecode.language_model import LanguageModel, load_unigram_set_from_arpa

from .beam_search import BiasedBeamSearchDecoder, BiasingOptions, Hypothesis
from .compile import CompiledEntities
from .context_graph import ContextGraph
from .respell import EntityMatch

__all__ = ["DEFAULT_BEAM_WIDTH", "BiasedBeamSearchDecoder", "BiasingOptions", "CompiledEntities",
           "ContextGraph", "EntityMatch", "Hypothesis", "build_biased_decoder"]

_BIASING_FIELDS = frozenset(f.name for f in fields(BiasingOptions))


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (native code writes there directly)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def build_biased_decoder(
    labels: Sequence[str],
    entities: EntityInput | None = None,
    kenlm_model_path: str | os.PathLike[str] | None = None,
    tokenizer: Any = None,
    *,
    unigrams: Collection[str] | None = None,
    alpha: float = DEFAULT_ALPHA,
    beta: float = DEFAULT_BETA,
    unk_score_offset: float = DEFAULT_UNK_LOGP_OFFSET,
    lm_score_boundary: bool = DEFAULT_SCORE_LM_BOUNDARY,
    **options: Any,
) -> BiasedBeamSearchDecoder:
    """Build a biased CTC beam-search decoder.

    Args:
        labels: output units in the model's order, pyctcdecode convention: ``""`` is the CTC
            blank, ``" "`` the space of character vocabularies, ``"▁"`` starts a word in
            sentencepiece vocabularies.
        entities: default entity list (EntityList, strings or (text, weight) pairs); a
            decode call's own ``entities`` replace it.
        kenlm_model_path: optional KenLM model (``.arpa`` or binary); needs ``kenlm``.
        tokenizer: sentencepiece model (path or processor) that made the labels; without
            it, entities are spelled from the labels (characters, or greedy longest match).
        unigrams: the LM's vocabulary; read from the file when it is ARPA.
        alpha, beta, unk_score_offset, lm_score_boundary: pyctcdecode's LM settings.
        **options: fields of :class:`BiasingOptions` (``weight``, ``unit_bonus``,
            ``adaptive_scale``, ``max_adaptive``, ``completion_bonus``, ``force_window``,
            ``lm_boost_logp``).
    """
    unknown = sorted(set(options) - _BIASING_FIELDS)
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; known: "
                        f"{', '.join(sorted(_BIASING_FIELDS))}")
    if isinstance(labels, str) or not all(isinstance(x, str) for x in labels) or not labels:
        raise TypeError("labels must be a non-empty list of strings (one per model output)")
    labels = list(labels)
    if len(set(labels)) != len(labels):
        duplicates = sorted({x for x in labels if labels.count(x) > 1})
        raise ValueError(f"labels contain duplicates: {duplicates}")
    alphabet = Alphabet.build_alphabet(labels)
    language_model = None
    if kenlm_model_path is not None:
        path = os.fspath(kenlm_model_path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"KenLM model not found: {path}")
        try:
            import kenlm
        except ImportError:
            raise ImportError("a KenLM model needs kenlm: pip install 'ctc-biasing[lm]'") from None
        if unigrams is None and path.endswith(".arpa"):
            unigrams = load_unigram_set_from_arpa(path)
        try:
            with _quiet_stderr():  # KenLM prints loading progress bars on stderr
                kenlm_model = kenlm.Model(path)
        except (OSError, RuntimeError) as error:
            raise ValueError(f"cannot load KenLM model {path}: {error}") from None
        language_model = LanguageModel(kenlm_model, unigrams, alpha=alpha, beta=beta,
                                       unk_score_offset=unk_score_offset,
                                       score_boundary=lm_score_boundary)
    return BiasedBeamSearchDecoder(
        alphabet, language_model, make_tokenizer(alphabet.labels, tokenizer),
        entities=None if entities is None else as_entity_list(entities),
        options=BiasingOptions(**options))
