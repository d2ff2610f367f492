"""``BiasedBeamSearchDecoder``: a drop-in for pyctcdecode's decoder with entity biasing.

The public surface is pyctcdecode 0.5.0's (``decode``, ``decode_beams``, ``decode_batch``,
``decode_beams_batch``, their positional parameters and output tuples, ``reset_params``,
``save_to_dir``/``load_from_dir``/``load_from_hf_hub``, the class-level ``model_container``),
with this package's additions after them as keyword-only arguments: ``entities`` per call,
``phones`` (a phone head's posteriors), ``decode_hypotheses`` (words with frames and the
entities found), ``spot`` (greedy decoding plus unit spotting), options of
:class:`~.options.BiasingOptions`. With no entities it gives pyctcdecode's beams exactly.

This class is the facade: it checks inputs (:mod:`.inputs`), compiles and caches the list
(:mod:`.compile`, :mod:`.lists`) and hands the work to the stages (:mod:`.pipeline`).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..entities import EntityInput, EntityList, as_entity_list
from ..paths import write_text_atomic
from ..tokenizer import Tokenizer, make_tokenizer
from .alphabet import Alphabet
from .compile import CompiledEntities, compile_entities, g2g_variants
from .hotwords import DEFAULT_HOTWORD_WEIGHT, HotwordScorer
from .hypothesis import Hypothesis
from .inputs import checked_logprobs, checked_phones
from .language_model import BoostWords, LanguageModel, ScoringModel
from .lists import DEFAULT_LIST_CACHE, CompiledList, ListCache, Spelled
from .options import BiasingOptions
from .pipeline import Phones, Stages, run_stages
from .pronunciations import PhoneSet
from .search import SearchParams
from .unit_spots import spot_greedy

__all__ = ["DEFAULT_BEAM_WIDTH", "DEFAULT_MIN_TOKEN_LOGP", "DEFAULT_PRUNE_LOGP",
           "BiasedBeamSearchDecoder"]

DEFAULT_BEAM_WIDTH = 100
DEFAULT_PRUNE_LOGP = -10.0
DEFAULT_MIN_TOKEN_LOGP = -5.0
DEFAULT_PRUNE_BEAMS = False
logger = logging.getLogger(__name__)

# pyctcdecode's beam tuple: text, LM state, word frames, acoustic score, combined score
OutputBeam = tuple[str, Any, list[tuple[str, tuple[int, int]]], float, float]


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
        options: biasing strength (default: the defaults of :class:`BiasingOptions`).
        phone_labels: labels of a phone CTC head (stressless ARPAbet phones, ``""`` the
            blank) whose posteriors ``decode(..., phones=...)`` may pass: then the phonetic
            techniques run (:mod:`.phonetic`).
        lexicon: user pronunciations for them (``biasing.lexicon.Lexicon``).
        list_cache: how many entity lists stay compiled (context graph, spellings, unit
            trie, pronunciations), or a :class:`~.lists.ListCache` to share.
        pronunciation_cache: where compiled pronunciations of large lists are kept on disk
            (default ``<cache root>/pronunciations``); False writes none.
    """

    # The language model (not picklable) and the compiled lists live in class-level
    # containers, as in pyctcdecode, so that pool workers forked after the decoder was made
    # find them and a pickled decoder stays small.
    model_container: ClassVar[dict[bytes, ScoringModel | None]] = {}
    _list_container: ClassVar[dict[bytes, ListCache]] = {}
    ALPHABET_FILE = "alphabet.json"
    LANGUAGE_MODEL_DIRECTORY = "language_model"

    def __init__(self, alphabet: Any, language_model: ScoringModel | None = None, *,
                 tokenizer: Any = None, entities: EntityInput | None = None,
                 options: BiasingOptions | None = None,
                 phone_labels: Sequence[str] | None = None, lexicon: Any = None,
                 list_cache: int | ListCache = DEFAULT_LIST_CACHE,
                 pronunciation_cache: str | os.PathLike[str] | bool | None = None) -> None:
        options = BiasingOptions() if options is None else options
        if not isinstance(options, BiasingOptions):
            raise TypeError(f"options must be BiasingOptions, got {type(options).__name__}: "
                            "use BiasingOptions.from_flat(...) for flat names")
        lists = list_cache if isinstance(list_cache, ListCache) else ListCache(list_cache)
        if not isinstance(alphabet, Alphabet):
            alphabet = Alphabet(tuple(alphabet.labels), bool(alphabet.is_bpe))
        self._alphabet = alphabet
        self._labels = list(alphabet.labels)
        self._tokenizer: Tokenizer = make_tokenizer(self._labels, tokenizer)
        self._options = options
        self._model_key = os.urandom(16)
        BiasedBeamSearchDecoder.model_container[self._model_key] = language_model
        BiasedBeamSearchDecoder._list_container[self._model_key] = lists
        self._list_size = lists.size
        self._phone_set = None if phone_labels is None else PhoneSet(
            phone_labels, lexicon, cache_dir=pronunciation_cache)
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
    def lists(self) -> ListCache:
        """The compiled lists (shared with :meth:`with_options` copies; a transcriber's
        adapter keeps its entity vectors there too)."""
        container = BiasedBeamSearchDecoder._list_container
        found = container.get(self._model_key)
        if found is None:  # cleared (clear_class_models): compile again
            found = container[self._model_key] = ListCache(self._list_size)
        return found

    @property
    def _language_model(self) -> ScoringModel | None:
        try:
            return BiasedBeamSearchDecoder.model_container[self._model_key]
        except KeyError:
            raise self._cleaned_up() from None

    @staticmethod
    def _cleaned_up() -> RuntimeError:
        return RuntimeError("this decoder was cleaned up (cleanup() or clear_class_models()): "
                            "build it again")

    def with_options(self, **changes: Any) -> BiasedBeamSearchDecoder:
        """A decoder sharing this one's LM, tokenizer and list cache with some options
        changed (flat names: ``weight``, ``unit_bonus``, ``merge_spots``, ...)."""
        clone = BiasedBeamSearchDecoder.__new__(BiasedBeamSearchDecoder)
        clone.__dict__.update(self.__dict__)
        clone._options = self._options.replace(**changes)
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
        BiasedBeamSearchDecoder._list_container.pop(self._model_key, None)

    @classmethod
    def clear_class_models(cls) -> None:
        """Drop every decoder's LM and compiled lists."""
        BiasedBeamSearchDecoder.model_container.clear()
        BiasedBeamSearchDecoder._list_container.clear()

    # -------------------------------------------------------------------- entities

    def compile(self, entities: EntityInput) -> CompiledEntities:
        """Compile (or fetch from the cache) an entity list for this vocabulary.

        Raises:
            UnrepresentableEntitiesError: entities the units cannot spell (unless the list
                skips them); its ``problems`` name each with the offending characters.
        """
        return self._spelled(self.lists.get(as_entity_list(entities))).compiled

    def _spelled(self, bundle: CompiledList) -> Spelled:
        """The bundle's spelling for this decoder's number of G2G variants, made once."""
        k = self._options.boosting.g2g_variants
        found = bundle.spelled.get(k)
        if found is None:
            compiled = compile_entities(bundle.entities, self._tokenizer, self._labels,
                                        self._alphabet.is_bpe,
                                        variants=g2g_variants(self._tokenizer, k) if k else None)
            language_model = self._language_model
            boost = (BoostWords(compiled.words, language_model)
                     if isinstance(language_model, LanguageModel) else None)
            found = bundle.spelled[k] = Spelled(compiled, boost)
        return found

    def _pronunciations(self, bundle: CompiledList) -> Any:
        """The bundle's pronunciations on the phone head, made once."""
        assert self._phone_set is not None
        if bundle.pronunciations is None:
            bundle.pronunciations = self._phone_set.compile(bundle.entities)
        return bundle.pronunciations

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
        """Decode (frames, labels) ``logits`` (see :mod:`.inputs` for accepted inputs).

        ``entities`` (an EntityList or strings) replaces the decoder's own list for this
        call; ``[]`` decodes with none. ``phones``: (frames, phone labels) log-probabilities
        of a phone head on the same frames (give ``phone_labels`` when building): with a
        list, the phonetic techniques verify, look up and rescore the best
        ``rescore_n_best`` beams, which come first (the others follow unchanged). Returns
        pyctcdecode's output beams ``(text, lm_state, word_frames, logit_score,
        combined_score)``, best first.
        """
        return [(h.text, h.lm_state, h.words, h.logit_score, h.score) for h in self._run(
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
                          phones: Any = None, n_best: int | None = None,
                          ) -> list[Hypothesis]:
        """Like :meth:`decode_beams`, as :class:`Hypothesis` records with entity matches
        (each saying which technique placed it); the best ``n_best`` (all when None)."""
        return self._run(logits, entities, beam_width, beam_prune_logp, token_min_logp,
                         prune_history, hotwords, hotword_weight, lm_start_state,
                         n_best=n_best, phones=phones)

    def decode(self, logits: Any, beam_width: int = DEFAULT_BEAM_WIDTH,
               beam_prune_logp: float = DEFAULT_PRUNE_LOGP,
               token_min_logp: float = DEFAULT_MIN_TOKEN_LOGP,
               hotwords: Iterable[str] | None = None,
               hotword_weight: float = DEFAULT_HOTWORD_WEIGHT,
               lm_start_state: Any = None, *, entities: EntityInput | None = None,
               phones: Any = None) -> str:
        """The best transcript of ``logits`` (see :meth:`decode_beams`)."""
        return self._run(logits, entities, beam_width, beam_prune_logp, token_min_logp, True,
                         hotwords, hotword_weight, lm_start_state, n_best=1,
                         phones=phones)[0].text

    def spot(self, logits: Any, entities: EntityInput | None = None) -> Hypothesis:
        """Greedy decoding plus unit spotting, the approach of NeMo's CTC word spotter: no
        beam search; the list's spellings in the model's own units are spotted on the same
        posteriors and placed by the unit-spot rule (:mod:`.unit_spots`). Works with any CTC
        model. Entities the greedy words already spell are respelled as listed."""
        logprobs = self._logprobs(logits)
        entity_list = self._entities if entities is None else as_entity_list(entities)
        spelled = None
        if entity_list and self._options.weight > 0:
            spelled = self._spelled(self.lists.get(entity_list))
        return spot_greedy(logprobs, self._labels, self._alphabet.is_bpe,
                           self._alphabet.blank, spelled, self._options)

    def _run(self, logits: Any, entities: EntityInput | None, beam_width: int,
             beam_prune_logp: float, token_min_logp: float, prune_history: bool,
             hotwords: Iterable[str] | None, hotword_weight: float, lm_start_state: Any,
             n_best: int | None = None, phones: Any = None) -> list[Hypothesis]:
        """Check the inputs, fetch the compiled list, and run the stages."""
        logprobs = self._logprobs(logits)
        phone_logprobs = None
        if phones is not None:
            if self._phone_set is None:
                raise ValueError("phone posteriors were given but the decoder has no phone "
                                 "labels: build it with phone_labels=... (the phone head's "
                                 "labels)")
            phone_logprobs = checked_phones(phones, len(self._phone_set.labels), logprobs)
        if not isinstance(beam_width, (int, np.integer)) or isinstance(beam_width, bool) \
                or beam_width < 1:
            raise ValueError(f"beam_width must be a positive integer, got {beam_width!r}")
        entity_list = self._entities if entities is None else as_entity_list(entities)
        spelled, evidence = None, None
        if entity_list and self._options.weight > 0:
            bundle = self.lists.get(entity_list)
            spelled = self._spelled(bundle)
            if phone_logprobs is not None and self._phone_set is not None:
                evidence = Phones(phone_logprobs, self._phone_set,
                                  self._pronunciations(bundle))
        force = self._options.boosting.force_window if spelled is not None else 0.0
        stages = Stages(
            self._labels, self._alphabet.is_bpe, self._alphabet.blank,
            SearchParams(int(beam_width), beam_prune_logp, token_min_logp, prune_history,
                         force),
            self._options, self._language_model,
            HotwordScorer(hotwords, hotword_weight) if hotwords else None, lm_start_state,
            spelled, evidence)
        return run_stages(logprobs, stages, n_best)

    def _logprobs(self, logits: Any) -> np.ndarray:
        return checked_logprobs(logits, len(self._labels), self._alphabet.blank,
                                self._alphabet.appended_blank, self._labels)

    def decode_batch(self, pool: Pool | None, logits_list: Sequence[Any],
                     beam_width: int = DEFAULT_BEAM_WIDTH,
                     beam_prune_logp: float = DEFAULT_PRUNE_LOGP,
                     token_min_logp: float = DEFAULT_MIN_TOKEN_LOGP,
                     hotwords: Iterable[str] | None = None,
                     hotword_weight: float = DEFAULT_HOTWORD_WEIGHT, *,
                     entities: EntityInput | None = None,
                     entity_lists: Sequence[EntityInput] | None = None) -> list[str]:
        """Decode several utterances, in ``pool`` (a forking ``multiprocessing`` pool, or a
        ``multiprocessing.pool.ThreadPool``: the compiled core releases the GIL while it
        searches) when given. ``entities``: one list for all; ``entity_lists``: one per
        utterance. Each distinct list is compiled once per process."""
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


def _call_with_entities(call: Callable[..., Any], item: tuple[Any, EntityList | None]) -> Any:
    logits, entities = item
    return call(logits, entities=entities)


def _forking_pool(pool: Pool | None) -> Pool | None:
    """``pool``, unless it starts workers by spawning (they would not find the LM); a
    thread pool is always fine."""
    import multiprocessing as mp
    from multiprocessing.pool import ThreadPool

    if isinstance(pool, ThreadPool):
        return pool
    if pool is not None and isinstance(getattr(pool, "_ctx", None), mp.context.SpawnContext):
        logger.warning("the pool spawns its workers, which would not find the language "
                       "model; decoding in this process instead")
        return None
    return pool

