"""Biasing techniques as data: what ``ctc-biasing eval --techniques`` can compare.

A :class:`Technique` is a name, a line of description, the decoder options that define it
and what it needs from the setup (a KenLM model, an auxiliary head of the acoustic model).
Most techniques are the biased decoder with some options fixed; a technique with custom
code (``hotwords``, the peer baseline) gives a ``factory`` instead. New techniques register
by name with :func:`register_technique`.

Options are merged as ``{**defaults, **user options (--set), **fixed}``: ``defaults`` are
the technique's starting point that ``--set`` may change (``g2g`` uses 3 variants unless
told otherwise), ``fixed`` are what makes it that technique (``subword`` never adds G2G
variants, whatever ``--set`` says).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..entities import EntityList
from ..models import ModelOutput

__all__ = ["ADAPTER", "TECHNIQUES", "DecodeFn", "EvalContext", "Technique", "parse_techniques",
           "register_technique"]

# Decodes one utterance's model output with its entity list; returns the transcript.
DecodeFn = Callable[[ModelOutput, EntityList], str]

KENLM = "kenlm"  # a need: the technique scores with a language model (--kenlm)
PHONES = "phones"  # the phone head the phonetic techniques read
ADAPTER = "adapter"  # a need: the contextual adapter (the model folder's, or --adapter)


@dataclass(frozen=True)
class EvalContext:
    """The setup every technique of one evaluation shares."""

    labels: list[str]  # the model's labels (pyctcdecode convention)
    kenlm_model_path: str | None  # --kenlm
    tokenizer: Any  # sentencepiece model of the labels, if any
    beam_width: int  # --beam-width
    options: Mapping[str, Any] = field(default_factory=dict)  # --set: decoder options
    head_labels: Mapping[str, list[str]] = field(default_factory=dict)  # the model's heads
    model: str = ""  # the model's spec, for messages
    adapter: Any = None  # the contextual adapter bound to the model (biasing.adapters), if any

    @classmethod
    def for_model(cls, model: Any, spec: str, kenlm_model_path: str | None, tokenizer: Any,
                  beam_width: int, options: Mapping[str, Any], adapter: Any = None,
                  ) -> EvalContext:
        """The context of an evaluation of ``model`` (loaded from ``spec``); ``tokenizer``
        None takes the model's own, if it has one."""
        return cls(labels=model.labels, kenlm_model_path=kenlm_model_path,
                   tokenizer=tokenizer or getattr(model, "tokenizer_path", None),
                   beam_width=beam_width, options=dict(options),
                   head_labels=getattr(model, "head_labels", {}), model=spec, adapter=adapter)


@dataclass(frozen=True)
class Technique:
    """A named way of decoding with an entity list."""

    name: str  # what --techniques calls it
    description: str  # one line for the report
    defaults: Mapping[str, Any] = field(default_factory=dict)  # options --set may override
    fixed: Mapping[str, Any] = field(default_factory=dict)  # options that define it
    needs: frozenset[str] = frozenset()  # KENLM and/or names of model heads ("phones")
    uses_list: bool = True  # False: decodes without the list (the "none" baseline)
    factory: Callable[[EvalContext], DecodeFn] | None = None  # custom code, if any
    phonetic: bool | None = False  # run the phonetic techniques on the phone head: True
    # (then PHONES is among ``needs``), None: when the model has one
    spot: bool = False  # greedy decoding + unit spotting instead of the beam search

    @property
    def uses_adapter(self) -> bool:
        """Whether the model's output goes through the contextual adapter first."""
        return ADAPTER in self.needs

    def heads(self, context: EvalContext) -> list[str]:
        """The model heads this technique reads in ``context``."""
        heads = {need for need in self.needs if need not in (KENLM, ADAPTER)}
        if self.phonetic is None and PHONES in context.head_labels:
            heads.add(PHONES)
        return sorted(heads)

    def options(self, context: EvalContext) -> dict[str, Any]:
        """The decoder options this technique decodes with in ``context``."""
        return {**self.defaults, **context.options, **self.fixed}

    def missing(self, context: EvalContext) -> list[str]:
        """What the technique needs that ``context`` lacks, as phrases for a message."""
        out = []
        for need in sorted(self.needs):
            if need == KENLM and context.kenlm_model_path is None:
                out.append("a language model (pass --kenlm)")
            elif need == ADAPTER and context.adapter is None:
                which = f" ({context.model} has none)" if context.model else ""
                out.append(f"a contextual adapter{which}; pass --adapter FILE")
            elif need not in (KENLM, ADAPTER) and need not in context.head_labels:
                which = f" ({context.model} has {', '.join(sorted(context.head_labels)) or 'none'})" \
                    if context.model else ""
                hint = "; --companion default runs the bundled model beside it" \
                    if need == "phones" else ""
                out.append(f"a model with a {need!r} head{which}{hint}")
        return out

    def build(self, context: EvalContext) -> DecodeFn:
        """The decode function for ``context``.

        Raises:
            ValueError: the context lacks what the technique needs, or an option is bad.
        """
        missing = self.missing(context)
        if missing:
            raise ValueError(f"technique {self.name!r} needs {' and '.join(missing)}")
        if self.factory is not None:
            return self.factory(context)
        phonetic = PHONES in self.heads(context) and self.phonetic is not False
        decoder = _decoder(context, self.options(context), phonetic)
        beam_width = context.beam_width
        adapter = context.adapter if self.uses_adapter else None

        def logprobs(output: ModelOutput, entities: EntityList) -> Any:
            return output.logprobs if adapter is None else \
                adapter.bias(output, entities).logprobs

        if not self.uses_list:
            return lambda output, entities: decoder.decode(output.logprobs, beam_width,
                                                           entities=[])
        if self.spot:
            return lambda output, entities: decoder.spot(logprobs(output, entities),
                                                         entities).text
        if phonetic:
            return lambda output, entities: decoder.decode(
                logprobs(output, entities), beam_width, entities=entities,
                phones=output.heads[PHONES])
        return lambda output, entities: decoder.decode(logprobs(output, entities), beam_width,
                                                       entities=entities)


