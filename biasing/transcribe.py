"""Audio in, biased transcripts out: an acoustic model feeding the biased decoder.

>>> transcriber = Transcriber("quartznet:../shared/models/quartznet15x5")  # doctest: +SKIP
>>> result = transcriber.transcribe(["call.wav"], entities=["Zelenskyy"])[0]  # doctest: +SKIP
>>> result.text, result.words[0], result.entities  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .entities import EntityInput, as_entity_list

AudioInput = str | os.PathLike | tuple[np.ndarray, int]
# above this many seconds an input is decoded on its own in overlapping chunks
LONG_AUDIO_S = 30.0
BATCH_SIZE = 8
PHONE_HEAD = "phones"  # the auxiliary head the phonetic techniques read


@dataclass(frozen=True)
class WordTiming:
    """A word of the transcript and when it was said."""

    word: str  # as output (listed entities in their original spelling)
    start_s: float  # start time in seconds
    end_s: float  # end time in seconds


@dataclass(frozen=True)
class EntityHit:
    """A listed entity recognised in the transcript."""

    entity: str  # as listed
    start_s: float  # start time in seconds
    end_s: float  # end time in seconds
    first_word: int  # index into ``Transcript.words``
    last_word: int  # index into ``Transcript.words`` (inclusive)
    technique: str = "boost"  # what placed it: "boost" (beam search), "lookup" (phone
    # spotting)
    phone_score: float | None = None  # its phones' log score on the phone head over its
    # frames, relative to the head's best path (0 = best); None when not checked


@dataclass(frozen=True)
class Attention:
    """Where the contextual adapter looked: per output frame, its weights over ``<no-bias>``
    and the listed entities (each row sums to 1)."""

    weights: np.ndarray  # (frames, 1 + N) float32; column 0 is <no-bias>
    entities: tuple[str, ...]  # the N entities of columns 1..N, as listed
    frame_shift_s: float  # seconds between frames


@dataclass(frozen=True)
class Overrides:
    """Changes to a :class:`Transcriber`'s settings for one call (a server request's);
    None keeps the transcriber's own."""

    weight: float | None = None  # biasing strength (0 turns biasing off, the adapter too)
    phonetic: bool | None = None  # use the phone head; True where there is none raises
    adapter: bool | None = None  # use the contextual adapter; True where none is loaded
    # raises
    merge_spots: bool | None = None  # merge unit spots into the best hypothesis


