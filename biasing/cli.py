"""The ``ctc-biasing`` command line: ``decode``, ``transcribe``, ``eval``, ``make-testset``,
``train-adapter``, ``serve``, ``transcribe-corpus``.

Each subcommand is a function that takes the parsed arguments, prints its own result and
returns the exit status. Arguments that several subcommands share (the entity list, the
decoder settings, the model) are defined once, with defaults from the library's constants.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

from .decoders import DEFAULT_BEAM_WIDTH
from .decoders.inputs import log_softmax
from .entities import EntityList, OnError
from .models import DEFAULT_MODEL, MODEL_KINDS
from .paths import ensure_folder
from .readers import check_file, read_text

# ------------------------------------------------------------------------- shared pieces

def _add_entity_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("entity list")
    group.add_argument("--entities", help="entity file: one per line, optional <TAB>weight")
    group.add_argument("--skip-unrepresentable", action="store_true",
                       help="drop entities the model cannot spell instead of failing")


def _add_model_arguments(parser: argparse.ArgumentParser, companion: bool = True) -> None:
    group = parser.add_argument_group("acoustic model")
    kinds = ", ".join(f"{kind}:DIR" for kind in MODEL_KINDS)
    group.add_argument("--model", default=DEFAULT_MODEL,
                       help=f"{DEFAULT_MODEL} (the bundled model, the default) or {kinds}")
    if companion:
        group.add_argument("--companion", default="default", metavar="default|none|SPEC",
                           help="for a model without a phone head: a model with one run "
                                "beside it for the phonetic techniques (default: the "
                                "bundled model; none: no phonetic techniques)")
    group.add_argument("--device", default="cpu", help="cpu or cuda")
    group.add_argument("--threads", type=int,
                       help="torch threads (default: the cores free now: those this process "
                            "may use less those other work keeps busy)")


def _add_decoder_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("decoder")
    group.add_argument("--kenlm", help="KenLM model (.arpa or binary)")
    group.add_argument("--tokenizer", help="sentencepiece model that made the labels "
                       "(default: the model's own, if it has one)")
    group.add_argument("--beam-width", type=int, default=DEFAULT_BEAM_WIDTH,
                       help=f"beams kept per frame (default {DEFAULT_BEAM_WIDTH})")
    group.add_argument("--weight", type=float,
                       help="biasing strength: 0 = off, 1 = the default; the same as "
                            "--set weight=W")
    group.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="a decoder option (BiasingOptions field, or alpha/beta of the "
                            "LM), e.g. unit_bonus=0.3 or lm_boost_logp=none; repeatable")


def _add_ray_arguments(parser: argparse.ArgumentParser, switch: str) -> None:
    group = parser.add_argument_group("Ray (the ray extra)")
    if switch == "--ray":
        group.add_argument("--ray", action="store_true",
                           help="run the model and the decoders on Ray actors (a local "
                                "instance unless --ray-address)")
    else:
        group.add_argument("--no-ray", action="store_true",
                           help="run in this process (--threads torch threads)")
    group.add_argument("--ray-address", help="join a cluster: auto or HOST:PORT (default: "
                                             "start a local Ray instance)")
    group.add_argument("--num-actors", type=int,
                       help="actors holding the model (default: CPUs // threads per actor)")
    group.add_argument("--threads-per-actor", type=int, default=1,
                       help="torch threads and CPUs per actor (default 1)")
    group.add_argument("--gpus-per-actor", type=float, default=0.0,
                       help="GPUs per actor; > 0 runs the model on cuda")


def _ray_options(args: argparse.Namespace, use_ray: bool, fix: str) -> Any:
    """The RayOptions the Ray arguments ask for; None to run in this process."""
    from .raypool import RayOptions

    asked = [f"--{n.replace('_', '-')}" for n in ("ray_address", "num_actors")
             if getattr(args, n)] + (["--gpus-per-actor"] if args.gpus_per_actor else [])
    if not use_ray:
        if asked:
            raise ValueError(f"{', '.join(asked)} go with Ray, which this run does not use "
                             f"({fix})")
        return None
    if args.num_actors is not None and args.num_actors < 1:
        raise ValueError(f"--num-actors must be at least 1, got {args.num_actors}")
    if args.threads_per_actor < 1:
        raise ValueError(f"--threads-per-actor must be at least 1, got {args.threads_per_actor}")
    if args.gpus_per_actor < 0:
        raise ValueError(f"--gpus-per-actor must be >= 0, got {args.gpus_per_actor}")
    return RayOptions(address=args.ray_address, num_actors=args.num_actors,
                      threads_per_actor=args.threads_per_actor,
                      gpus_per_actor=args.gpus_per_actor)


def decoder_options(pairs: Sequence[str], weight: float | None = None) -> dict[str, Any]:
    """``["unit_bonus=0.3", "lm_boost_logp=none", "merge_spots=true"]`` (and ``--weight``)
    -> decoder options."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        if value.strip().lower() == "none":
            options[key] = None
            continue
        if value.strip().lower() in ("true", "false"):
            options[key] = value.strip().lower() == "true"
            continue
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"--set {key}: {value!r} is not a number, true/false or "
                             "'none'") from None
        options[key] = int(number) if value.strip().lstrip("+-").isdigit() else number
    if weight is not None:
        options["weight"] = weight
    return options


