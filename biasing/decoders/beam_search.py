"""Biased CTC beam search: pyctcdecode's beam search plus a context graph of entities.

:class:`BiasedBeamSearchDecoder` extends pyctcdecode 0.5.0's ``BeamSearchDecoderCTC`` (its
alphabet, BPE/character handling, KenLM language model, output tuples and the ``decode``,
``decode_beams``, ``decode_batch`` API). With no entities it runs pyctcdecode's own search,
so its output is pyctcdecode's exactly. With entities each beam also carries a context-graph
state, and:

1. candidate forcing: units that continue an entity a beam has started are expanded even
   below ``token_min_logp`` (down to ``force_window`` below the frame's best unit);
2. adaptive subword boosting: a unit on an entity path earns
   ``min(adaptive_scale * (best logp at t - its logp at t), max_adaptive) + unit_bonus``,
   times the entity weight and the decoder weight; the bonus a path collected is taken back
   when the path breaks off, and kept, plus ``completion_bonus``, when the entity is
   completed as whole words;
3. the BOOST class: listed words the KenLM model does not know get the class score
   ``lm_boost_logp`` instead of the unknown-word penalty (:mod:`.language_model`);
4. output in the entity's original spelling.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.pool import Pool
from typing import Any

import numpy as np
from pyctcdecode.alphabet import BPE_TOKEN, Alphabet
from pyctcdecode.constants import (
    DEFAULT_BEAM_WIDTH,
    DEFAULT_HOTWORD_WEIGHT,
    DEFAULT_MIN_TOKEN_LOGP,
    DEFAULT_PRUNE_BEAMS,
    DEFAULT_PRUNE_LOGP,
    MIN_TOKEN_CLIP_P,
)
from pyctcdecode.decoder import (
    NULL_FRAMES,
    BeamSearchDecoderCTC,
    _get_valid_pool,
    _log_softmax,
    _merge_tokens,
    _normalize_whitespace,
    _sort_and_trim_beams,
    _sum_log_scores,
)
from pyctcdecode.language_model import AbstractLanguageModel, HotwordScorer, LanguageModel

from ..entities import EntityInput, EntityList, as_entity_list
from ..tokenizer import Tokenizer
from .compile import CompiledEntities, compile_entities
from .context_graph import BOUNDARY
from .language_model import DEFAULT_BOOST_LOGP, BoostedLanguageModel, BoostWords
from .respell import EntityMatch, respell

# Beam: text, next_word, word_part, last_char, text_frames, part_frames, logit_score,
#       graph node, partial bonus (returned if the path breaks off), total bonus.
_Beam = tuple[str, str, str, Any, list, tuple, float, int, float, float]
_COMPILED_CACHE_SIZE = 16


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
    # words the LM does not know; None scores them as pyctcdecode does (unknown-word penalty)

    def __post_init__(self) -> None:
        for name in ("weight", "unit_bonus", "adaptive_scale", "max_adaptive",
                     "completion_bonus"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if (not isinstance(self.full_bonus_chars, int) or isinstance(self.full_bonus_chars, bool)
                or self.full_bonus_chars < 0):
            raise ValueError(f"full_bonus_chars must be an integer >= 0, got "
                             f"{self.full_bonus_chars!r}")
        if (not isinstance(self.g2g_variants, int) or isinstance(self.g2g_variants, bool)
                or self.g2g_variants < 0):
            raise ValueError(f"g2g_variants must be an integer >= 0, got {self.g2g_variants!r}")
        if not np.isfinite(self.force_window) or self.force_window < 0:
            raise ValueError(f"force_window must be a finite number >= 0, got "
                             f"{self.force_window!r}")
        if self.lm_boost_logp is not None and not (np.isfinite(self.lm_boost_logp)
                                                   and self.lm_boost_logp <= 0):
            raise ValueError(f"lm_boost_logp must be a log-probability <= 0 or None, got "
                             f"{self.lm_boost_logp!r}")


@dataclass(frozen=True)
class Hypothesis:
    """One decoded hypothesis with timing and the entities found in it."""

    text: str  # words joined by spaces, entities in their original spelling
    words: list[tuple[str, tuple[int, int]]]  # (word, (start_frame, end_frame)), end exclusive
    entities: list[EntityMatch]  # listed entities in the text, in order
    logit_score: float  # acoustic log score of the path
    score: float  # ranking score: acoustic + LM + biasing bonuses


class BiasedBeamSearchDecoder(BeamSearchDecoderCTC):
    """pyctcdecode beam search with entity biasing. Build with ``build_biased_decoder``."""

    def __init__(self, alphabet: Alphabet, language_model: AbstractLanguageModel | None,
                 tokenizer: Tokenizer, entities: EntityList | None = None,
                 options: BiasingOptions = BiasingOptions()) -> None:
        super().__init__(alphabet, language_model)
        self._tokenizer = tokenizer
        self._options = options
        self._compiled: OrderedDict[str, tuple[CompiledEntities, BoostWords | None]] = (
            OrderedDict())
        self._entities = entities if entities is not None else EntityList()
        if self._entities:
            self.compile(self._entities)  # fail early on unrepresentable entities

    @property
    def labels(self) -> list[str]:
        """The decoder's labels (pyctcdecode-normalised)."""
        return self._alphabet.labels

    @property
    def options(self) -> BiasingOptions:
        return self._options

    def with_options(self, **changes: Any) -> BiasedBeamSearchDecoder:
        """A decoder sharing this one's LM and tokenizer with some options changed."""
        clone = BiasedBeamSearchDecoder.__new__(BiasedBeamSearchDecoder)
        clone.__dict__.update(self.__dict__)
        clone._options = replace(self._options, **changes)
        return clone

    def compile(self, entities: EntityInput) -> CompiledEntities:
        """Compile (or fetch from the cache) an entity list for this vocabulary."""
        return self._prepare(as_entity_list(entities))[0]

    def _prepare(self, entity_list: EntityList) -> tuple[CompiledEntities, BoostWords | None]:
        """The compiled list and its BOOST-class words for this decoder's LM, cached."""
        k = self._options.g2g_variants
        key = f"{entity_list.key}:{k}"
        prepared = self._compiled.get(key)
        if prepared is None:
            compiled = compile_entities(entity_list, self._tokenizer, self.labels, self._is_bpe,
                                        variants=self._g2g(k) if k else None)
            language_model = self._language_model
            boost = (BoostWords(compiled.words, language_model)
                     if isinstance(language_model, LanguageModel) else None)
            prepared = (compiled, boost)
            self._compiled[key] = prepared
            if len(self._compiled) > _COMPILED_CACHE_SIZE:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(key)
        return prepared

    def _g2g(self, k: int) -> Callable[[list[str]], dict[str, list[str]]]:
        """Sound-alike spellings from the lexicon (G2P + grapheme-phoneme alignment)."""
        inventory = self._tokenizer.inventory

        def variants(texts: list[str]) -> dict[str, list[str]]:
            from ..lexicon import G2GOptions, spelling_variants

            found = spelling_variants(texts, inventory, G2GOptions(k=k))
            return {text: [v for v, _ in spellings] for text, spellings in found.items()}
        return variants

    # ----------------------------------------------------------------------------- API

    def decode_beams(  # type: ignore[override]
        self,
        logits: Any,
        entities: EntityInput | None = None,
        beam_width: int = DEFAULT_BEAM_WIDTH,
        beam_prune_logp: float = DEFAULT_PRUNE_LOGP,
        token_min_logp: float = DEFAULT_MIN_TOKEN_LOGP,
        prune_history: bool = DEFAULT_PRUNE_BEAMS,
        hotwords: Iterable[str] | None = None,
        hotword_weight: float = DEFAULT_HOTWORD_WEIGHT,
        lm_start_state: Any = None,
    ) -> list[tuple[str, Any, list[tuple[str, tuple[int, int]]], float, float]]:
        """Decode ``logits``: (frames, vocab) natural-log probabilities, rows summing to 1.

        ``entities`` (an EntityList or strings) replaces the decoder's own list for this
        call; ``[]`` decodes with none. Returns pyctcdecode's output beams
        ``(text, lm_state, word_frames, logit_score, combined_score)``, best first.
        """
        return [(h.text, state, h.words, h.logit_score, h.score) for h, state in self._search(
            logits, entities, beam_width, beam_prune_logp, token_min_logp, prune_history,
            hotwords, hotword_weight, lm_start_state)]

    def decode_hypotheses(
        self,
        logits: Any,
        entities: EntityInput | None = None,
        beam_width: int = DEFAULT_BEAM_WIDTH,
        beam_prune_logp: float = DEFAULT_PRUNE_LOGP,
        token_min_logp: float = DEFAULT_MIN_TOKEN_LOGP,
        prune_history: bool = True,
    ) -> list[Hypothesis]:
        """Like :meth:`decode_beams`, as :class:`Hypothesis` records with entity matches."""
        return [h for h, _ in self._search(logits, entities, beam_width, beam_prune_logp,
                                           token_min_logp, prune_history, None,
                                           DEFAULT_HOTWORD_WEIGHT, None)]

    def decode(  # type: ignore[override]
        self,
        logits: Any,
        entities: EntityInput | None = None,
        beam_width: int = DEFAULT_BEAM_WIDTH,
        beam_prune_logp: float = DEFAULT_PRUNE_LOGP,
        token_min_logp: float = DEFAULT_MIN_TOKEN_LOGP,
        hotwords: Iterable[str] | None = None,
        hotword_weight: float = DEFAULT_HOTWORD_WEIGHT,
        lm_start_state: Any = None,
    ) -> str:
        """Decode ``logits`` (frames, vocab) log-probabilities to text (see decode_beams)."""
        best, _ = self._search(logits, entities, beam_width, beam_prune_logp, token_min_logp,
                               True, hotwords, hotword_weight, lm_start_state, n_best=1)[0]
        return best.text

    def decode_batch(  # type: ignore[override]
        self,
        pool: Pool | None,
        logits_list: Sequence[Any],
        entities: EntityInput | None = None,
        beam_width: int = DEFAULT_BEAM_WIDTH,
        beam_prune_logp: float = DEFAULT_PRUNE_LOGP,
        token_min_logp: float = DEFAULT_MIN_TOKEN_LOGP,
        hotwords: Iterable[str] | None = None,
        hotword_weight: float = DEFAULT_HOTWORD_WEIGHT,
    ) -> list[str]:
        """Decode several utterances with one entity list (in ``pool`` if it forks)."""
        entity_list = None if entities is None else as_entity_list(entities)
        decode = functools.partial(
            self.decode, entities=entity_list, beam_width=beam_width,
            beam_prune_logp=beam_prune_logp, token_min_logp=token_min_logp,
            hotwords=hotwords, hotword_weight=hotword_weight)
        valid_pool = _get_valid_pool(pool)
        if valid_pool is None:
            return [decode(logits) for logits in logits_list]
        if entity_list is not None:
            self.compile(entity_list)  # compile once, before the workers fork
        return list(valid_pool.map(decode, logits_list))

    # ------------------------------------------------------------------------ internals

    def _search(self, logits: Any, entities: EntityInput | None, beam_width: int,
                beam_prune_logp: float, token_min_logp: float, prune_history: bool,
                hotwords: Iterable[str] | None, hotword_weight: float, lm_start_state: Any,
                n_best: int | None = None) -> list[tuple[Hypothesis, Any]]:
        """Validate, decode (biased or not), and respell the ``n_best`` best beams."""
        logprobs = self._checked_logprobs(logits)
        if not isinstance(beam_width, int) or isinstance(beam_width, bool) or beam_width < 1:
            raise ValueError(f"beam_width must be a positive integer, got {beam_width!r}")
        entity_list = self._entities if entities is None else as_entity_list(entities)
        hotword_scorer = HotwordScorer.build_scorer(hotwords, weight=hotword_weight)
        if not entity_list or self._options.weight == 0:
            beams = self._decode_logits(logprobs, beam_width, beam_prune_logp, token_min_logp,
                                        prune_history, hotword_scorer, lm_start_state)
            return [(Hypothesis(text, words, [], logit, score), state)
                    for text, state, words, logit, score in beams]
        compiled, boost = self._prepare(entity_list)
        beams = self._decode_biased(logprobs, compiled, boost, beam_width, beam_prune_logp,
                                    token_min_logp, prune_history,
                                    hotword_scorer if hotwords else None, lm_start_state)
        out = []
        for text, state, words, logit, score in beams[:n_best]:
            new_words, matches = respell(words, compiled.spelling, compiled.max_words)
            new_text = " ".join(w for w, _ in new_words)
            out.append((Hypothesis(new_text, new_words, matches, logit, score), state))
        return out

    def _checked_logprobs(self, logits: Any) -> np.ndarray:
        """Validate (frames, vocab) log-probabilities; return them as pyctcdecode prepares them."""
        if hasattr(logits, "detach"):  # a torch tensor
            logits = logits.detach().cpu().numpy()
        if not isinstance(logits, np.ndarray):
            raise TypeError(f"logits must be a numpy array of shape (frames, {len(self.labels)}),"
                            f" got {type(logits).__name__}")
        vocab = len(self.labels)
        if logits.ndim != 2 or logits.shape[1] != vocab:
            raise ValueError(f"logits have shape {logits.shape}, but need (frames, {vocab}): "
                             f"one column per label of the {vocab}-label vocabulary")
        if not np.issubdtype(logits.dtype, np.floating):
            raise ValueError(f"logits have dtype {logits.dtype}, expected floating point")
        if logits.shape[0] == 0:
            return logits.astype(np.float32)
        bad = np.isnan(logits) | np.isposinf(logits)
        if bad.any():
            frame = int(np.argwhere(bad)[0][0])
            raise ValueError(f"logits contain NaN or +inf (first at frame {frame})")
        with np.errstate(over="ignore", divide="ignore"):
            peak = logits.max(axis=1, keepdims=True)
            lse = (peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=1)))
        worst = int(np.argmax(np.abs(lse)))
        if not abs(float(lse[worst])) <= 1e-2:
            hint = ("they look like probabilities: pass np.log(probs)"
                    if (logits >= 0).all() else "apply log_softmax over the last axis first")
            raise ValueError(
                f"logits must be log-probabilities (each row's logsumexp is 0), but frame "
                f"{worst} has logsumexp {float(lse[worst]):.4g}: {hint}")
        # exactly pyctcdecode's preparation, so results match it bit for bit
        return np.clip(_log_softmax(logits, axis=1), np.log(MIN_TOKEN_CLIP_P), 0)

    def _decode_biased(self, logits: np.ndarray, compiled: CompiledEntities,
                       boost: BoostWords | None, beam_width: int,
                       beam_prune_logp: float, token_min_logp: float, prune_history: bool,
                       hotword_scorer: HotwordScorer | None, lm_start_state: Any,
                       ) -> list[tuple[str, Any, list, float, float]]:
        """Beam search with a context graph (mirrors pyctcdecode's ``_decode_logits``)."""
        opts = self._options
        graph = compiled.graph
        children, depth, step, output = graph.children, graph.depth, graph.step, graph.output
        node_weight, node_entity = graph.weight, graph.entity
        completion = opts.completion_bonus * opts.weight
        letters, full = compiled.letters, opts.full_bonus_chars
        boundary = graph.boundary
        is_bpe = self._is_bpe
        idx2vocab = self._idx2vocab
        force_units = graph.force_units

        language_model = self._language_model
        if boost and isinstance(language_model, LanguageModel) and opts.lm_boost_logp is not None:
            language_model = BoostedLanguageModel(language_model, boost, opts.lm_boost_logp)
        if lm_start_state is None and language_model is not None:
            lm_start_state = language_model.get_start_state()
        cached_lm: dict[tuple[str, bool], tuple[float, float, Any]] = {
            ("", False): (0.0, 0.0, lm_start_state)}
        cached_partial: dict[str, float] = {}

        def advance(node: int, partial: float, bonus: float, symbol: int, gain: float,
                    ) -> tuple[int, float, float]:
            """One symbol through the graph: (node, partial bonus, total bonus)."""
            child = children[node].get(symbol)
            if child is None:
                if node == 0:
                    return 0, 0.0, bonus
                bonus -= partial  # the path broke off: give back what it collected
                partial = 0.0
                child, _ = step(node, symbol)
                if child == 0:
                    return 0, 0.0, bonus
            if symbol != boundary:
                gain *= node_weight[child]
                return child, partial + gain, bonus + gain
            ended, ended_weight = output(child)
            if ended >= 0:
                short = min(1.0, letters[ended] / full) if full else 1.0
                bonus += completion * ended_weight * short
                if node_entity[child] >= 0:
                    partial = 0.0  # committed: a completed entity keeps its bonus
            return child, partial, bonus

        def extend(beam: _Beam, idx: int, p_char: float, char: str, gain: float,
                   frame_idx: int, force_break: bool) -> tuple[_Beam, bool]:
            (text, next_word, word_part, last_char, text_frames, part_frames, logit_score,
             node, partial, bonus) = beam
            if char == "" or last_char == char:
                if char == "":
                    new_part_frames = part_frames
                else:
                    new_part_frames = (part_frames[0], frame_idx + 1)
                return ((text, next_word, word_part, char, text_frames, new_part_frames,
                         logit_score + p_char, node, partial, bonus), force_break)
            if is_bpe and (char[:1] == BPE_TOKEN or force_break):
                force_break = False
                clean = char
                if char[:1] == BPE_TOKEN:
                    clean = clean[1:]
                if char[-1:] == BPE_TOKEN:
                    clean = clean[:-1]
                    force_break = True
                node, partial, bonus = advance(node, partial, bonus, BOUNDARY, 0.0)
                node, partial, bonus = advance(node, partial, bonus, idx, gain)
                frames = text_frames if word_part == "" else text_frames + [part_frames]
                return ((text, word_part, clean, char, frames, (frame_idx, frame_idx + 1),
                         logit_score + p_char, node, partial, bonus), force_break)
            if not is_bpe and char == " ":
                node, partial, bonus = advance(node, partial, bonus, boundary, 0.0)
                frames = text_frames if word_part == "" else text_frames + [part_frames]
                return ((text, word_part, "", char, frames, NULL_FRAMES, logit_score + p_char,
                         node, partial, bonus), force_break)
            node, partial, bonus = advance(node, partial, bonus, idx, gain)
            new_part_frames = ((frame_idx, frame_idx + 1) if part_frames[0] < 0
                               else (part_frames[0], frame_idx + 1))
            return ((text, next_word, word_part + char, char, text_frames, new_part_frames,
                     logit_score + p_char, node, partial, bonus), force_break)

        static = opts.unit_bonus * opts.weight
        scale = opts.adaptive_scale * opts.weight
        cap = opts.max_adaptive * opts.weight
        beams: list[_Beam] = [("", "", "", None, [], NULL_FRAMES, 0.0, graph.start, 0.0, 0.0)]
        force_break = False
        for frame_idx, logit_col in enumerate(logits):
            max_idx = logit_col.argmax()
            idx_list = set(np.where(logit_col >= token_min_logp)[0]) | {max_idx}
            best = float(logit_col[max_idx])
            force_floor = best - opts.force_window
            new_beams: list[_Beam] = []
            for idx in idx_list:
                p_char = float(logit_col[idx])
                char = idx2vocab[idx]
                gain = min(scale * (best - p_char), cap) + static
                for beam in beams:
                    new_beam, force_break = extend(beam, idx, p_char, char, gain, frame_idx,
                                                   force_break)
                    new_beams.append(new_beam)
            for beam in beams:  # candidate forcing for beams inside an entity
                node = beam[7]
                if depth[node] < 2:
                    continue
                for idx in force_units(node):
                    if idx in idx_list:
                        continue
                    p_char = float(logit_col[idx])
                    if p_char >= force_floor:
                        gain = min(scale * (best - p_char), cap) + static
                        new_beam, _ = extend(beam, idx, p_char, idx2vocab[idx], gain,
                                             frame_idx, False)
                        new_beams.append(new_beam)
            scored = self._score_beams(_merge_biased(new_beams), language_model,
                                       hotword_scorer, cached_lm, cached_partial, False)
            max_score = max(b[-1] for b in scored)
            scored = [b for b in scored if b[-1] >= max_score + beam_prune_logp]
            trimmed = _sort_and_trim_beams(scored, beam_width)  # type: ignore[arg-type]
            if prune_history:
                lm_order = 1 if language_model is None else language_model.order
                beams = _prune_history_biased(trimmed, lm_order)
            else:
                beams = [b[:-1] for b in trimmed]  # type: ignore[misc]

        # close every beam with a word boundary: completes entities, returns open partials
        final: list[_Beam] = []
        for (text, _, word_part, _, frames, part_frames, logit_score, node, partial,
             bonus) in beams:
            node, partial, bonus = advance(node, partial, bonus, boundary, 0.0)
            word_frames = frames if word_part == "" else frames + [part_frames]
            final.append((text, word_part, "", None, word_frames, NULL_FRAMES, logit_score,
                          node, 0.0, bonus - partial))
        scored = self._score_beams(_merge_biased(final), language_model, hotword_scorer,
                                   cached_lm, cached_partial, True)
        max_score = max(b[-1] for b in scored)
        scored = [b for b in scored if b[-1] >= max_score + beam_prune_logp]
        trimmed = _sort_and_trim_beams(scored, beam_width)  # type: ignore[arg-type]
        return [(_normalize_whitespace(b[0]),
                 cached_lm[(b[0], True)][-1] if (b[0], True) in cached_lm else None,
                 list(zip(b[0].split(), b[4])), b[6], b[-1]) for b in trimmed]

    def _score_beams(self, beams: list[_Beam], language_model: AbstractLanguageModel | None,
                     hotword_scorer: HotwordScorer | None,
                     cached_lm: dict[tuple[str, bool], tuple[float, float, Any]],
                     cached_partial: dict[str, float], is_eos: bool) -> list[tuple]:
        """Append the ranking score: acoustic + LM (+ hotwords) + biasing bonus."""
        out = []
        for (text, next_word, word_part, last_char, frames, part_frames, logit_score, node,
             partial, bonus) in beams:
            new_text = _merge_tokens(text, next_word)
            if language_model is None:
                score = logit_score + bonus
                if hotword_scorer is not None:
                    score += (hotword_scorer.score(new_text)
                              + hotword_scorer.score_partial_token(word_part))
            else:
                key = (new_text, is_eos)
                if key not in cached_lm:
                    _, prev_raw, start_state = cached_lm[(text, False)]
                    lm, end_state = language_model.score(start_state, next_word,
                                                         is_last_word=is_eos)
                    raw = prev_raw + lm
                    hot = 0.0 if hotword_scorer is None else hotword_scorer.score(new_text)
                    cached_lm[key] = (raw + hot, raw, end_state)
                lm_score = cached_lm[key][0]
                if word_part:
                    if word_part not in cached_partial:
                        if hotword_scorer is not None and word_part in hotword_scorer:
                            cached_partial[word_part] = hotword_scorer.score_partial_token(
                                word_part)
                        else:
                            cached_partial[word_part] = language_model.score_partial_token(
                                word_part)
                    lm_score += cached_partial[word_part]
                score = logit_score + lm_score + bonus
            out.append((new_text, "", word_part, last_char, frames, part_frames, logit_score,
                        node, partial, bonus, score))
        return out


