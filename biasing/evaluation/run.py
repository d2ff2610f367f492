"""Run an evaluation: model outputs once per utterance, then every technique decodes them.

:func:`run_eval` computes and returns an :class:`EvalRun`; it writes nothing but cache
entries (see :mod:`.report` for the result files). Every technique is scored against the
same per-utterance entity lists, so the numbers compare.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..datasets import Utterance
from ..decoders.pronunciations import UnpronounceableEntityWarning
from ..entities import EntityList, UnrepresentableEntityWarning, normalize_entity
from ..metrics import UtteranceScore, aggregate, score_utterance
from ..models import AcousticModel, ModelOutput
from .cache import OutputCache
from .lists import mean_size
from .techniques import PHONES, DecodeFn, EvalContext, Technique

__all__ = ["Decoded", "EvalRun", "TechniqueResult", "TechniqueRun", "UtteranceResult",
           "decode_here", "model_output", "run_eval"]

# progress(stage, done, total): stage is "model" or a technique's name
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class TechniqueResult:
    """Corpus scores of one technique (fractions in 0..1)."""

    wer: float  # word error rate
    b_wer: float | None  # WER on words of the utterance's listed entities
    u_wer: float | None  # WER on the other words
    entity_precision: float | None  # listed entities output where said / all output
    entity_recall: float | None  # listed entities said that were output
    entity_f1: float | None  # harmonic mean of the two
    rtf: float  # decoding seconds per audio second (the forward pass is not included)
    n_utterances: int  # utterances scored


@dataclass(frozen=True)
class UtteranceResult:
    """One utterance decoded by one technique."""

    id: str  # the utterance id
    reference: str  # the dataset's transcript
    hypothesis: str  # the technique's transcript
    score: UtteranceScore  # errors and entity outcomes


@dataclass(frozen=True)
class TechniqueRun:
    """One technique over the whole dataset."""

    technique: Technique  # what ran
    options: Mapping[str, object]  # the decoder options it ran with (custom code: --set)
    result: TechniqueResult  # corpus scores
    utterances: tuple[UtteranceResult, ...]  # per utterance, in dataset order


@dataclass(frozen=True)
class EvalRun:
    """Everything an evaluation computed."""

    techniques: tuple[TechniqueRun, ...]  # in the order asked for
    n_utterances: int  # utterances in the dataset
    audio_s: float  # seconds of audio
    forward_s: float  # seconds spent in the model (0 when every output came from the cache)
    mean_list_size: float  # entries per utterance list
    unspellable: tuple[str, ...]  # list entries the model's units cannot spell (skipped)
    unpronounceable: tuple[str, ...] = ()  # list entries without a pronunciation, left out
    # of the phonetic techniques (when one ran)


@dataclass(frozen=True)
class Decoded:
    """One utterance through the model and every technique (what a backend returns)."""

    audio_s: float  # seconds of audio
    forward_s: float  # seconds in the model (0 from the cache)
    hypotheses: Mapping[str, tuple[str, float]]  # technique name -> (transcript, decode s)


# remote(dataset, lists) -> Decoded per utterance id: decodes somewhere else (a Ray cluster)
Remote = Callable[[Sequence[Utterance], Mapping[str, EntityList]], Mapping[str, Decoded]]


def run_eval(dataset: Sequence[Utterance], lists: Mapping[str, EntityList],
             model: AcousticModel, techniques: Sequence[Technique], context: EvalContext,
             cache: OutputCache | None = None, progress: Progress | None = None,
             remote: Remote | None = None) -> EvalRun:
    """Evaluate ``techniques`` on ``dataset``; ``lists[utterance.id]`` is the entity list each
    utterance is decoded and scored with.

    Every technique's decoder is built before the model runs, so a bad option or a missing
    LM fails at once. ``remote`` runs the model and the decoders elsewhere
    (:mod:`.distributed`); the scores are computed here either way.

    Raises:
        ValueError: a technique cannot be built, or an utterance has no list.
    """
    absent = [u.id for u in dataset if u.id not in lists]
    if absent:
        raise ValueError(f"{len(absent)} utterance(s) have no entity list, e.g. {absent[0]!r}")
    decoders = {t.name: t.build(context) for t in techniques}
    heads, _ = needed_outputs(techniques, context)
    decoded: Mapping[str, Decoded]
    if remote is None:
        decoded = decode_here(dataset, lists, model, techniques, decoders, context, cache,
                              progress)
    else:
        decoded = remote(dataset, lists)
    audio_s = sum(d.audio_s for d in decoded.values())
    runs = []
    for technique in techniques:
        results = []
        for utt in dataset:
            hypothesis = decoded[utt.id].hypotheses[technique.name][0]
            score = score_utterance(utt.text, hypothesis, [e.text for e in lists[utt.id]])
            results.append(UtteranceResult(utt.id, utt.text, hypothesis, score))
        decode_s = sum(decoded[u.id].hypotheses[technique.name][1] for u in dataset)
        corpus = aggregate(r.score for r in results)
        result = TechniqueResult(
            wer=corpus.wer, b_wer=corpus.b_wer, u_wer=corpus.u_wer,
            entity_precision=corpus.entity_precision, entity_recall=corpus.entity_recall,
            entity_f1=corpus.entity_f1, rtf=decode_s / max(audio_s, 1e-9),
            n_utterances=len(results))
        options = technique.options(context) if technique.factory is None else context.options
        runs.append(TechniqueRun(technique, dict(options), result, tuple(results)))
    return EvalRun(techniques=tuple(runs), n_utterances=len(dataset), audio_s=audio_s,
                   forward_s=sum(d.forward_s for d in decoded.values()),
                   mean_list_size=mean_size(lists),
                   unspellable=_unspellable(lists, context),
                   unpronounceable=_unpronounceable(lists) if PHONES in heads else ())


def needed_outputs(techniques: Sequence[Technique], context: EvalContext,
                   ) -> tuple[list[str], tuple[int, ...]]:
    """The model heads the techniques read and the intermediate layers the adapter reads
    (the adapter's heads and layers only when a technique uses it)."""
    adapted = any(t.uses_adapter for t in techniques) and context.adapter is not None
    heads = sorted({head for t in techniques for head in t.heads(context)} |
                   set(context.adapter.heads if adapted else ()))
    return heads, tuple(context.adapter.layers) if adapted else ()


def decode_here(dataset: Sequence[Utterance], lists: Mapping[str, EntityList],
                model: AcousticModel, techniques: Sequence[Technique],
                decoders: Mapping[str, DecodeFn], context: EvalContext,
                cache: OutputCache | None = None, progress: Progress | None = None,
                ) -> dict[str, Decoded]:
    """Model outputs for every utterance (from the cache where it has them), then each
    technique over all of them, in this process."""
    heads, layers = needed_outputs(techniques, context)
    outputs: dict[str, ModelOutput] = {}
    timing: dict[str, tuple[float, float]] = {}
    for n, utt in enumerate(dataset, 1):
        outputs[utt.id], seconds, spent = model_output(model, utt.audio, cache, heads, layers)
        timing[utt.id] = (seconds, spent)
        if progress:
            progress("model", n, len(dataset))
    hypotheses: dict[str, dict[str, tuple[str, float]]] = {u.id: {} for u in dataset}
    for technique in techniques:
        for n, utt in enumerate(dataset, 1):
            hypotheses[utt.id][technique.name] = decode_one(
                decoders[technique.name], outputs[utt.id], lists[utt.id])
            if progress:
                progress(technique.name, n, len(dataset))
    return {u.id: Decoded(*timing[u.id], hypotheses[u.id]) for u in dataset}


def decode_one(decode: DecodeFn, output: ModelOutput, entities: EntityList,
               ) -> tuple[str, float]:
    """(transcript, seconds) of one technique on one output."""
    started = time.perf_counter()
    with warnings.catch_warnings():
        # reported once for the whole run (EvalRun.unspellable, .unpronounceable), not per
        # utterance
        warnings.simplefilter("ignore", UnrepresentableEntityWarning)
        warnings.simplefilter("ignore", UnpronounceableEntityWarning)
        hypothesis = decode(output, entities)
    return hypothesis, time.perf_counter() - started


def model_output(model: AcousticModel, audio: Path, cache: OutputCache | None,
                 heads: Sequence[str], layers: Sequence[int] = (),
                 ) -> tuple[ModelOutput, float, float]:
    """(output, audio seconds, seconds spent in the model) from the cache or the model;
    ``layers`` are the intermediate layers to keep (the adapter's)."""
    from ..audio import load_audio
    from ..models import forward_long

    entry = None if cache is None else cache.entry(audio)
    stored = None if cache is None or entry is None else cache.load(entry, heads, layers)
    if stored is not None:
        return stored[0], stored[1], 0.0
    wave = load_audio(audio, model.sample_rate)
    seconds = len(wave) / model.sample_rate
    started = time.perf_counter()
    output = forward_long(model, wave, layers)
    spent = time.perf_counter() - started
    if cache is not None and entry is not None:
        cache.save(entry, output, seconds, heads, layers)
    return output, seconds, spent


def _unpronounceable(lists: Mapping[str, EntityList]) -> tuple[str, ...]:
    """Distinct list entries with a word the G2P cannot pronounce (digits, symbols)."""
    from ..lexicon import entity_words
    from ..lexicon.g2p import pronounceable

    texts = {e.text for entities in lists.values() for e in entities}
    bad = [t for t in texts if not all(pronounceable(w) for w in entity_words(t) or [""])]
    return tuple(sorted(bad, key=str.casefold))


def _unspellable(lists: Mapping[str, EntityList], context: EvalContext) -> tuple[str, ...]:
    """Distinct list entries the model's units cannot spell, sorted."""
    from ..tokenizer import make_tokenizer

    tokenizer = make_tokenizer(context.labels, context.tokenizer)
    texts = {e.text for entities in lists.values() for e in entities}
    bad = []
    for text in texts:
        norm, offending = normalize_entity(text, tokenizer.inventory)
        if offending or not norm or not tokenizer.segmentations(norm):
            bad.append(text)
    return tuple(sorted(bad, key=str.casefold))