def _check_options(options: dict[str, Any]) -> None:
    """Fail on an unknown or bad decoder option before any model or data work."""
    from .decoders import BiasingOptions

    lm_settings = {"alpha", "beta", "unk_score_offset", "lm_score_boundary"}
    fields = set(BiasingOptions.names())
    unknown = sorted(set(options) - fields - lm_settings)
    if unknown:
        raise ValueError(f"unknown decoder option(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(fields | lm_settings))}")
    BiasingOptions.from_flat({k: v for k, v in options.items() if k in fields})


def _entity_file(args: argparse.Namespace) -> EntityList:
    policy: OnError = "skip" if args.skip_unrepresentable else "raise"
    return EntityList.from_file(args.entities, policy) if args.entities else EntityList()


def _print(result: Any, as_json: bool) -> None:
    print(json.dumps(result, ensure_ascii=False, indent=1) if as_json else result)


def _progress(done: int, total: int, stage: str = "") -> None:
    width = 30
    filled = width * done // total
    end = "\n" if done == total else ""
    label = f"{stage:>10} " if stage else ""
    print(f"\r{label}[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end=end,
          file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- decode

def _read_labels(path: str) -> list[str]:
    """One label per line, exactly as written (an empty line is the blank), or a JSON list."""
    raw = read_text(path, "labels file")
    if path.endswith(".json"):
        try:
            labels = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from None
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ValueError(f"{path}: expected a JSON list of strings")
        return labels
    lines = raw.split("\n")
    if raw.endswith("\n"):
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def _load_logits(path: str, apply_log_softmax: bool, what: str = "logits") -> np.ndarray:
    check_file(path, f"{what} file")
    try:
        logits = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"cannot read {what} from {path}: {error}") from None
    if isinstance(logits, np.lib.npyio.NpzFile):  # the file is wrong, not an argument
        logits.close()
        raise ValueError(  # noqa: TRY004
            f"{path} is an .npz archive of arrays; give one .npy array")
    if apply_log_softmax and logits.ndim == 2 and logits.size:
        sums = logits.sum(axis=1)
        if (logits >= 0).all() and np.allclose(sums, 1.0, atol=1e-3):
            raise ValueError(f"{path} holds probabilities (every row sums to 1), not raw "
                             "logits: drop --log-softmax (probabilities are converted as "
                             "they are)")
        logits = log_softmax(logits.astype(np.float64))
    return logits


def _decode(args: argparse.Namespace) -> int:
    from .decoders import build_biased_decoder

    options = decoder_options(args.set, args.weight)
    _check_options(options)
    entities = _entity_file(args)
    if (args.phones is None) != (args.phone_labels is None):
        raise ValueError("--phones and --phone-labels go together: the phone posteriors and "
                         "the labels of their columns")
    phone_labels = None if args.phone_labels is None else _read_labels(args.phone_labels)
    decoder = build_biased_decoder(_read_labels(args.labels), kenlm_model_path=args.kenlm,
                                   tokenizer=args.tokenizer, phone_labels=phone_labels,
                                   **options)
    logits = _load_logits(args.logits, args.log_softmax)
    if decoder.alphabet.appended_blank:
        _check_appended_blank(logits, decoder.labels, args.labels)
    phones = None if args.phones is None else _load_logits(args.phones, False, "phones")
    best = decoder.decode_hypotheses(logits, beam_width=args.beam_width, entities=entities,
                                     phones=phones)[0]
    if not args.json:
        _print(best.text, False)
        return 0
    _print({
        "text": best.text,
        "words": [{"word": w, "start_frame": s, "end_frame": e} for w, (s, e) in best.words],
        "entities": [{"entity": m.text, "start_frame": m.start_frame, "end_frame": m.end_frame,
                      "technique": m.technique, "phone_score": _rounded(m.phone_score)}
                     for m in best.entities],
    }, True)
    return 0


