"""``BiasedBeamSearchDecoder``: a drop-in for pyctcdecode's decoder with entity biasing.

The public surface is pyctcdecode 0.5.0's (``decode``, ``decode_beams``, ``decode_batch``,
``decode_beams_batch``, their positional parameters and output tuples, ``reset_params``,
``save_to_dir``/``load_from_dir``/``load_from_hf_hub``, the class-level ``model_container``),
with this package's additions after them as keyword-only arguments: ``entities`` per call,
``decode_hypotheses`` (words with frames and the entities found), options of
:class:`BiasingOptions`. With no entities it gives pyctcdecode's beams exactly.

Inputs are converted as pyctcdecode converts them: rows that sum to 1 on average are taken
as probabilities (``log(clip(p, 1e-15, 1))``), anything else (log-probabilities, raw logits,
integers) goes through ``log_softmax``; either way values are clipped to ``[log 1e-15, 0]``.
Wrong shapes, NaN and +inf are errors; so is a frame with no finite value.
"""

from __future__ import annotations

import functools
import logging
import math
import numbers
import os
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..entities import EntityInput, EntityList, as_entity_list
from ..paths import write_text_atomic
from ..tokenizer import Tokenizer, make_tokenizer
from .alphabet import Alphabet
from .bias import BiasScorer
from .compile import CompiledEntities, compile_entities
from .ctc_score import ctc_viterbi
from .hotwords import DEFAULT_HOTWORD_WEIGHT, HotwordScorer
from .language_model import (
    DEFAULT_BOOST_LOGP,
    BoostedLanguageModel,
    BoostWords,
    LanguageModel,
    ScoringModel,
)
from .lookup import MAX_SPOTS, apply_placements, greedy_words, place_spots
from .phonetic import PhoneEvidence, PhoneticParams, phonetic_rescore
from .pronunciations import PhoneSet
from .respell import EntityMatch, respell
from .search import SearchParams, SearchResult, search
from .spotting import SpotOptions, UnitTrie, spot

__all__ = ["DEFAULT_BEAM_WIDTH", "DEFAULT_MIN_TOKEN_LOGP", "DEFAULT_PRUNE_LOGP",
           "BiasedBeamSearchDecoder", "BiasingOptions", "Hypothesis"]

DEFAULT_BEAM_WIDTH = 100
DEFAULT_PRUNE_LOGP = -10.0
DEFAULT_MIN_TOKEN_LOGP = -5.0
DEFAULT_PRUNE_BEAMS = False
MIN_TOKEN_CLIP_P = 1e-15  # log-probabilities are clipped to log(1e-15)
MAX_BONUS = 1000.0  # nats: any bonus (or weight) above this is a typo, not a setting
DEFAULT_LIST_CACHE = 16  # entity lists kept compiled (graph, spellings, pronunciations)
logger = logging.getLogger(__name__)

# pyctcdecode's beam tuple: text, LM state, word frames, acoustic score, combined score
OutputBeam = tuple[str, Any, list[tuple[str, tuple[int, int]]], float, float]