class UnavailableOptionError(ValueError):
    """An :class:`Overrides` field asks for what the transcriber does not have."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field  # "phonetic" or "adapter"

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.field, str(self)))  # crosses process boundaries intact


@dataclass(frozen=True)
class Transcript:
    """The result for one input."""

    source: str  # the file path, or "<array N>" for in-memory audio
    text: str  # the transcript
    words: list[WordTiming]  # per word, in order
    entities: list[EntityHit]  # listed entities found, in order
    duration_s: float  # length of the audio in seconds
    error: str | None = None  # why this input failed (on_error="report"); then text is ""
    attention: Attention | None = None  # the adapter's attention, when asked for
    # (``transcribe(..., attention=True)``) and the adapter ran


class Transcriber:
    """Transcribe audio with a CTC model and a per-call entity list.

    Args:
        model: an ``AcousticModel`` or a spec (``"default"``, ``quartznet:DIR``,
            ``hf:DIR``); None loads the bundled default model.
        kenlm_model_path: optional KenLM model for the decoder.
        tokenizer: sentencepiece model that made the model's labels; by default the one
            that comes with the model, if any.
        beam_width: beams kept by the decoder (default ``DEFAULT_BEAM_WIDTH``, 100).
        device: ``"cpu"`` or ``"cuda"`` for a model given by spec.
        threads: torch threads for a model given by spec (process wide); default the cores
            free for this process now (``biasing.models.free_cores``: those it may use less
            those other work keeps busy).
        phonetic: run the phonetic techniques (phone lookup, verification, rescoring) on the
            model's ``phones`` head: None (default) when the model has one, True requires
            it, False never.
        lexicon: user pronunciations for them (``biasing.lexicon.Lexicon``).
        companion: for a model without a phone head, a model with one run beside it on
            the same audio to supply phone posteriors (``biasing.models.companion``):
            ``"default"`` (the default: the bundled model), a model spec, a ``Companion``,
            or None / ``"none"`` for none (then such a model gets no phonetic techniques).
        adapter: the contextual adapter (``biasing.adapters``), which shifts the model's
            output toward the list before decoding: True uses the model folder's
            ``adapter.npz`` (the bundled model has one); a path or an ``Adapter`` uses that
            one; None (default) or False none. Off by default: on the tuning split it adds
            little to the decoder's techniques and costs WER on general speech
            (docs/adapter.md, docs/tuning.md). It runs only for a non-empty list and a
            non-zero ``weight``.
        list_cache: entity lists kept compiled in memory, in one cache (context graph,
            spellings, unit trie, pronunciations, adapter vectors), keyed by content;
            default ``DEFAULT_LIST_CACHE`` (16).
        pronunciation_cache: where compiled pronunciations are kept on disk (default the
            cache root); False keeps them in memory only (a server's callers' lists).
        **options: decoder options (``BiasingOptions`` fields, LM ``alpha``/``beta``).

    Raises:
        ValueError: ``phonetic=True`` and the model has no ``phones`` head; ``adapter=True``
            and the model folder has no adapter; an adapter that does not match the model.
    """

    def __init__(self, model: Any = None, kenlm_model_path: str | os.PathLike[str] | None = None,
                 tokenizer: Any = None, beam_width: int | None = None, device: str = "cpu",
                 threads: int | None = None, phonetic: bool | None = None, lexicon: Any = None,
                 companion: Any = "default", adapter: Any = None,
                 list_cache: int | None = None,
                 pronunciation_cache: str | os.PathLike[str] | bool | None = None,
                 **options: Any) -> None:
        from .decoders import DEFAULT_BEAM_WIDTH, DEFAULT_LIST_CACHE, build_biased_decoder
        from .models import DEFAULT_MODEL, load_model, set_threads

        spec = None
        if isinstance(model, str) or model is None:
            set_threads(threads)
            spec = model or DEFAULT_MODEL
            model = load_model(spec, device=device)
        if tokenizer is None:
            tokenizer = getattr(model, "tokenizer_path", None)
        if phonetic is not False:
            from .models.companion import attach_companion

            model = attach_companion(model, companion, device)
        phone_labels = getattr(model, "head_labels", {}).get(PHONE_HEAD)
        if phonetic and phone_labels is None:
            name = f"model {spec!r}" if spec else type(model).__name__
            raise ValueError(f"the phonetic techniques need a model with a {PHONE_HEAD!r} "
                             f"head or a companion; {name} has heads "
                             f"{sorted(getattr(model, 'head_labels', {})) or 'none'} and no "
                             f"companion (companion='default' runs the bundled model beside "
                             f"it)")
        self.model = model
        self.beam_width = DEFAULT_BEAM_WIDTH if beam_width is None else beam_width
        self.phonetic = phonetic is not False and phone_labels is not None
        self.decoder = build_biased_decoder(
            model.labels, kenlm_model_path=kenlm_model_path, tokenizer=tokenizer,
            phone_labels=phone_labels if self.phonetic else None, lexicon=lexicon,
            list_cache=DEFAULT_LIST_CACHE if list_cache is None else list_cache,
            pronunciation_cache=pronunciation_cache, **options)
        self.adapter = _adapter(adapter, model, spec)
        if options.get("weight", 1.0) == 0:
            self.adapter = None  # weight 0 changes nothing, the adapter included
        if self.adapter is not None:
            self.adapter.lists = self.decoder.lists  # one cache for everything of a list

    def transcribe(self, inputs: AudioInput | Sequence[AudioInput],
                   entities: EntityInput | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   on_error: Literal["raise", "report"] = "raise",
                   attention: bool = False) -> list[Transcript]:
        """Transcribe files (any rate, mono or stereo) or ``(wave, rate)`` pairs.

        ``entities`` apply to this call only. ``progress(done, total)`` is called after each
        input. Returns one :class:`Transcript` per input, in order. An input that cannot be
        read (missing, not audio, truncated, too short) raises, or with
        ``on_error="report"`` gives a Transcript whose ``error`` says why, and the others
        are still transcribed. ``attention=True`` keeps the adapter's attention weights in
        ``Transcript.attention``.
        """
        items = _as_items(inputs)
        results: list[Transcript] = []
        for result in self.stream(items, entities, on_error, attention):
            results.append(result)
            if progress:
                progress(len(results), len(items))
        return results

    def stream(self, inputs: AudioInput | Sequence[AudioInput],
               entities: EntityInput | None = None,
               on_error: Literal["raise", "report"] = "raise",
               attention: bool = False) -> Iterator[Transcript]:
        """As :meth:`transcribe`, but each Transcript is yielded as soon as the few inputs
        read with it are decoded, so memory does not grow with the number of inputs. The
        arguments and the entity list are checked now, before any audio is read."""
        if on_error not in ("raise", "report"):
            raise ValueError(f"on_error must be 'raise' or 'report', got {on_error!r}")
        items = _as_items(inputs)
        entity_list = as_entity_list(entities)
        self.decoder.compile(entity_list)  # fail on a bad list before any audio work
        return self._batches(items, entity_list, on_error, attention)

    def _batches(self, items: list[AudioInput], entities: Any, on_error: str,
                 attention: bool) -> Iterator[Transcript]:
        for start in range(0, len(items), BATCH_SIZE):
            yield from self._batch(items[start:start + BATCH_SIZE], start, entities, on_error,
                                   attention)

    def _batch(self, items: list[AudioInput], first: int, entities: Any,
               on_error: str, attention: bool) -> list[Transcript]:
        """Read, run and decode a few inputs; failed reads reported or raised."""
        from .audio import load_audio, to_model_rate
        from .models import forward_long

        rate = self.model.sample_rate
        waves: dict[int, np.ndarray] = {}
        sources: list[str] = []
        failed: dict[int, str] = {}
        for n, item in enumerate(items):
            source = f"<array {first + n}>" if isinstance(item, tuple) else os.fspath(item)
            sources.append(source)
            try:
                if isinstance(item, tuple):
                    wave, item_rate = item
                    waves[n] = to_model_rate(np.asarray(wave), item_rate, rate)
                else:
                    waves[n] = load_audio(item, rate)
            except (OSError, ValueError) as err:
                if on_error == "raise":
                    raise
                failed[n] = str(err)
        layers = self.adapter.layers if self.uses_adapter(entities) else ()
        short = [i for i, w in waves.items() if len(w) <= LONG_AUDIO_S * rate]
        outputs = dict(zip(short, self.model.forward([waves[i] for i in short], layers)))
        results = []
        for n, source in enumerate(sources):
            if n in failed:
                results.append(Transcript(source, "", [], [], 0.0, error=failed[n]))
                continue
            wave = waves[n]
            out = outputs.pop(n, None) or forward_long(self.model, wave, layers,
                                                       chunk_s=LONG_AUDIO_S)
            results.append(self.decode_output(out, entities, source=source,
                                              duration_s=len(wave) / rate,
                                              attention=attention))
        return results

    def uses_adapter(self, entities: EntityInput | None,
                     overrides: Overrides | None = None) -> bool:
        """Whether decoding ``entities`` with ``overrides`` runs the contextual adapter (the
        model must then be run with ``layers=self.adapter.layers``): only for a non-empty
        list at a non-zero weight, with an adapter loaded and not turned off.

        Raises:
            UnavailableOptionError: ``overrides`` asks for a phone head or an adapter this
                transcriber does not have.
        """
        overrides = overrides or Overrides()
        if overrides.phonetic and not self.phonetic:
            raise UnavailableOptionError(
                "phonetic", "phonetic=true, but the model has no phone head (or the "
                            "phonetic techniques were turned off)")
        if overrides.adapter and self.adapter is None:
            raise UnavailableOptionError(
                "adapter", "adapter=true, but this runs without a contextual adapter "
                           "(load one: Transcriber(adapter=...), ctc-biasing serve "
                           "--adapter)")
        weight = self.decoder.options.weight if overrides.weight is None else overrides.weight
        return (self.adapter is not None and overrides.adapter is not False and weight > 0
                and len(as_entity_list(entities)) > 0)

    def decode_output(self, output: Any, entities: EntityInput | None = None,
                      overrides: Overrides | None = None, *, source: str = "<output>",
                      duration_s: float | None = None, attention: bool = False,
                      ) -> Transcript:
        """Decode one model output (``self.model.forward(...)[i]``) with a list: the second
        half of :meth:`transcribe`, for callers that run the model themselves (a server
        batching requests). ``overrides`` change this transcriber's settings for this call
        only.

        Raises:
            UnavailableOptionError: see :meth:`uses_adapter`.
        """
        entities = as_entity_list(entities)
        overrides = overrides or Overrides()
        use_adapter = self.uses_adapter(entities, overrides)
        changes = {name: value for name, value in (("weight", overrides.weight),
                                                   ("merge_spots", overrides.merge_spots))
                   if value is not None}
        decoder = self.decoder.with_options(**changes) if changes else self.decoder
        shift = self.model.frame_shift_s
        if duration_s is None:
            duration_s = len(output.logprobs) * shift
        use_phones = self.phonetic if overrides.phonetic is None else overrides.phonetic
        phones = output.heads.get(PHONE_HEAD) if use_phones else None
        logprobs, weights = output.logprobs, None
        if use_adapter:
            biased = self.adapter.bias(output, entities)
            logprobs = biased.logprobs
            if attention and biased.attention is not None:
                weights = Attention(biased.attention, biased.entities, shift)
        best = decoder.decode_hypotheses(logprobs, beam_width=self.beam_width,
                                         entities=entities, phones=phones, n_best=1)[0]
        words = [WordTiming(w, s * shift, e * shift) for w, (s, e) in best.words]
        hits = [EntityHit(m.text, m.start_frame * shift, m.end_frame * shift, m.first_word,
                          m.last_word, m.technique, m.phone_score) for m in best.entities]
        return Transcript(source, best.text, words, hits, duration_s, attention=weights)


def _adapter(adapter: Any, model: Any, spec: str | None) -> Any:
    """The ``Adapter`` that ``Transcriber(adapter=...)`` asks for, bound to ``model``."""
    if adapter is None or adapter is False:
        return None
    from .adapters import ADAPTER_FILE, Adapter, folder_adapter_path, load_adapter

    if isinstance(adapter, Adapter):
        return adapter
    if adapter is True:
        path = folder_adapter_path(model)
        if path is None:
            name = f"model {spec!r}" if spec else type(model).__name__
            folder = getattr(model, "folder", None)
            raise ValueError(f"adapter=True but {name} has no {ADAPTER_FILE} in its "
                             f"folder ({folder or 'a model made in memory has none'})")
        return load_adapter(path, model)
    return load_adapter(adapter, model)


def _as_items(inputs: AudioInput | Sequence[AudioInput]) -> list[AudioInput]:
    """One input or a sequence of them, as a list."""
    return [inputs] if isinstance(inputs, (str, os.PathLike, tuple)) else list(inputs)