TECHNIQUES: dict[str, Technique] = {}


def register_technique(technique: Technique) -> Technique:
    """Make ``technique`` available to ``ctc-biasing eval --techniques`` (replaces one of
    the same name)."""
    TECHNIQUES[technique.name] = technique
    return technique


def parse_techniques(names: str) -> list[Technique]:
    """``"none,subword"`` -> techniques; unknown names raise ValueError listing known ones."""
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in TECHNIQUES]
    if unknown or not chosen:
        raise ValueError(f"unknown technique(s) {', '.join(unknown) or '(none given)'}; "
                         f"known: {', '.join(TECHNIQUES)}")
    return [TECHNIQUES[n] for n in dict.fromkeys(chosen)]


def _decoder(context: EvalContext, options: Mapping[str, Any], phonetic: bool = False) -> Any:
    from ..decoders import build_biased_decoder

    return build_biased_decoder(
        context.labels, kenlm_model_path=context.kenlm_model_path,
        tokenizer=context.tokenizer,
        phone_labels=context.head_labels[PHONES] if phonetic else None, **options)


def _hotwords(context: EvalContext) -> DecodeFn:
    """pyctcdecode's own decoder with its hotwords, given the spelling the model writes
    (e.g. lower case): the peer baseline, so it runs pyctcdecode itself."""
    try:
        from pyctcdecode import build_ctcdecoder
    except ImportError:
        raise ImportError("the hotwords baseline runs pyctcdecode: pip install "
                          "'ctc-biasing[pyctcdecode]'") from None
    from ..decoders import quiet_stderr
    from ..entities import normalize_entity
    from ..tokenizer import make_tokenizer

    settings = {k: v for k, v in context.options.items()
                if k in ("alpha", "beta", "unk_score_offset", "lm_score_boundary")}
    with quiet_stderr():  # KenLM prints loading progress bars on stderr
        decoder = build_ctcdecoder(context.labels, context.kenlm_model_path, **settings)
    inventory = make_tokenizer(context.labels, context.tokenizer).inventory

    def decode(output: ModelOutput, entities: EntityList) -> str:
        # pyctcdecode matches hotwords against decoded text; unspellable entries are left out
        spelled = (normalize_entity(e.text, inventory) for e in entities)
        hotwords = [norm for norm, offending in spelled if norm and not offending]
        return str(decoder.decode(output.logprobs, context.beam_width, hotwords=hotwords))
    return decode


# the context graph's own bonuses, off: only the LM's BOOST class biases
_NO_GRAPH = {"unit_bonus": 0.0, "adaptive_scale": 0.0, "max_adaptive": 0.0,
             "completion_bonus": 0.0, "force_window": 0.0}
_BUILT_IN: Sequence[Technique] = (
    Technique("none", "plain beam search, no list (the same LM, if any)", uses_list=False),
    Technique("hotwords", "pyctcdecode's own hotwords with the same list (peer baseline)",
              factory=_hotwords),
    Technique("subword", "adaptive subword boosting in the beam search (context graph)",
              fixed={"lm_boost_logp": None, "g2g_variants": 0, "merge_spots": False}),
    Technique("lm", "unigram boosting through the KenLM BOOST class only (needs --kenlm)",
              fixed={**_NO_GRAPH, "g2g_variants": 0, "merge_spots": False},
              needs=frozenset({KENLM})),
    Technique("g2g", "subword boosting plus sound-alike spellings of every entity "
                     "(G2G; k from --set g2g_variants=K, default 3)",
              defaults={"g2g_variants": 3}, fixed={"lm_boost_logp": None,
                                                   "merge_spots": False}),
    Technique("phonetic", "subword boosting, then phone-spotting lookup, verification and "
                          "n-best rescoring on the phone head",
              fixed={"lm_boost_logp": None, "g2g_variants": 0, "merge_spots": False},
              phonetic=True, needs=frozenset({PHONES})),
    Technique("phonetic-spot", "phonetic, then unit spotting merged into its output (what "
                               "Transcriber does by default with a phone head and no LM)",
              fixed={"lm_boost_logp": None, "g2g_variants": 0, "merge_spots": True},
              phonetic=True, needs=frozenset({PHONES})),
    Technique("spot", "greedy decoding plus unit spotting of the list (NeMo CTC-WS style; "
                      "no beam search)", spot=True),
    Technique("all", "every decoder technique together (subword, G2G, LM BOOST class, unit "
                     "spots merged, and the phonetic ones when the model has a phone head)",
              defaults={"g2g_variants": 3}, fixed={"merge_spots": True}, phonetic=None),
    Technique("adapter", "the contextual adapter shifts the model's output toward the list, "
                         "then plain beam search (no decoder biasing)",
              fixed={"weight": 0.0}, needs=frozenset({ADAPTER})),
    Technique("joint", "the contextual adapter, then every decoder technique (as 'all')",
              defaults={"g2g_variants": 3}, fixed={"merge_spots": True}, phonetic=None,
              needs=frozenset({ADAPTER})),
)
for _technique in _BUILT_IN:
    register_technique(_technique)