@dataclass(frozen=True)
class BiasingOptions:
    """How strongly listed entities are favoured. Bonuses are in nats (natural log)."""

    weight: float = 1.0  # multiplies every bonus below; 0 turns biasing off
    unit_bonus: float = 0.3  # static bonus per unit on an entity path
    adaptive_scale: float = 0.5  # share of the gap to the frame's best unit given back
    max_adaptive: float = 2.0  # cap on the adaptive part per unit
    completion_bonus: float = 2.0  # extra bonus when a whole entity is completed
    full_bonus_chars: int = 5  # entities with fewer letters earn a proportionally smaller
    # completion bonus (short names are cheap to hallucinate); 0 = no scaling
    g2g_variants: int = 0  # sound-alike spellings added per entity (needs the g2p extra)
    force_window: float = 6.0  # forced continuation units are at most this far below the
    # frame's best unit (nats); further down, no default bonus could make them win
    lm_boost_logp: float | None = DEFAULT_BOOST_LOGP  # BOOST class log-prob (nats) for listed
    # words the LM does not know; None scores them as unknown words (unknown-word penalty)
    # --- phonetic techniques (used when phone posteriors are passed; see .phonetic)
    phone_weight: float = 0.5  # lambda: rescoring score = beam score + lambda * phone score
    lookup_margin: float = 8.0  # nats a phone-spotted entity must explain its span better by
    verify_margin: float = 2.0  # a boosted entity whose phones fall further below the phone
    # head's best path than this many nats per phone gives way to the unbiased words
    rescore_n_best: int = 4  # beam-search hypotheses verified, looked up and rescored
    lookup_bonus: float = 1.0  # phone lookup: nats credited per phone of a listed entity
    # (and forgiven per matched phone by the phone spotter)
    spot_bonus: float = 2.0  # unit spotting (decoder.spot): the same, per output unit
    spot_max_cost: float = 4.0  # spotters: a token's cost allowance beyond its bonus
    spot_blank_gate: float = 0.8  # spotters: no word starts where P(blank) is higher
    spot_margin: float = 6.0  # unit spotting (decoder.spot): nats a spotted entity's score
    # plus spot_bonus per unit must beat the greedy words' by
    spot_unheard: float = 8.0  # unit spotting: a unit whose best frame is this far below
    # that frame's best unit was not said, and the entity is not placed
    phone_floor: float = 8.0  # phone scores: most a frame may cost (nats below its best)
    phone_deletion: float = 3.0  # phone scores: cost of a pronunciation phone not heard
    oov_penalty: float = 2.0  # rescoring: nats per word outside the lexicon and the list
    merge_spots: bool = True  # also place unit-spotted entities into the beam search's
    # best hypothesis (the spot rule; after the phonetic techniques, if they ran)
    verified_boost: float = 1.0  # with phone posteriors (the verifier on), the boosting
    # bonuses are multiplied by this: bolder, since unsupported names are removed after

    def __post_init__(self) -> None:
        for name in ("weight", "unit_bonus", "adaptive_scale", "max_adaptive",
                     "completion_bonus", "force_window", "phone_weight", "lookup_margin",
                     "verify_margin", "lookup_bonus", "spot_bonus", "spot_max_cost",
                     "phone_floor",
                     "phone_deletion", "oov_penalty", "verified_boost", "spot_margin",
                     "spot_unheard"):
            value = getattr(self, name)
            if not _is_real(value) or not 0 <= value <= MAX_BONUS:
                raise ValueError(f"{name} must be a number from 0 to {MAX_BONUS:g}, got "
                                 f"{value!r}")
        for name in ("full_bonus_chars", "g2g_variants", "rescore_n_best"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if not isinstance(self.merge_spots, bool):
            raise TypeError(f"merge_spots must be True or False, got {self.merge_spots!r}")
        if not (_is_real(self.spot_blank_gate) and 0 < self.spot_blank_gate <= 1):
            raise ValueError(f"spot_blank_gate must be a probability in (0, 1], got "
                             f"{self.spot_blank_gate!r}")
        if self.lm_boost_logp is not None and not (
                _is_real(self.lm_boost_logp) and -MAX_BONUS <= self.lm_boost_logp <= 0):
            raise ValueError(f"lm_boost_logp must be a log-probability from -{MAX_BONUS:g} to "
                             f"0, or None, got {self.lm_boost_logp!r}")


def _is_real(value: object) -> bool:
    """A finite real number (numpy scalars included, bool not)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


@dataclass(frozen=True)
class Hypothesis:
    """One decoded hypothesis with timing and the entities found in it."""

    text: str  # words joined by spaces, entities in their original spelling
    words: list[tuple[str, tuple[int, int]]]  # (word, (start_frame, end_frame)), end exclusive
    entities: list[EntityMatch]  # listed entities in the text, in order
    logit_score: float  # acoustic log score of the path
    score: float  # ranking score: acoustic + LM + biasing bonuses (+ phone_weight *
    # phone_score when the phonetic techniques ran)
    phone_score: float | None = None  # CTC log-likelihood of the hypothesis' pronunciation
    # on the phone posteriors, relative to their best path; None without phone posteriors


class BiasedBeamSearchDecoder:
    """CTC beam search with entity biasing. Build with ``build_biased_decoder``.

    Args:
        alphabet: an :class:`Alphabet` (or pyctcdecode's; anything with ``labels`` and
            ``is_bpe``).
        language_model: a :class:`LanguageModel` (or any object scoring like pyctcdecode's
            language models; the BOOST class needs ours).
        tokenizer: how entities are spelled with the labels (a sentencepiece model or its
            path, a :class:`~biasing.tokenizer.Tokenizer`); default: from the labels.
        entities: the default entity list of every call.
        options: biasing strength.
        phone_labels: labels of a phone CTC head (stressless ARPAbet phones, ``""`` the
            blank) whose posteriors ``decode(..., phones=...)`` may pass: then the phonetic
            techniques run (:mod:`.phonetic`).
        lexicon: user pronunciations for them (``biasing.lexicon.Lexicon``).
    """

    # The language model (not picklable) lives in a class-level container, as in
    # pyctcdecode, so that pool workers forked after the decoder was made find it.
    model_container: ClassVar[dict[bytes, ScoringModel | None]] = {}
    # compiled entity lists, per decoder, shared with forked workers the same way
    _compiled_container: ClassVar[dict[bytes, OrderedDict[str, Any]]] = {}
    ALPHABET_FILE = "alphabet.json"
    LANGUAGE_MODEL_DIRECTORY = "language_model"

    def __init__(self, alphabet: Any, language_model: ScoringModel | None = None, *,
                 tokenizer: Any = None, entities: EntityInput | None = None,
                 options: BiasingOptions = BiasingOptions(),
                 phone_labels: Sequence[str] | None = None, lexicon: Any = None,
                 list_cache: int = DEFAULT_LIST_CACHE,
                 pronunciation_cache: str | os.PathLike[str] | bool | None = None) -> None:
        if isinstance(list_cache, bool) or not isinstance(list_cache, int) or list_cache < 1:
            raise ValueError(f"list_cache must be a positive integer, got {list_cache!r}")
        if not isinstance(alphabet, Alphabet):
            alphabet = Alphabet(tuple(alphabet.labels), bool(alphabet.is_bpe))
        self._alphabet = alphabet
        self._labels = list(alphabet.labels)
        self._tokenizer: Tokenizer = make_tokenizer(self._labels, tokenizer)
        self._options = options
        self._model_key = os.urandom(16)
        BiasedBeamSearchDecoder.model_container[self._model_key] = language_model
        self._list_cache = list_cache
        self._phone_set = None if phone_labels is None else PhoneSet(
            phone_labels, lexicon, cache_dir=pronunciation_cache, memory_lists=list_cache)
        self._unit_tries: OrderedDict[str, UnitTrie] = OrderedDict()
        self._entities = EntityList() if entities is None else as_entity_list(entities)
        if self._entities:
            self.compile(self._entities)  # fail early on unrepresentable entities

    @classmethod
    def from_pyctcdecode(cls, decoder: Any, **kwargs: Any) -> BiasedBeamSearchDecoder:
        """Our decoder with the alphabet and language model of a pyctcdecode decoder."""
        alphabet = getattr(decoder, "_alphabet", None)
        if alphabet is None or not hasattr(alphabet, "labels"):
            raise TypeError(f"expected a pyctcdecode BeamSearchDecoderCTC, got "
                            f"{type(decoder).__name__}")
        return cls(alphabet, getattr(decoder, "_language_model", None), **kwargs)

    # -------------------------------------------------------------------- properties

    @property
    def labels(self) -> list[str]:
        """The decoder's labels (normalised)."""
        return list(self._labels)

    @property
    def alphabet(self) -> Alphabet:
        return self._alphabet

    @property
    def options(self) -> BiasingOptions:
        return self._options

    @property
    def phone_labels(self) -> list[str] | None:
        """Labels of the phone posteriors ``phones=`` takes (None: no phonetic techniques)."""
        return None if self._phone_set is None else list(self._phone_set.labels)

    @property
    def _language_model(self) -> ScoringModel | None:
        try:
            return BiasedBeamSearchDecoder.model_container[self._model_key]
        except KeyError:
            raise RuntimeError("this decoder was cleaned up (cleanup() or "
                               "clear_class_models()): build it again") from None

    def with_options(self, **changes: Any) -> BiasedBeamSearchDecoder:
        """A decoder sharing this one's LM, tokenizer and cache with some options changed."""
        clone = BiasedBeamSearchDecoder.__new__(BiasedBeamSearchDecoder)
        clone.__dict__.update(self.__dict__)
        clone._options = replace(self._options, **changes)
        return clone

    def reset_params(self, alpha: float | None = None, beta: float | None = None,
                     unk_score_offset: float | None = None,
                     lm_score_boundary: bool | None = None) -> None:
        """Change LM settings in place (None keeps a value); no LM: nothing to do."""
        language_model = self._language_model
        if language_model is None:
            return
        params = {"alpha": alpha, "beta": beta, "unk_score_offset": unk_score_offset,
                  "score_boundary": lm_score_boundary}
        language_model.reset_params(  # type: ignore[attr-defined]
            **{k: v for k, v in params.items() if v is not None})

    def cleanup(self) -> None:
        """Drop this decoder's LM and compiled lists from the class-level containers."""
        BiasedBeamSearchDecoder.model_container.pop(self._model_key, None)
        BiasedBeamSearchDecoder._compiled_container.pop(self._model_key, None)

    @classmethod
    def clear_class_models(cls) -> None:
        """Drop every decoder's LM and compiled lists."""
        BiasedBeamSearchDecoder.model_container.clear()
        BiasedBeamSearchDecoder._compiled_container.clear()

    # -------------------------------------------------------------------- entities

    def compile(self, entities: EntityInput) -> CompiledEntities:
        """Compile (or fetch from the cache) an entity list for this vocabulary."""
        return self._prepare(as_entity_list(entities))[0]

    def _prepare(self, entity_list: EntityList) -> tuple[CompiledEntities, BoostWords | None]:
        """The compiled list and its BOOST-class words for this decoder's LM, cached."""
        k = self._options.g2g_variants
        key = f"{entity_list.key}:{k}"
        cache = BiasedBeamSearchDecoder._compiled_container.setdefault(self._model_key,
                                                                       OrderedDict())
        prepared = cache.get(key)
        if prepared is None:
            compiled = compile_entities(entity_list, self._tokenizer, self._labels,
                                        self._alphabet.is_bpe,
                                        variants=self._g2g(k) if k else None)
            language_model = self._language_model
            boost = (BoostWords(compiled.words, language_model)
                     if isinstance(language_model, LanguageModel) else None)
            prepared = (compiled, boost)
            cache[key] = prepared
            while len(cache) > self._list_cache:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        return prepared

    def _g2g(self, k: int) -> Callable[[list[str]], dict[str, list[str]]]:
        """Sound-alike spellings from the lexicon (G2P + grapheme-phoneme alignment)."""
        inventory = self._tokenizer.inventory

        def variants(texts: list[str]) -> dict[str, list[str]]:
            from ..lexicon import G2GOptions, spelling_variants

            found = spelling_variants(texts, inventory, G2GOptions(k=k))
            return {text: [v for v, _ in spellings] for text, spellings in found.items()}
        return variants

    # ---------------------------------------------------------------------------- API

    def decode_beams(self, logits: Any, beam_width: int = DEFAULT_BEAM_WIDTH,
                     beam_prune_logp: float = DEFAULT_PRUNE_LOGP,
                     token_min_logp: float = DEFAULT_MIN_TOKEN_LOGP,
                     prune_history: bool = DEFAULT_PRUNE_BEAMS,
                     hotwords: Iterable[str] | None = None,
                     hotword_weight: float = DEFAULT_HOTWORD_WEIGHT,
                     lm_start_state: Any = None, *,
                     entities: EntityInput | None = None,
                     phones: Any = None) -> list[OutputBeam]:
        """Decode (frames, labels) ``logits`` (see the module docs for accepted inputs).

        ``entities`` (an EntityList or strings) replaces the decoder's own list for this
        call; ``[]`` decodes with none. ``phones``: (frames, phone labels) log-probabilities
        of a phone head on the same frames (give ``phone_labels`` when building): with a
        list, the phonetic techniques verify, look up and rescore the best
        ``rescore_n_best`` beams, which come first (the others follow unchanged). Returns
        pyctcdecode's output beams ``(text, lm_state, word_frames, logit_score,
        combined_score)``, best first.
        """
        return [(h.text, state, h.words, h.logit_score, h.score) for h, state in self._search(
            logits, entities, beam_width, beam_prune_logp, token_min_logp, prune_history,
            hotwords, hotword_weight, lm_start_state, phones=phones)]

    def decode_hypotheses(self, logits: Any, beam_width: int = DEFAULT_BEAM_WIDTH,
                          beam_prune_logp: float = DEFAULT_PRUNE_LOGP,
                          token_min_logp: float = DEFAULT_MIN_TOKEN_LOGP,
                          prune_history: bool = True,
                          hotwords: Iterable[str] | None = None,
                          hotword_weight: float = DEFAULT_HOTWORD_WEIGHT,
                          lm_start_state: Any = None, *,
                          entities: EntityInput | None = None,
                          phones: Any = None) -> list[Hypothesis]:
        """Like :meth:`decode_beams`, as :class:`Hypothesis` records with entity matches
        (each saying which technique placed it)."""
        return [h for h, _ in self._search(logits, entities, beam_width, beam_prune_logp,
                                           token_min_logp, prune_history, hotwords,
                                           hotword_weight, lm_start_state, phones=phones)]

    def decode(self, logits: Any, beam_width: int = DEFAULT_BEAM_WIDTH,
               beam_prune_logp: float = DEFAULT_PRUNE_LOGP,
               token_min_logp: float = DEFAULT_MIN_TOKEN_LOGP,
               hotwords: Iterable[str] | None = None,
               hotword_weight: float = DEFAULT_HOTWORD_WEIGHT,
               lm_start_state: Any = None, *, entities: EntityInput | None = None,
               phones: Any = None) -> str:
        """The best transcript of ``logits`` (see :meth:`decode_beams`)."""
        best, _ = self._search(logits, entities, beam_width, beam_prune_logp, token_min_logp,
                               True, hotwords, hotword_weight, lm_start_state, n_best=1,
                               phones=phones)[0]
        return best.text

    def spot(self, logits: Any, entities: EntityInput | None = None) -> Hypothesis:
        """Greedy decoding plus unit spotting, the approach of NeMo's CTC word spotter: no
        beam search; the list's spellings in the model's own units are spotted on the same
        posteriors (:mod:`.spotting`) and a spotted entity replaces the greedy words over
        its frames when its score plus ``spot_bonus`` per unit (times the decoder's and the
        entity's weight) beats theirs by ``spot_margin``. Works with any CTC model. Entities the greedy words already
        spell are respelled as listed."""
        logprobs = self._checked_logprobs(logits)
        entity_list = self._entities if entities is None else as_entity_list(entities)
        words = greedy_words(logprobs, self._labels, self._alphabet.is_bpe)
        logit_score = float(logprobs.max(axis=1).sum()) if len(logprobs) else 0.0
        if not entity_list or self._options.weight == 0:
            return Hypothesis(" ".join(w for w, _ in words), words, [], logit_score,
                              logit_score)
        compiled = self.compile(entity_list)
        words, matches = respell(words, compiled.spelling, compiled.max_words)
        matches = [replace(m, technique="greedy") for m in matches]
        words, matches = self._place_unit_spots(words, matches, logprobs, compiled)
        return Hypothesis(" ".join(w for w, _ in words), words, matches, logit_score,
                          logit_score)

    def _place_unit_spots(self, words: list[tuple[str, tuple[int, int]]],
                          matches: list[EntityMatch], logprobs: np.ndarray,
                          compiled: CompiledEntities,
                          ) -> tuple[list[tuple[str, tuple[int, int]]], list[EntityMatch]]:
        """Unit spotting's replace-if-better rule on some words with frames: a spotted
        entity whose score over the frames of the words it covers, plus ``spot_bonus`` per
        unit, is within ``spot_margin`` of the frame-wise best path replaces them. Words
        that already are an entity keep it, and every unit of a placed entity must be heard:
        on its best frame within ``spot_unheard`` nats of that frame's best unit."""
        opts = self._options
        spots = spot(logprobs, self._alphabet.blank, self._unit_trie(compiled),
                     SpotOptions(opts.spot_bonus, opts.spot_max_cost, opts.spot_blank_gate))
        if not spots:
            return words, matches
        rel = logprobs - logprobs.max(axis=1, keepdims=True)
        blank = self._alphabet.blank

        def gain(found: Any, covered: Sequence[str], start: int, end: int) -> float:
            # relative to the frame-wise best path (the greedy words: score 0)
            score, spans = ctc_viterbi(rel[start:end], found.units, blank)
            if score == -np.inf:
                return score
            # every unit must be heard somewhere in its frames: the bonus rewards length,
            # not a unit the audio lacks ("Reports" where "report" was said)
            heard = [rel[start + a:start + b, u].max() for (a, b), u in zip(spans, found.units)]
            if min(heard) < -opts.spot_unheard:
                return -np.inf
            weight = opts.weight * compiled.entities[found.key].weight
            return score + opts.spot_bonus * weight * len(found.units)

        def taken(found: Any, first: int, last: int) -> bool:
            return any(first <= m.last_word and m.first_word <= max(first, last - 1)
                       for m in matches)

        texts = [e.text for e in compiled.entities]
        placements = place_spots(words, spots[:MAX_SPOTS], gain, opts.spot_margin, skip=taken)
        return apply_placements(words, matches, placements, texts, "spot")

    def _unit_trie(self, compiled: CompiledEntities) -> UnitTrie:
        key = f"{compiled.entities.key}:{self._options.g2g_variants}"
        trie = self._unit_tries.get(key)
        if trie is None:
            trie = UnitTrie((i, u) for i, u in compiled.units if u)
            self._unit_tries[key] = trie
            while len(self._unit_tries) > self._list_cache:
                self._unit_tries.popitem(last=False)
        else:
            self._unit_tries.move_to_end(key)
        return trie

    def decode_batch(self, pool: Pool | None, logits_list: Sequence[Any],
                     beam_width: int = DEFAULT_BEAM_WIDTH,
                     beam_prune_logp: float = DEFAULT_PRUNE_LOGP,
                     token_min_logp: float = DEFAULT_MIN_TOKEN_LOGP,
                     hotwords: Iterable[str] | None = None,
                     hotword_weight: float = DEFAULT_HOTWORD_WEIGHT, *,
                     entities: EntityInput | None = None,
                     entity_lists: Sequence[EntityInput] | None = None) -> list[str]:
        """Decode several utterances, in ``pool`` (a forking ``multiprocessing`` pool) when
        given. ``entities``: one list for all; ``entity_lists``: one per utterance. Each
        distinct list is compiled once per process."""
        call = functools.partial(self.decode, beam_width=beam_width,
                                 beam_prune_logp=beam_prune_logp,
                                 token_min_logp=token_min_logp, hotwords=hotwords,
                                 hotword_weight=hotword_weight)
        return self._map(pool, call, logits_list, entities, entity_lists)

    def decode_beams_batch(self, pool: Pool | None, logits_list: Sequence[Any],
                           beam_width: int = DEFAULT_BEAM_WIDTH,
                           beam_prune_logp: float = DEFAULT_PRUNE_LOGP,
                           token_min_logp: float = DEFAULT_MIN_TOKEN_LOGP,
                           prune_history: bool = DEFAULT_PRUNE_BEAMS,
                           hotwords: Iterable[str] | None = None,
                           hotword_weight: float = DEFAULT_HOTWORD_WEIGHT, *,
                           entities: EntityInput | None = None,
                           entity_lists: Sequence[EntityInput] | None = None,
                           ) -> list[list[tuple[str, list, float, float]]]:
        """:meth:`decode_beams` for several utterances, without the LM states (which do not
        cross processes): ``(text, word_frames, logit_score, combined_score)``."""
        call = functools.partial(self._beams_without_state, beam_width=beam_width,
                                 beam_prune_logp=beam_prune_logp,
                                 token_min_logp=token_min_logp, prune_history=prune_history,
                                 hotwords=hotwords, hotword_weight=hotword_weight)
        return self._map(pool, call, logits_list, entities, entity_lists)

    def _beams_without_state(self, logits: Any, **kwargs: Any,
                             ) -> list[tuple[str, list, float, float]]:
        return [(text, words, logit, score)
                for text, _, words, logit, score in self.decode_beams(logits, **kwargs)]

    def _map(self, pool: Pool | None, call: Callable[..., Any], logits_list: Sequence[Any],
             entities: EntityInput | None, entity_lists: Sequence[EntityInput] | None,
             ) -> list[Any]:
        if entities is not None and entity_lists is not None:
            raise ValueError("give entities (one list for all) or entity_lists (one per "
                             "utterance), not both")
        if entity_lists is None:
            lists: list[EntityList | None] = [
                None if entities is None else as_entity_list(entities)] * len(logits_list)
        elif len(entity_lists) != len(logits_list):
            raise ValueError(f"{len(entity_lists)} entity lists for {len(logits_list)} "
                             "utterances: give one per utterance")
        else:
            lists = [as_entity_list(e) for e in entity_lists]
        for entity_list in {e.key: e for e in lists if e}.values():
            self.compile(entity_list)  # once, in this process, before any worker forks
        items = list(zip(logits_list, lists))
        worker = functools.partial(_call_with_entities, call)
        valid = _forking_pool(pool)
        if valid is None:
            return [worker(item) for item in items]
        return list(valid.map(worker, items))

    # ---------------------------------------------------------------- serialisation

    def save_to_dir(self, directory: str | os.PathLike[str]) -> None:
        """Write ``alphabet.json`` and, with an LM, ``language_model/`` (pyctcdecode's
        layout; pyctcdecode reads it). The entity list and options are not saved."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / self.ALPHABET_FILE, self._alphabet.dumps())
        language_model = self._language_model
        if language_model is not None:
            save = getattr(language_model, "save_to_dir", None)
            if save is None:
                raise TypeError(f"{type(language_model).__name__} cannot be saved")
            lm_folder = folder / self.LANGUAGE_MODEL_DIRECTORY
            lm_folder.mkdir()
            save(str(lm_folder))

    @classmethod
    def parse_directory_contents(cls, directory: str | os.PathLike[str],
                                 ) -> dict[str, str | None]:
        """The alphabet file and LM folder of a saved decoder.

        Raises:
            ValueError: no ``alphabet.json``, or other files but no ``language_model``.
        """
        contents = [c for c in os.listdir(directory) if not c.startswith((".", "__"))]
        if cls.ALPHABET_FILE not in contents:
            raise ValueError(f"{os.fspath(directory)}: no {cls.ALPHABET_FILE} among "
                             f"{sorted(contents)}")
        contents.remove(cls.ALPHABET_FILE)
        lm_folder = None
        if contents:
            if cls.LANGUAGE_MODEL_DIRECTORY not in contents:
                raise ValueError(f"{os.fspath(directory)}: no {cls.LANGUAGE_MODEL_DIRECTORY}/ "
                                 f"among {sorted(contents)}")
            lm_folder = os.path.join(directory, cls.LANGUAGE_MODEL_DIRECTORY)
        return {"alphabet": os.path.join(directory, cls.ALPHABET_FILE),
                "language_model": lm_folder}

    @classmethod
    def load_from_dir(cls, directory: str | os.PathLike[str],
                      unigram_encoding: str | None = None, **kwargs: Any,
                      ) -> BiasedBeamSearchDecoder:
        """Read a folder written by :meth:`save_to_dir` (or by pyctcdecode); ``kwargs`` go
        to the constructor (``tokenizer``, ``entities``, ``options``)."""
        files = cls.parse_directory_contents(directory)
        alphabet = Alphabet.loads(Path(str(files["alphabet"])).read_text(encoding="utf-8"))
        language_model = None
        if files["language_model"] is not None:
            language_model = LanguageModel.load_from_dir(files["language_model"],
                                                         unigram_encoding=unigram_encoding)
        return cls(alphabet, language_model, **kwargs)

    @classmethod
    def load_from_hf_hub(cls, model_id: str, cache_dir: str | None = None,
                         **kwargs: Any) -> BiasedBeamSearchDecoder:
        """Read a decoder folder from a Hugging Face model repository with
        ``huggingface_hub.snapshot_download`` (``kwargs`` go to it; this reaches the network
        unless the repository is cached and ``local_files_only=True``)."""
        try:
            from huggingface_hub import snapshot_download
        except ImportError:
            raise ImportError("load_from_hf_hub needs huggingface_hub: pip install "
                              "huggingface_hub") from None
        from ..paths import cache_root

        folder = snapshot_download(model_id, cache_dir=cache_dir or str(cache_root() / "hf"),
                                   **kwargs)
        return cls.load_from_dir(folder)

    # --------------------------------------------------------------------- internals

    def _search(self, logits: Any, entities: EntityInput | None, beam_width: int,
                beam_prune_logp: float, token_min_logp: float, prune_history: bool,
                hotwords: Iterable[str] | None, hotword_weight: float, lm_start_state: Any,
                n_best: int | None = None, phones: Any = None,
                ) -> list[tuple[Hypothesis, Any]]:
        """Validate, decode (biased or not), and respell the ``n_best`` best beams; with
        phone posteriors and a list, run the phonetic techniques on them."""
        logprobs = self._checked_logprobs(logits)
        phone_logprobs = None if phones is None else self._checked_phones(phones, logprobs)
        if not isinstance(beam_width, (int, np.integer)) or isinstance(beam_width, bool) \
                or beam_width < 1:
            raise ValueError(f"beam_width must be a positive integer, got {beam_width!r}")
        entity_list = self._entities if entities is None else as_entity_list(entities)
        hotword_scorer = HotwordScorer(hotwords, hotword_weight) if hotwords else None
        language_model = self._language_model
        opts = self._options
        compiled, bias = None, None
        if entity_list and opts.weight > 0:
            compiled, boost = self._prepare(entity_list)
            weight = opts.weight
            if phone_logprobs is not None and self._phone_set is not None:
                weight *= opts.verified_boost
            bias = BiasScorer(compiled, weight, opts.unit_bonus, opts.adaptive_scale,
                              opts.max_adaptive, opts.completion_bonus, opts.full_bonus_chars)
            if boost and isinstance(language_model, LanguageModel) \
                    and opts.lm_boost_logp is not None:
                language_model = BoostedLanguageModel(language_model, boost,
                                                      opts.lm_boost_logp)
        params = SearchParams(int(beam_width), beam_prune_logp, token_min_logp, prune_history,
                              opts.force_window if bias is not None else 0.0)
        results = search(logprobs, self._labels, self._alphabet.is_bpe, params,
                         language_model, hotword_scorer, bias, lm_start_state)
        if phone_logprobs is not None and compiled is not None and self._phone_set is not None:
            out = self._phonetic(results, compiled, entity_list, logprobs, phone_logprobs,
                                 n_best)
        else:
            out = [(self._hypothesis(result, compiled), result.lm_state)
                   for result in results[:n_best]]
        if opts.merge_spots and compiled is not None and out:
            best, state = out[0]
            words, matches = self._place_unit_spots(list(best.words), list(best.entities),
                                                    logprobs, compiled)
            if words != best.words:
                out[0] = (replace(best, text=" ".join(w for w, _ in words), words=words,
                                  entities=matches), state)
        return out

    def _phonetic(self, results: list[SearchResult], compiled: CompiledEntities,
                  entity_list: EntityList, logprobs: np.ndarray, phones: np.ndarray,
                  n_best: int | None) -> list[tuple[Hypothesis, Any]]:
        """Verify, look up and rescore the best beams with the phone posteriors."""
        assert self._phone_set is not None
        opts = self._options
        params = PhoneticParams(opts.phone_weight, opts.lookup_margin, opts.verify_margin,
                                max(1, opts.rescore_n_best),
                                SpotOptions(opts.lookup_bonus, opts.spot_max_cost,
                                            opts.spot_blank_gate, floor=opts.phone_floor),
                                full_bonus_chars=opts.full_bonus_chars,
                                deletion=opts.phone_deletion, oov_penalty=opts.oov_penalty)
        prons = self._phone_set.compile(entity_list)
        head = [self._hypothesis(r, compiled) for r in results[:params.n_best]]
        ranked = phonetic_rescore(
            [(h.words, h.entities, h.logit_score, h.score) for h in head],
            PhoneEvidence(phones, self._phone_set, opts.phone_floor, opts.phone_deletion),
            prons,
            [e.text for e in entity_list],
            greedy_words(logprobs, self._labels, self._alphabet.is_bpe), params,
            [opts.weight * e.weight for e in entity_list])
        out = [(Hypothesis(" ".join(w for w, _ in c.words), c.words, c.entities,
                           c.logit_score, total, phone), results[c.origin].lm_state)
               for c, phone, total in ranked]
        if n_best is None or n_best > len(out):
            rest = results[params.n_best:None if n_best is None else params.n_best + n_best]
            out.extend((self._hypothesis(r, compiled), r.lm_state) for r in rest)
        return out[:n_best]

    def _checked_phones(self, phones: Any, logprobs: np.ndarray) -> np.ndarray:
        """Phone posteriors as log-probabilities on the output's frames (one frame more or
        less is padded or cut)."""
        if self._phone_set is None:
            raise ValueError("phone posteriors were given but the decoder has no phone "
                             "labels: build it with phone_labels=... (the phone head's labels)")
        if hasattr(phones, "detach"):
            phones = phones.detach().cpu().numpy()
        phones = np.asarray(phones)
        classes = len(self._phone_set.labels)
        if phones.ndim != 2 or phones.shape[1] != classes or \
                abs(len(phones) - len(logprobs)) > 1:
            raise ValueError(f"phone posteriors have shape {phones.shape}, but need "
                             f"({len(logprobs)} +- 1 frames, {classes} phone labels) for "
                             f"output log-probabilities of shape {logprobs.shape}")
        if not np.issubdtype(phones.dtype, np.number) or np.isnan(phones).any() \
                or np.isposinf(phones).any():
            raise ValueError(f"phone posteriors of shape {phones.shape} contain NaN, +inf "
                             "or non-numbers")
        if len(phones) == 0:
            return phones.astype(np.float64)
        phones = to_logprobs(phones.astype(np.float64))
        if len(phones) < len(logprobs):
            phones = np.concatenate([phones, phones[-1:]])
        return phones[:len(logprobs)]

    @staticmethod
    def _hypothesis(result: SearchResult, compiled: CompiledEntities | None) -> Hypothesis:
        if compiled is None:
            return Hypothesis(result.text, result.words, [], result.logit_score, result.score)
        words, matches = respell(result.words, compiled.spelling, compiled.max_words)
        return Hypothesis(" ".join(w for w, _ in words), words, matches, result.logit_score,
                          result.score)

    def _checked_logprobs(self, logits: Any) -> np.ndarray:
        """(frames, labels) log-probabilities converted as pyctcdecode converts them."""
        if hasattr(logits, "detach"):  # a torch tensor
            logits = logits.detach().cpu().numpy()
        if not isinstance(logits, np.ndarray):
            raise TypeError(f"logits must be a numpy array of shape (frames, "
                            f"{len(self._labels)}), got {type(logits).__name__}")
        vocab = len(self._labels)
        if logits.ndim != 2 or logits.shape[1] != vocab:
            hint = ""
            if self._alphabet.appended_blank and logits.ndim == 2 \
                    and logits.shape[1] == vocab - 1:
                hint = (": the labels had no CTC blank (''), so one was appended; put the "
                        "blank in the labels at the index your model uses")
            raise ValueError(f"logits have shape {logits.shape}, but need (frames, {vocab}): "
                             f"one column per label of the {vocab}-label vocabulary{hint}")
        if not (np.issubdtype(logits.dtype, np.floating)
                or np.issubdtype(logits.dtype, np.integer)):
            raise ValueError(f"logits have dtype {logits.dtype}, expected numbers")
        if len(logits) == 0:
            return logits.astype(np.float64)
        if not np.isfinite(logits).all():  # -inf is fine (probability 0), NaN and +inf not
            bad = np.isnan(logits) | np.isposinf(logits)
            if bad.any():
                frame = int(np.argwhere(bad)[0][0])
                raise ValueError(f"logits contain NaN or +inf (first at frame {frame})")
        logprobs = to_logprobs(logits)
        empty = ~np.isfinite(logprobs).any(axis=1)
        if empty.any():
            raise ValueError(f"frame {int(np.argmax(empty))} has no finite value (every "
                             "entry is -inf)")
        self._check_blank(logprobs)
        return logprobs

    def _check_blank(self, logprobs: np.ndarray) -> None:
        """Warn when the blank is rarely the best label but one other label nearly always
        clearly is (by more than a nat): the labels put the blank where the model does not."""
        if len(logprobs) < 50:
            return
        blank = self._alphabet.blank
        best = logprobs.argmax(axis=1)
        clear = logprobs.max(axis=1) > logprobs[:, blank] + 1.0
        counts = np.bincount(best[clear], minlength=len(self._labels))
        top = int(np.argmax(counts))
        blank_share = float(np.mean(best == blank))
        if blank_share < 0.1 and counts[top] > 0.5 * len(logprobs):
            warnings.warn(f"label {self._labels[top]!r} (index {top}) is the best label in "
                          f"{counts[top] / len(logprobs):.0%} of frames and the blank (index "
                          f"{blank}) in {blank_share:.0%}: is the blank at the index the "
                          "model gives it?", UserWarning, stacklevel=4)


def to_logprobs(logits: np.ndarray) -> np.ndarray:
    """pyctcdecode's input rule: rows summing to 1 on average are probabilities (their log
    is taken), anything else goes through ``log_softmax``; then clipped to
    ``[log 1e-15, 0]``. Computed in the input's float type, as pyctcdecode 0.5.0 does on
    NumPy 1 (so NumPy 2 gives the same values)."""
    if math.isclose(float(logits.sum(axis=1).mean()), 1):
        return np.log(np.clip(logits, MIN_TOKEN_CLIP_P, 1))
    out = log_softmax(logits)
    floor = np.asarray(np.log(MIN_TOKEN_CLIP_P), dtype=out.dtype)
    return np.clip(out, floor, np.asarray(0, dtype=out.dtype))


def log_softmax(x: np.ndarray) -> np.ndarray:
    """log_softmax over axis 1 of (frames, labels), step by step as scipy (and pyctcdecode)
    compute it, in the input's float type."""
    x_max = np.amax(x, axis=1, keepdims=True)
    x_max[~np.isfinite(x_max)] = 0
    tmp = x - x_max
    with np.errstate(divide="ignore", invalid="ignore"):  # rows of -inf are reported later
        out = np.log(np.sum(np.exp(tmp), axis=1, keepdims=True))
        return tmp - out


def _call_with_entities(call: Callable[..., Any], item: tuple[Any, EntityList | None]) -> Any:
    logits, entities = item
    return call(logits, entities=entities)


def _forking_pool(pool: Pool | None) -> Pool | None:
    """``pool``, unless it starts workers by spawning (they would not find the LM)."""
    import multiprocessing as mp

    if pool is not None and isinstance(getattr(pool, "_ctx", None), mp.context.SpawnContext):
        logger.warning("the pool spawns its workers, which would not find the language "
                       "model; decoding in this process instead")
        return None
    return pool