def _check_appended_blank(logits: np.ndarray, labels: list[str], path: str) -> None:
    """The labels file has no blank, so the decoder put one in the last column: refuse when
    another column is clearly where the model's blank is (the commonest best label, as the
    blank is in CTC output), instead of decoding garbage."""
    if logits.ndim != 2 or len(logits) == 0 or logits.shape[1] != len(labels):
        return  # the decoder names the shape mismatch
    best = np.bincount(np.asarray(logits).argmax(axis=1), minlength=len(labels))
    top = int(best.argmax())
    if top != len(labels) - 1 and best[top] >= best[-1] + 0.1 * len(logits):
        raise ValueError(
            f"{path} has no blank (an empty line), so the decoder added one as the last "
            f"column ({len(labels) - 1}); but column {top} ({labels[top]!r}) is the best label "
            f"in {best[top] / len(logits):.0%} of the frames, as a CTC blank is: put an empty "
            f"line at line {top + 1} of {path} (where the model has its blank)")


# ------------------------------------------------------------------------ transcribe

def _transcribe(args: argparse.Namespace) -> int:
    from .transcribe import Transcriber

    options = decoder_options(args.set, args.weight)
    _check_options(options)
    entities = _entity_file(args)
    lexicon = None
    if args.lexicon:
        from .lexicon import Lexicon

        lexicon = Lexicon.load(args.lexicon)
    if args.attention_plot and not entities:
        raise ValueError("--attention-plot draws the adapter's attention over the list: it "
                         "needs --entities")
    adapter = args.adapter or (True if args.attention_plot else None)
    transcriber = Transcriber(args.model, kenlm_model_path=args.kenlm, tokenizer=args.tokenizer,
                              beam_width=args.beam_width, device=args.device,
                              threads=args.threads, phonetic=False if args.no_phonetic else None,
                              lexicon=lexicon, companion=args.companion, adapter=adapter,
                              **options)
    if args.attention_plot and transcriber.adapter is None:
        raise ValueError("--attention-plot needs the adapter, which --weight 0 turns off")
    plots = _plot_paths(args.attention_plot, args.audio)
    show = _progress if len(args.audio) > 1 and sys.stderr.isatty() else None
    results, failed = [], 0
    # each result printed as soon as it is made
    stream = transcriber.stream(args.audio, entities, on_error="report",
                                attention=bool(plots))
    for done, result in enumerate(stream, 1):
        if plots and result.attention is not None:
            from .adapters.plot import plot_attention

            att = result.attention
            written = plot_attention(att.weights, att.entities, att.frame_shift_s,
                                     result.words, plots[done - 1], title=result.source)
            print(f"ctc-biasing transcribe: attention plot -> {written}", file=sys.stderr)
        if result.error is not None:
            failed += 1
            print(f"ctc-biasing transcribe: error: {result.error}", file=sys.stderr)
        if args.json:
            results.append(_transcript_json(result))
        elif result.error is None:
            print(result.text if len(args.audio) == 1 else f"{result.source}\t{result.text}",
                  flush=True)
        if show:
            show(done, len(args.audio))
    if args.json:
        _print(results, True)
    if failed:
        print(f"ctc-biasing transcribe: {failed} of {len(args.audio)} files failed",
              file=sys.stderr)
        return 1
    return 0


def _plot_paths(plot: str | None, audio: Sequence[str]) -> list[Path]:
    """One PNG per input: ``OUT.png`` itself for one input, ``OUT-1.png``, ... for more."""
    if plot is None:
        return []
    path = Path(plot)
    if path.suffix.lower() != ".png":
        raise ValueError(f"--attention-plot must name a .png file, got {plot!r}")
    if not path.parent.is_dir():
        raise ValueError(f"--attention-plot {plot!r}: folder {str(path.parent)!r} does not exist")
    if len(audio) == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{n}{path.suffix}") for n in range(1, len(audio) + 1)]


def _transcript_json(result: Any) -> dict[str, Any]:
    if result.error is not None:
        return {"audio": result.source, "error": result.error}
    return {"audio": result.source, "text": result.text,
            "duration_s": round(result.duration_s, 3),
            "words": [{"word": w.word, "start_s": round(w.start_s, 2),
                       "end_s": round(w.end_s, 2)} for w in result.words],
            "entities": [{"entity": h.entity, "start_s": round(h.start_s, 2),
                          "end_s": round(h.end_s, 2), "technique": h.technique,
                          "phone_score": _rounded(h.phone_score)} for h in result.entities]}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# ------------------------------------------------------------------------------ eval

