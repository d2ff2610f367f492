"""`ctc-biasing eval`: how much each biasing technique helps, and what it costs.

The model's log-probabilities are computed once per utterance (cached on disk, keyed by
model and audio) and decoded once per technique. Every technique is scored against the
same per-utterance entity lists, so the numbers compare.

Techniques register themselves by name (:func:`register_technique`); a technique is a
function that receives the evaluation context and returns a decode function
``(logprobs, entities) -> text``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .entities import EntityList
from .models import DEFAULT_MODEL, default_model_dir

DecodeFn = Callable[[np.ndarray, EntityList], str]
TechniqueFactory = Callable[["EvalContext"], DecodeFn]


@dataclass(frozen=True)
class Technique:
    """A named way of decoding with an entity list."""

    name: str  # what --techniques calls it
    description: str  # one line for the report
    factory: TechniqueFactory  # builds the decode function for a context


TECHNIQUES: dict[str, Technique] = {}


def register_technique(name: str, description: str,
                       ) -> Callable[[TechniqueFactory], TechniqueFactory]:
    """Decorator: make a technique available to ``ctc-biasing eval --techniques``."""
    def add(factory: TechniqueFactory) -> TechniqueFactory:
        TECHNIQUES[name] = Technique(name, description, factory)
        return factory
    return add


@dataclass
class EvalContext:
    """What a technique may use to build its decoder."""

    labels: list[str]  # the model's labels
    kenlm_model_path: str | None  # --kenlm
    tokenizer: Any  # sentencepiece model of the labels, if any
    beam_width: int  # --beam-width
    options: dict[str, Any] = field(default_factory=dict)  # extra decoder options


def _decoder(context: EvalContext, **options: Any) -> Any:
    from .decoders import build_biased_decoder

    return build_biased_decoder(context.labels, kenlm_model_path=context.kenlm_model_path,
                                tokenizer=context.tokenizer, **{**context.options, **options})


_NO_GRAPH = {"unit_bonus": 0.0, "adaptive_scale": 0.0, "max_adaptive": 0.0,
             "completion_bonus": 0.0, "force_window": 0.0}


@register_technique("none", "plain beam search, no list (the same LM, if any)")
def _none(context: EvalContext) -> DecodeFn:
    decoder = _decoder(context)
    return lambda logprobs, entities: decoder.decode(logprobs, [],
                                                     beam_width=context.beam_width)


@register_technique("hotwords", "pyctcdecode's own hotwords with the same list (peer baseline)")
def _hotwords(context: EvalContext) -> DecodeFn:
    from .entities import normalize_entity
    from .tokenizer import make_tokenizer

    decoder = _decoder(context)
    inventory = make_tokenizer(decoder.labels, context.tokenizer).inventory

    def decode(logprobs: np.ndarray, entities: EntityList) -> str:
        # pyctcdecode matches hotwords against decoded text: give it the spelling the model
        # writes (e.g. lower case), not the listed one; unspellable entries are left out
        spelled = (normalize_entity(e.text, inventory) for e in entities)
        hotwords = [norm for norm, offending in spelled if norm and not offending]
        return str(decoder.decode(logprobs, [], beam_width=context.beam_width,
                                  hotwords=hotwords))
    return decode


@register_technique("subword", "adaptive subword boosting in the beam search (context graph)")
def _subword(context: EvalContext) -> DecodeFn:
    decoder = _decoder(context, lm_boost_logp=None, g2g_variants=0)
    return lambda logprobs, entities: decoder.decode(logprobs, entities,
                                                     beam_width=context.beam_width)


@register_technique("lm", "unigram boosting through the KenLM BOOST class only (needs --kenlm)")
def _lm(context: EvalContext) -> DecodeFn:
    if context.kenlm_model_path is None:
        raise ValueError("technique 'lm' needs a language model: pass --kenlm")
    decoder = _decoder(context, **_NO_GRAPH, g2g_variants=0)
    return lambda logprobs, entities: decoder.decode(logprobs, entities,
                                                     beam_width=context.beam_width)


@register_technique("g2g", "subword boosting plus sound-alike spellings of every entity "
                           "(G2G; k from --set g2g_variants=K, default 3)")
def _g2g(context: EvalContext) -> DecodeFn:
    k = context.options.get("g2g_variants", 3)
    decoder = _decoder(context, lm_boost_logp=None, g2g_variants=k)
    return lambda logprobs, entities: decoder.decode(logprobs, entities,
                                                     beam_width=context.beam_width)


@register_technique("all", "every decoder technique together (subword, G2G, LM BOOST class)")
def _all(context: EvalContext) -> DecodeFn:
    decoder = _decoder(context, g2g_variants=context.options.get("g2g_variants", 3))
    return lambda logprobs, entities: decoder.decode(logprobs, entities,
                                                     beam_width=context.beam_width)


def parse_techniques(names: str) -> list[Technique]:
    """``"none,subword"`` -> techniques; unknown names raise ValueError listing known ones."""
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in TECHNIQUES]
    if unknown or not chosen:
        raise ValueError(f"unknown technique(s) {', '.join(unknown) or '(none given)'}; "
                         f"known: {', '.join(TECHNIQUES)}")
    return [TECHNIQUES[n] for n in dict.fromkeys(chosen)]


# ------------------------------------------------------------------------- entity lists

_CAPITALISED = re.compile(r"[A-Z][\w'’.&-]*")


def auto_entities(text: str, is_rare: Callable[[str], bool]) -> list[str]:
    """Rare capitalised words and phrases of a raw transcript.

    Runs of capitalised words form one candidate ("Jean-Luc Picard"); a run is kept when
    at least one of its words is rare. The first word of a sentence is only kept as part of
    such a run if it is rare itself.
    """
    found: list[str] = []
    for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
        words = sentence.split()
        run: list[str] = []
        for position, word in enumerate([*words, ""]):
            core = word.strip(",;:!?\"()[]")
            if core and _CAPITALISED.fullmatch(core) and not (position == 0 and
                                                                not is_rare(core)):
                run.append(core.rstrip("."))
                continue
            if run and any(is_rare(w) for w in run):
                found.append(" ".join(run))
            run = []
    return list(dict.fromkeys(found))


def wordfreq_rarity(threshold: float = 3.0) -> Callable[[str], bool]:
    """A word is rare when its Zipf frequency in English (``wordfreq``) is below ``threshold``."""
    try:
        from wordfreq import zipf_frequency
    except ImportError:
        raise ImportError("--entities auto needs wordfreq: pip install 'ctc-biasing[eval]' "
                          "(or pass --auto-reference-split to count words in a training split)"
                          ) from None
    return lambda word: zipf_frequency(word, "en") < threshold


def split_rarity(texts: Sequence[str], max_count: int = 1) -> Callable[[str], bool]:
    """A word is rare when it occurs at most ``max_count`` times in ``texts``."""
    counts: dict[str, int] = {}
    for text in texts:
        for word in text.lower().split():
            counts[word] = counts.get(word, 0) + 1
    return lambda word: counts.get(word.lower(), 0) <= max_count


def with_distractors(own: Sequence[str], pool: Sequence[str], size: int,
                     rng: random.Random) -> list[str]:
    """The utterance's own entities plus random distractors from ``pool`` up to ``size``."""
    own_keys = {e.casefold() for e in own}
    candidates = [d for d in pool if d.casefold() not in own_keys]
    extra = max(0, size - len(own))
    return [*own, *rng.sample(candidates, min(extra, len(candidates)))]