def _merge_biased(beams: list[_Beam]) -> list[_Beam]:
    """Merge beams with the same prefix (CTC: sum their acoustic probabilities)."""
    merged: dict[tuple[str, str, Any], _Beam] = {}
    for beam in beams:
        key = (_merge_tokens(beam[0], beam[1]), beam[2], beam[3])
        previous = merged.get(key)
        if previous is None:
            merged[key] = beam
            continue
        total = _sum_log_scores(previous[6], beam[6])
        # The bonus depends on the frames a unit was emitted at, so alignments of one prefix
        # differ: keep the graph state of the alignment that scores best on its own (on a tie,
        # the later one, as pyctcdecode does).
        if beam[9] == previous[9] or beam[6] + beam[9] >= previous[6] + previous[9]:
            keep = beam
        else:
            keep = previous
        merged[key] = keep[:6] + (total,) + keep[7:]  # type: ignore[assignment]
    return list(merged.values())


def _prune_history_biased(beams: list[tuple], lm_order: int) -> list[_Beam]:
    """pyctcdecode's history pruning, with the graph node as part of the history."""
    min_n_history = max(1, lm_order - 1)
    seen: set[tuple] = set()
    out: list[_Beam] = []
    for beam in beams:
        key = (tuple(beam[0].split()[-min_n_history:]), beam[2], beam[3], beam[7])
        if key not in seen:
            seen.add(key)
            out.append(beam[:-1])
    return out