def _eval(args: argparse.Namespace) -> int:
    from .datasets import load_dataset
    from .evaluation import (
        EvalContext,
        ListSpec,
        OutputCache,
        build_lists,
        default_cache_dir,
        parse_techniques,
        plot_problem,
        results_markdown,
        run_eval,
        write_report,
    )
    from .models import load_model, set_threads
    from .models.companion import attach_companion, phones_source

    techniques = parse_techniques(args.techniques)
    options = decoder_options(args.set, args.weight)
    _check_options(options)
    ray = _ray_options(args, args.ray or bool(args.ray_address), "add --ray")
    for technique in techniques:  # say which of the user's options a technique overrides
        overridden = {k: v for k, v in technique.fixed.items()
                      if k in options and options[k] != v}
        if overridden:
            print(f"ctc-biasing eval: note: technique {technique.name!r} decodes with "
                  f"{overridden} whatever --set says", file=sys.stderr)
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    if args.beam_width < 1:
        raise ValueError(f"--beam-width must be at least 1, got {args.beam_width}")
    output = ensure_folder(args.output, "--output folder")
    cache_dir = None if args.no_cache else ensure_folder(
        Path(args.cache).expanduser() if args.cache else default_cache_dir(),
        "model output cache")
    split = load_dataset(args.dataset, args.split)
    dataset = split[:args.limit]
    if not dataset:
        raise ValueError(f"no utterances in {args.dataset} (split {args.split!r})")
    reference = None
    if args.entities == "auto" and args.auto_reference_split:
        reference = [u.text for u in load_dataset(args.dataset, args.auto_reference_split)]
    spec = ListSpec(
        entities=None if args.entities in (None, "auto") else Path(args.entities),
        auto=args.entities == "auto", auto_reference=reference,
        entities_per_utt=None if args.entities_per_utt is None else Path(args.entities_per_utt),
        distractors=None if args.distractors is None else Path(args.distractors),
        list_size=args.list_size, seed=args.seed)
    lists = build_lists(dataset, spec, known_ids=[u.id for u in split])
    set_threads(args.threads)
    model = load_model(args.model, device=args.device)
    companion = args.companion if any(t.phonetic is not False for t in techniques) else None
    model = attach_companion(model, companion, args.device)
    adapter = _eval_adapter(args.adapter, model) \
        if any(t.uses_adapter for t in techniques) else None
    context = EvalContext.for_model(model, args.model, args.kenlm, args.tokenizer,
                                    args.beam_width, options, adapter)
    for technique in techniques:  # before any model output is computed
        technique.build(context)
    no_plot = plot_problem()
    if no_plot:
        print(f"ctc-biasing eval: {no_plot}", file=sys.stderr)
    cache = None if cache_dir is None else OutputCache.for_model(cache_dir, model)
    show = (lambda stage, done, total: _progress(done, total, stage)) \
        if sys.stderr.isatty() else None
    remote = None
    if ray is not None:
        from .evaluation.distributed import EvalSpec, ray_remote

        setup = EvalSpec(model=args.model, techniques=args.techniques,
                         beam_width=args.beam_width, options=options, kenlm=args.kenlm,
                         tokenizer=args.tokenizer,
                         adapter=None if adapter is None else adapter.source,
                         cache=None if cache is None else str(cache_dir), device=args.device,
                         companion=companion)
        remote = ray_remote(setup, ray, progress=show, log=lambda line: print(
            f"ctc-biasing eval: {line}", file=sys.stderr, flush=True))
    run = run_eval(dataset, lists, model, techniques, context, cache, progress=show,
                   remote=remote)
    if run.unspellable:
        names = ", ".join(run.unspellable[:5]) + (" ..." if len(run.unspellable) > 5 else "")
        print(f"ctc-biasing eval: {len(run.unspellable)} list entries cannot be spelled with "
              f"the model's units and were left out: {names}", file=sys.stderr)
    if run.unpronounceable:
        names = ", ".join(run.unpronounceable[:5]) + (
            " ..." if len(run.unpronounceable) > 5 else "")
        print(f"ctc-biasing eval: {len(run.unpronounceable)} list entries have no "
              f"pronunciation and were left out of the phonetic techniques (still boosted "
              f"by spelling): {names}", file=sys.stderr)
    info = {"name": Path(args.dataset).name, "path": str(args.dataset), "split": args.split,
            "entities": args.entities, "entities_per_utt": args.entities_per_utt,
            "distractors": args.distractors, "list_size": args.list_size, "seed": args.seed,
            "kenlm": args.kenlm, "beam_width": args.beam_width, "decoder_options": options,
            "model": args.model, "adapter": None if adapter is None else adapter.source,
            "phones": phones_source(model)}
    report = write_report(run, output, info, plot=no_plot is None)
    files = "json,md" + ("" if no_plot else ",png")
    print(results_markdown(report) + f"\nwritten to {args.output}/results.{{{files}}}")
    return 0


