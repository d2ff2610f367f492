"""Decoders: our CTC prefix beam search with entity biasing, and its factory.

``build_biased_decoder`` takes pyctcdecode's ``build_ctcdecoder`` arguments in the same
order (labels, KenLM path, unigrams, alpha, beta, unknown-word offset, LM boundary scoring)
and this package's additions by keyword: the default ``entities``, the ``tokenizer`` that
made sentencepiece labels, and the biasing options of :class:`BiasingOptions` by their flat
names (``unit_bonus=0.4``, ``merge_spots=False``; ``docs/options.md`` lists them).

The modules, one algorithm each: :mod:`.search` (prefix beam search), :mod:`.bias` and
:mod:`.context_graph` (boosting), :mod:`.language_model` (KenLM and the BOOST class),
:mod:`.compile` and :mod:`.lists` (entity lists and their cache), :mod:`.phonetic`,
:mod:`.spotting`, :mod:`.lookup`, :mod:`.unit_spots` (the phone and unit techniques),
:mod:`.pipeline` (their order), :mod:`.inputs` (what the decoder accepts), and
:mod:`.decoder` (the pyctcdecode-compatible facade).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Collection, Iterator, Sequence
from typing import Any

from ..entities import EntityInput
from .alphabet import Alphabet, build_alphabet
from .compile import CompiledEntities
from .context_graph import ContextGraph
from .decoder import DEFAULT_BEAM_WIDTH, BiasedBeamSearchDecoder
from .hypothesis import EntityMatch, Hypothesis
from .language_model import (
    DEFAULT_ALPHA,
    DEFAULT_BETA,
    DEFAULT_SCORE_LM_BOUNDARY,
    DEFAULT_UNK_LOGP_OFFSET,
    LanguageModel,
    load_unigrams_from_arpa,
)
from .lists import DEFAULT_LIST_CACHE, ListCache
from .options import BiasingOptions, Boosting, Phonetic, Spotting

__all__ = ["DEFAULT_BEAM_WIDTH", "DEFAULT_LIST_CACHE", "Alphabet", "BiasedBeamSearchDecoder",
           "BiasingOptions", "Boosting", "CompiledEntities", "ContextGraph", "EntityMatch",
           "Hypothesis", "LanguageModel", "ListCache", "Phonetic", "Spotting",
           "build_alphabet", "build_biased_decoder"]


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
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


def load_language_model(path: str | os.PathLike[str], unigrams: Collection[str] | None = None,
                        **settings: Any) -> LanguageModel:
    """A :class:`LanguageModel` from a KenLM file (``.arpa`` or binary); an ARPA file's own
    unigrams are used when none are given.

    Raises:
        FileNotFoundError: no such file.
        ImportError: kenlm is not installed.
        ValueError: KenLM cannot read the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"KenLM model not found: {path}")
    try:
        import kenlm
    except ImportError:
        raise ImportError("a KenLM model needs kenlm: pip install 'ctc-biasing[lm]'") from None
    if unigrams is None and path.endswith(".arpa"):
        unigrams = load_unigrams_from_arpa(path)
    try:
        with quiet_stderr():  # KenLM prints loading progress bars on stderr
            model = kenlm.Model(path)
    except (OSError, RuntimeError) as error:
        raise ValueError(f"cannot load KenLM model {path}: {error}") from None
    return LanguageModel(model, unigrams, **settings)


def build_biased_decoder(
    labels: Sequence[str],
    kenlm_model_path: str | os.PathLike[str] | None = None,
    unigrams: Collection[str] | None = None,
    alpha: float = DEFAULT_ALPHA,
    beta: float = DEFAULT_BETA,
    unk_score_offset: float = DEFAULT_UNK_LOGP_OFFSET,
    lm_score_boundary: bool = DEFAULT_SCORE_LM_BOUNDARY,
    *,
    entities: EntityInput | None = None,
    tokenizer: Any = None,
    phone_labels: Sequence[str] | None = None,
    lexicon: Any = None,
    list_cache: int | ListCache = DEFAULT_LIST_CACHE,
    pronunciation_cache: str | os.PathLike[str] | bool | None = None,
    **options: Any,
) -> BiasedBeamSearchDecoder:
    """Build a biased CTC beam-search decoder (pyctcdecode's ``build_ctcdecoder`` order).

    Args:
        labels: output units in the model's order, pyctcdecode convention: ``""`` is the CTC
            blank, ``" "`` the space of character vocabularies, ``"▁"`` starts a word in
            sentencepiece vocabularies (see :mod:`.alphabet` for the normalisation).
        kenlm_model_path: optional KenLM model (``.arpa`` or binary); needs ``kenlm``.
        unigrams: the LM's vocabulary; read from the file when it is ARPA.
        alpha, beta, unk_score_offset, lm_score_boundary: the LM's settings
            (:class:`LanguageModel`).
        entities: default entity list (EntityList, strings or (text, weight) pairs); a
            decode call's own ``entities`` replace it.
        tokenizer: sentencepiece model (path or processor) that made the labels; without
            it, entities are spelled from the labels (characters, or greedy longest match).
        phone_labels: labels of a phone head whose posteriors decode calls may pass
            (``phones=``): then the phonetic techniques run.
        lexicon: user pronunciations for them (``biasing.lexicon.Lexicon``).
        list_cache: entity lists kept compiled in memory, least recently used dropped first
            (context graph, spellings, unit trie, pronunciations; keyed by the list's
            content, so equal lists share them and different lists never mix), or a
            :class:`ListCache` to share.
        pronunciation_cache: where compiled pronunciations of large lists are kept on disk
            (default ``<cache root>/pronunciations``); False writes none.
        **options: :class:`BiasingOptions` by flat name (``weight``, ``unit_bonus``, ...;
            ``docs/options.md``).

    Raises:
        TypeError: an unknown option.
        ValueError: an option out of range; an entity the labels cannot spell.
    """
    biasing = BiasingOptions.from_flat(options)
    alphabet = build_alphabet(labels)
    language_model = None
    if kenlm_model_path is not None:
        language_model = load_language_model(
            kenlm_model_path, unigrams, alpha=alpha, beta=beta,
            unk_score_offset=unk_score_offset, score_boundary=lm_score_boundary)
    return BiasedBeamSearchDecoder(alphabet, language_model, tokenizer=tokenizer,
                                   entities=entities, options=biasing,
                                   phone_labels=phone_labels, lexicon=lexicon,
                                   list_cache=list_cache,
                                   pronunciation_cache=pronunciation_cache)