# ------------------------------------------------------------------------------ caching

def model_key(spec: str) -> str:
    """A cache key for a model spec: the spec and the size and mtime of its files."""
    kind, _, location = spec.partition(":")
    if spec == DEFAULT_MODEL:
        kind, location = "quartznet", str(default_model_dir())
    parts = [kind]
    folder = Path(location)
    if folder.is_dir():
        parts.append(str(folder.resolve()))
        for file in sorted(folder.iterdir()):
            if file.is_file():
                stat = file.stat()
                parts.append(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}")
    else:
        parts.append(spec)
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]


def audio_key(path: str | os.PathLike[str]) -> str:
    stat = Path(path).stat()
    text = f"{Path(path).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return hashlib.sha1(text.encode()).hexdigest()


# ---------------------------------------------------------------------------- the run

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


def run_eval(dataset: Sequence[Any], lists: dict[str, EntityList], model: Any, model_spec: str,
             techniques: Sequence[Technique], context: EvalContext, output: Path,
             cache_dir: Path | None = None, dataset_info: dict[str, Any] | None = None,
             progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Evaluate ``techniques`` on ``dataset`` (Utterance records) and write the report.

    ``lists[utterance.id]`` is the entity list each utterance is decoded and scored with.
    Writes ``results.json``, ``results.md``, ``results.png`` and
    ``hypotheses/<technique>.tsv`` into ``output``; returns the JSON content.
    """
    from .audio import load_audio
    from .metrics import aggregate, score_utterance
    from .models import forward_long

    decoders = {t.name: t.factory(context) for t in techniques}  # fail fast on bad setups
    output.mkdir(parents=True, exist_ok=True)
    cache = None if cache_dir is None else cache_dir / model_key(model_spec)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    logprobs: dict[str, np.ndarray] = {}
    audio_s = 0.0
    forward_s = 0.0
    for n, utt in enumerate(dataset, 1):
        file = None if cache is None else cache / f"{audio_key(utt.audio)}.npz"
        if file is not None and file.exists():
            stored = np.load(file)
            logprobs[utt.id], seconds = stored["logprobs"], float(stored["seconds"])
        else:
            wave = load_audio(utt.audio, model.sample_rate)
            seconds = len(wave) / model.sample_rate
            started = time.perf_counter()
            logprobs[utt.id] = forward_long(model, wave).logprobs
            forward_s += time.perf_counter() - started
            if file is not None:
                np.savez(file, logprobs=logprobs[utt.id], seconds=seconds)
        audio_s += seconds
        if progress:
            progress("model", n, len(dataset))

    results: dict[str, TechniqueResult] = {}
    hypotheses_dir = output / "hypotheses"
    hypotheses_dir.mkdir(exist_ok=True)
    for technique in techniques:
        decode = decoders[technique.name]
        scores = []
        decode_s = 0.0
        rows = ["id\treference\thypothesis\tfound\tmissed\tfalse_alarms"]
        for n, utt in enumerate(dataset, 1):
            entities = lists[utt.id]
            started = time.perf_counter()
            hyp = decode(logprobs[utt.id], entities)
            decode_s += time.perf_counter() - started
            score = score_utterance(utt.text, hyp, [e.text for e in entities])
            scores.append(score)
            rows.append("\t".join([utt.id, utt.text, hyp, *_entity_columns(score)]))
            if progress:
                progress(technique.name, n, len(dataset))
        corpus = aggregate(scores)
        results[technique.name] = TechniqueResult(
            wer=corpus.wer, b_wer=corpus.b_wer, u_wer=corpus.u_wer,
            entity_precision=corpus.entity_precision, entity_recall=corpus.entity_recall,
            entity_f1=corpus.entity_f1, rtf=decode_s / max(audio_s, 1e-9),
            n_utterances=len(scores))
        (hypotheses_dir / f"{technique.name}.tsv").write_text("\n".join(rows) + "\n",
                                                             encoding="utf-8")
    info = {**(dataset_info or {}), "n_utterances": len(dataset),
            "audio_hours": round(audio_s / 3600, 4), "model": model_spec,
            "forward_rtf": round(forward_s / audio_s, 5) if forward_s else None,
            "mean_list_size": round(sum(len(v) for v in lists.values()) / max(len(lists), 1), 1),
            "techniques": {t.name: t.description for t in techniques}}
    report = {"dataset": info, "results": {k: asdict(v) for k, v in results.items()}}
    (output / "results.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (output / "results.md").write_text(results_markdown(report), encoding="utf-8")
    _plot(report, output / "results.png")
    return report


def _entity_columns(score: Any) -> list[str]:
    found = [d.entity for d in score.entities if d.outcome == "found"]
    missed = [d.entity for d in score.entities if d.outcome == "missed"]
    alarms = [d.entity for d in score.entities if d.outcome == "false_alarm"]
    return ["|".join(found), "|".join(missed), "|".join(alarms)]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def results_markdown(report: dict[str, Any]) -> str:
    """One row per technique (percentages, RTF of decoding)."""
    lines = ["| technique | WER | B-WER | U-WER | entity P | entity R | entity F1 | decode RTF |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in report["results"].items():
        lines.append(f"| {name} | {_pct(r['wer'])} | {_pct(r['b_wer'])} | {_pct(r['u_wer'])} "
                     f"| {_pct(r['entity_precision'])} | {_pct(r['entity_recall'])} "
                     f"| {_pct(r['entity_f1'])} | {r['rtf']:.4f} |")
    return "\n".join(lines) + "\n"


def _plot(report: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("the results chart needs matplotlib: "
                          "pip install 'ctc-biasing[eval]'") from None
    names = list(report["results"])
    metrics = [("wer", "WER"), ("entity_f1", "entity F1"), ("b_wer", "B-WER"),
               ("u_wer", "U-WER")]
    fig, ax = plt.subplots(figsize=(1.6 + 1.6 * len(names), 4.0))
    width = 0.8 / len(metrics)
    highest = 1.0
    for k, (key, label) in enumerate(metrics):
        raw = [report["results"][n][key] for n in names]
        values = [np.nan if v is None else 100 * v for v in raw]
        bars = ax.bar(np.arange(len(names)) + (k - (len(metrics) - 1) / 2) * width, values,
                      width, label=label)
        ax.bar_label(bars, labels=["" if v is None else f"{100 * v:.1f}" for v in raw],
                     fontsize=7)
        highest = max([highest, *(v for v in values if not np.isnan(v))])
    ax.set_ylim(0, highest * 1.15)
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylabel("%  (undefined values are left out)")
    dataset = report["dataset"]
    ax.set_title(f"{dataset.get('name', 'dataset')}: {dataset['n_utterances']} utterances, "
                 f"mean list {dataset['mean_list_size']}", fontsize=9)
    ax.legend(fontsize=8, ncols=len(metrics), loc="upper center",
              bbox_to_anchor=(0.5, -0.1), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