def _eval_adapter(path: str | None, model: Any) -> Any:
    """The adapter the eval's adapter techniques use: ``--adapter``, else the model
    folder's, else None (the techniques then say what they miss)."""
    from .adapters import folder_adapter_path, load_adapter

    chosen = path or folder_adapter_path(model)
    return None if chosen is None else load_adapter(chosen, model)


# ---------------------------------------------------------------------- make-testset

def _make_testset(args: argparse.Namespace) -> int:
    from .testset import make_testset, voice_table

    if args.list_voices:
        print(voice_table())
        return 0
    if args.sentences is None or args.output is None:
        raise ValueError("give SENTENCES.tsv and --output DIR (or --list-voices)")
    voices = [n.strip() for n in args.voices.split(",") if n.strip()] if args.voices else None
    made = make_testset(Path(args.sentences), Path(args.output), split=args.split,
                        voices=voices, seed=args.seed, jobs=args.jobs, digits=args.digits,
                        log=lambda line: print(f"make-testset: {line}", file=sys.stderr,
                                               flush=True))
    print(f"wrote {made.written} utterances to {args.output} ({made.made} made now; voices: "
          f"{', '.join(made.voices)})")
    if made.failures:
        print(f"{len(made.failures)} sentences failed and were left out; run again to retry "
              "them", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------- train-adapter

def _train_adapter(args: argparse.Namespace) -> int:
    from .adapters.train import TrainOptions, train_adapter
    from .models import load_model, set_threads

    data = [d.strip() for d in args.data.split(",") if d.strip()]
    if not data:
        raise ValueError(f"--data names no folder: {args.data!r}")
    if not args.minutes > 0:
        raise ValueError(f"--minutes must be positive, got {args.minutes}")
    set_threads(args.threads)
    model = load_model(args.model, device=args.device)
    options = TrainOptions(minutes=args.minutes, units=args.units, seed=args.seed,
                           max_list=args.max_list,
                           layers=tuple(int(k) for k in args.layers.split(","))
                           if args.layers else ())
    path = train_adapter(model, data, args.output, options, device=args.device,
                         log=lambda line: print(f"train-adapter: {line}", file=sys.stderr,
                                                flush=True))
    print(f"adapter written to {path}")
    return 0


# ----------------------------------------------------------------- transcribe-corpus

def _transcribe_corpus(args: argparse.Namespace) -> int:
    from .corpus import read_manifest, transcribe_corpus

    options = decoder_options(args.set, args.weight)
    _check_options(options)
    entities = [e.text for e in _entity_file(args)]
    ray = _ray_options(args, not args.no_ray, "drop --no-ray")
    rows = read_manifest(args.manifest)
    arguments = dict(options, model=args.model, kenlm_model_path=args.kenlm,
                     tokenizer=args.tokenizer, beam_width=args.beam_width,
                     phonetic=False if args.no_phonetic else None, adapter=args.adapter,
                     companion=args.companion)
    if args.no_ray:
        arguments["device"] = args.device
    summary = transcribe_corpus(rows, args.output, arguments, entities,
                                output_format=args.format, ray=ray, threads=args.threads,
                                log=lambda line: print(f"transcribe-corpus: {line}",
                                                       file=sys.stderr, flush=True))
    print(f"{summary.written} rows written to {args.output} ({summary.skipped} were there "
          f"already, {summary.failed} failed)")
    return 1 if summary.failed else 0


# ----------------------------------------------------------------------------- serve

def _serve(args: argparse.Namespace) -> int:
    from .serve import API_KEY_FILE_ENV, Limits, ServerConfig, create_app
    from .serve.access import is_loopback
    from .serve.settings import read_api_key

    options = decoder_options(args.set, args.weight)
    _check_options(options)
    if args.api_key and args.api_key_file:
        raise ValueError("give --api-key or --api-key-file, not both")
    api_key = args.api_key or (read_api_key(args.api_key_file) if args.api_key_file else None)
    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be from 1 to 65535, got {args.port}")
    limits = Limits(audio_bytes=int(args.max_audio_mb * (1 << 20)), audio_s=args.max_audio_s,
                    entities=args.max_entities)
    config = ServerConfig(model=args.model, device=args.device, threads=args.threads,
                          kenlm=args.kenlm, beam_width=args.beam_width,
                          phonetic=False if args.no_phonetic else None,
                          companion=args.companion,
                          adapter=args.adapter, adapter_default=args.adapter_default,
                          options=options, workers=args.workers, max_batch=args.max_batch,
                          max_wait_ms=args.max_wait_ms, max_pending=args.max_pending,
                          list_cache=args.list_cache, limits=limits, api_key=api_key,
                          body_timeout_s=args.body_timeout_s)
    if not is_loopback(args.host) and config.resolved_api_key() is None:
        raise ValueError(f"--host {args.host} lets other machines in: give a key "
                         f"(--api-key-file FILE, or ${API_KEY_FILE_ENV}) so that only callers "
                         f"with the key are served")
    import uvicorn

    from .serve.workers import quiet_list_warnings

    quiet_list_warnings()
    uvicorn.run(create_app(config), host=args.host, port=args.port,
                log_level=args.log_level, timeout_graceful_shutdown=args.graceful_s)
    return 0


# ---------------------------------------------------------------------------- parser

# what add_subparsers returns: each _add_<subcommand> adds its parser to it
_Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ctc-biasing", description="Bias CTC speech recognition toward a list of names.")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error instead of one line")
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (_add_decode, _add_transcribe, _add_eval, _add_make_testset,
                _add_train_adapter, _add_transcribe_corpus, _add_serve):
        add(commands)
    return parser


def _add_decode(commands: _Commands) -> None:
    decode = commands.add_parser(
        "decode", help="decode saved CTC log-probabilities with an entity list")
    decode.add_argument("--logits", required=True,
                        help=".npy of (frames, vocab) log-probabilities, probabilities or raw "
                             "logits (converted as pyctcdecode converts them)")
    decode.add_argument("--labels", required=True,
                        help="labels file: one per line as written, empty line = blank, "
                             "or a .json list")
    _add_entity_arguments(decode)
    _add_decoder_arguments(decode)
    decode.add_argument("--log-softmax", action="store_true",
                        help="apply log_softmax first (for raw logits whose rows sum to 1, "
                             "which would be taken for probabilities)")
    decode.add_argument("--phones", help=".npy of (frames, phone labels) phone posteriors "
                                         "on the same frames: runs the phonetic techniques")
    decode.add_argument("--phone-labels", help="labels of the --phones columns (stressless "
                                               "ARPAbet, empty line = blank), or a .json list")
    decode.add_argument("--json", action="store_true", help="print words, frames and entities")
    decode.set_defaults(run=_decode)


def _add_transcribe(commands: _Commands) -> None:
    transcribe = commands.add_parser(
        "transcribe", help="transcribe audio files with an acoustic model and an entity list")
    transcribe.add_argument("audio", nargs="+", help="audio files (wav, flac, ogg; any rate)")
    _add_model_arguments(transcribe)
    _add_entity_arguments(transcribe)
    _add_decoder_arguments(transcribe)
    transcribe.add_argument("--json", action="store_true",
                            help="print words and entities with times in seconds, and for "
                                 "each entity the technique that placed it and its phone "
                                 "score")
    transcribe.add_argument("--no-phonetic", action="store_true",
                            help="do not use the model's phone head (phone lookup, "
                                 "verification, rescoring)")
    transcribe.add_argument("--lexicon", help="user pronunciations: entity<TAB>ARPAbet "
                                              "phones (see biasing.lexicon.Lexicon)")
    transcribe.add_argument("--adapter", nargs="?", const=True, metavar="FILE",
                            help="shift the model's output toward the list with a contextual "
                                 "adapter first: the model folder's adapter.npz, or FILE "
                                 "(off by default; see docs/adapter.md)")
    transcribe.add_argument("--attention-plot", metavar="OUT.png",
                            help="draw the adapter's attention (frames x entities) with the "
                                 "words along the top (implies --adapter); OUT-1.png, "
                                 "OUT-2.png, ... for several inputs")
    transcribe.set_defaults(run=_transcribe)


def _add_eval(commands: _Commands) -> None:
    evaluate = commands.add_parser(
        "eval", help="score biasing techniques on a dataset (WER, entity F1, B/U-WER, speed)",
        epilog=_techniques_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluate.add_argument("--dataset", required=True,
                          help="VoxPopuli-layout folder (asr_{split}.tsv) or Kaldi-style "
                               "folder (text, wav.scp)")
    evaluate.add_argument("--split", default="test")
    _add_model_arguments(evaluate)
    evaluate.add_argument("--entities",
                          help="global entity file for every utterance, or 'auto': rare "
                               "capitalised words/phrases of each transcript")
    evaluate.add_argument("--auto-reference-split",
                          help="with --entities auto: count word frequencies in this split "
                               "of the dataset instead of using wordfreq")
    evaluate.add_argument("--entities-per-utt", help="TSV: id<TAB>entity|entity...")
    evaluate.add_argument("--distractors", help="file of distractor entities")
    evaluate.add_argument("--list-size", type=int,
                          help="with --distractors: own entities + distractors up to N")
    evaluate.add_argument("--seed", type=int, default=0, help="of the distractor draws")
    _add_decoder_arguments(evaluate)
    evaluate.add_argument("--techniques", default="none,subword,all",
                          help="comma-separated names of the techniques listed below "
                               "(default %(default)s)")
    evaluate.add_argument("--adapter", help="contextual adapter file for the adapter and "
                          "joint techniques (default: the model folder's adapter.npz)")
    evaluate.add_argument("--limit", type=int, help="only the first N utterances")
    evaluate.add_argument("--cache", help="where model outputs are cached, keyed by model "
                          "and audio (default: $CTC_BIASING_CACHE/logprobs, "
                          "~/.cache/ctc-biasing/logprobs)")
    evaluate.add_argument("--no-cache", action="store_true")
    evaluate.add_argument("--output", required=True, help="folder for the report")
    _add_ray_arguments(evaluate, "--ray")
    evaluate.set_defaults(run=_eval)


def _techniques_epilog() -> str:
    """The techniques ``--techniques`` accepts, each with its description, read from the
    registry so that the help lists every one (the registry imports no torch), wrapped to
    the width argparse wraps the rest of the help to."""
    import shutil
    import textwrap

    from .evaluation.techniques import TECHNIQUES

    width = max(40, shutil.get_terminal_size().columns - 2)
    column = 2 + max(len(name) for name in TECHNIQUES) + 2
    lines = ["techniques (--techniques):"]
    for name, technique in TECHNIQUES.items():
        lines += textwrap.wrap(technique.description, width,
                               initial_indent=f"  {name}".ljust(column),
                               subsequent_indent=" " * column)
    return "\n".join(lines)


def _add_make_testset(commands: _Commands) -> None:
    testset = commands.add_parser(
        "make-testset", help="synthesise a speech test set for your entities with offline "
                             "TTS voices (VoxPopuli layout)",
        epilog="Input lines: id<TAB>text<TAB>entity|entity... (a header 'id<TAB>...' and "
               "#comments allowed). Install the voices with install_voices.sh (see "
               "docs/make-testset.md).")
    testset.add_argument("sentences", nargs="?", help="input TSV of sentences")
    testset.add_argument("--output", help="output folder (created; runs again resume)")
    testset.add_argument("--split", default="test", help="split name in asr_{split}.tsv")
    testset.add_argument("--voices", help="comma-separated voice names, or 'all' for every "
                         "installed voice (default: the installed voices marked default)")
    testset.add_argument("--list-voices", action="store_true",
                         help="print the known voices and whether they are installed")
    testset.add_argument("--seed", type=int, default=0, help="seed of the voice order")
    testset.add_argument("--jobs", type=int, default=2, help="parallel synthesis processes")
    testset.add_argument("--digits", choices=("spell", "skip"), default="spell",
                         help="sentences with digits: read spelled out (spell) or left out "
                              "(skip); normalized_text keeps the digits either way")
    testset.set_defaults(run=_make_testset)


def _add_train_adapter(commands: _Commands) -> None:
    train = commands.add_parser(
        "train-adapter", help="train a contextual adapter on a frozen model (resumable)",
        epilog="The model's outputs are cached in OUTPUT once; a rerun with the same OUTPUT "
               "continues from OUTPUT/checkpoint.pt until --minutes of training are spent. "
               "The best state so far is in OUTPUT/adapter.npz.")
    _add_model_arguments(train, companion=False)
    train.add_argument("--data", required=True,
                       help="comma-separated folders, split 'train': asr_train.tsv (with "
                            "entities_per_utt.tsv for the rare words) or Kaldi train/")
    train.add_argument("--output", required=True, help="folder for features, checkpoints, "
                                                       "log.tsv and adapter.npz")
    train.add_argument("--minutes", type=float, default=40.0, help="training time budget")
    train.add_argument("--units", choices=("auto", "chars", "pieces"), default="auto",
                       help="how the entity encoder spells entities (auto: the pieces of "
                            "the model's intermediate heads when it has such heads)")
    train.add_argument("--layers", help="comma-separated model layers the query reads "
                                        "(default: those of the model's auxiliary heads)")
    train.add_argument("--max-list", type=int, default=300, help="largest training list")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(run=_train_adapter)


def _add_transcribe_corpus(commands: _Commands) -> None:
    corpus = commands.add_parser(
        "transcribe-corpus", help="transcribe a manifest of audio files, each row with its "
                                  "own entity list, on Ray or in this process (resumable)",
        epilog="MANIFEST: JSONL ({\"audio\": PATH, \"id\": ..., \"entities\": [...]}) or "
               "TSV (header audio<TAB>id<TAB>entities, entities separated by |). Rows "
               "already in OUTPUT are skipped, so a killed run resumes.")
    corpus.add_argument("manifest", help="JSONL or TSV manifest")
    corpus.add_argument("--output", required=True,
                        help="results folder (not a symbolic link; one run at a time: "
                             "OUTPUT/.lock)")
    corpus.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl",
                        help="results.jsonl, or part-NNNNN.parquet files")
    _add_model_arguments(corpus)
    _add_entity_arguments(corpus)
    _add_decoder_arguments(corpus)
    corpus.add_argument("--no-phonetic", action="store_true",
                        help="do not use the model's phone head")
    corpus.add_argument("--adapter", nargs="?", const=True, metavar="FILE",
                        help="the contextual adapter first (the model folder's, or FILE)")
    _add_ray_arguments(corpus, "--no-ray")
    corpus.set_defaults(run=_transcribe_corpus)


def _add_serve(commands: _Commands) -> None:
    serve = commands.add_parser(
        "serve", help="HTTP server: POST /v1/audio/transcriptions with a per-request entity "
                      "list (the serve extra)",
        epilog="Binds 127.0.0.1 by default. With a key (--api-key-file FILE, or the "
               "environment: CTC_BIASING_API_KEY_FILE names a file, CTC_BIASING_API_KEY "
               "holds the key) every request but /healthz and /readyz must send "
               "'Authorization: Bearer KEY'; without one only this machine is served, and "
               "any other --host is refused. Prefer the file or the environment to "
               "--api-key, which other users see in ps. Ctrl-C or SIGTERM finishes the "
               "requests in flight, then stops.")
    _add_model_arguments(serve)
    _add_decoder_arguments(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default "
                                                           "127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--api-key-file", metavar="FILE",
                       help="file whose first line is the bearer token every request must "
                            "send (default: $CTC_BIASING_API_KEY_FILE, $CTC_BIASING_API_KEY)")
    serve.add_argument("--api-key", help="the token itself (visible in ps: prefer "
                                         "--api-key-file or the environment)")
    serve.add_argument("--no-phonetic", action="store_true",
                       help="do not use the model's phone head")
    serve.add_argument("--adapter", nargs="?", const=True, metavar="FILE",
                       help="load the contextual adapter (the model folder's, or FILE); "
                            "requests use it with adapter=true")
    serve.add_argument("--adapter-default", action="store_true",
                       help="requests that do not say use the adapter")
    serve.add_argument("--workers", type=int, default=2,
                       help="decoding processes (default 2; 0 decodes in the server "
                            "process, one request at a time)")
    serve.add_argument("--max-batch", type=int, default=8,
                       help="most requests in one acoustic-model batch")
    serve.add_argument("--max-wait-ms", type=float, default=10.0,
                       help="how long a request waits for others to batch with")
    serve.add_argument("--max-pending", type=int, default=64,
                       help="requests in flight before new ones get 503")
    serve.add_argument("--list-cache", type=int, default=16,
                       help="compiled entity lists kept per decoding process")
    serve.add_argument("--max-audio-mb", type=float, default=25.0,
                       help="largest upload in MiB")
    serve.add_argument("--max-audio-s", type=float, default=300.0,
                       help="longest audio in seconds")
    serve.add_argument("--max-entities", type=int, default=10_000,
                       help="most entries in one request's list")
    serve.add_argument("--graceful-s", type=float, default=30.0,
                       help="seconds to finish requests in flight on shutdown")
    serve.add_argument("--body-timeout-s", type=float, default=60.0,
                       help="a request whose body has not arrived within this is refused "
                            "(408)")
    serve.add_argument("--log-level", default="info",
                       choices=("critical", "error", "warning", "info", "debug"))
    serve.set_defaults(run=_serve)


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. Every expected error becomes one line on stderr and exit code 2
    (``--debug`` shows the traceback instead); an interrupt exits with 130."""
    args = _parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except (ValueError, TypeError, OSError, ImportError, RuntimeError, MemoryError) as error:
        if args.debug:
            raise
        message = str(error) or type(error).__name__
        print(f"ctc-biasing {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ctc-biasing {args.command}: interrupted", file=sys.stderr)
        return 130
    except SystemExit as stop:  # a run that turned SIGTERM/SIGHUP into an exit to clean up
        if stop.code in (129, 143):
            print(f"ctc-biasing {args.command}: stopped by a signal", file=sys.stderr)
        raise


if __name__ == "__main__":
    sys.exit(main())
