"""The ``ctc-biasing`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .entities import EntityList, OnError


def _read_labels(path: str) -> list[str]:
    """One label per line, exactly as written (an empty line is the blank), or a JSON list."""
    raw = Path(path).read_text(encoding="utf-8")
    if path.endswith(".json"):
        labels = json.loads(raw)
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ValueError(f"{path}: expected a JSON list of strings")
        return labels
    lines = raw.split("\n")
    if raw.endswith("\n"):
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def _load_logits(path: str, log_softmax: bool) -> np.ndarray:
    try:
        logits = np.load(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read logits from {path}: {error}") from None
    if log_softmax and logits.ndim == 2:
        logits = logits.astype(np.float64)
        logits = logits - logits.max(axis=1, keepdims=True)
        logits = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return logits


def _decode(args: argparse.Namespace) -> dict[str, Any]:
    from .decoders import build_biased_decoder

    entities = _entity_file(args)
    decoder = build_biased_decoder(_read_labels(args.labels), kenlm_model_path=args.kenlm,
                                   tokenizer=args.tokenizer, weight=args.weight)
    logits = _load_logits(args.logits, args.log_softmax)
    best = decoder.decode_hypotheses(logits, entities, beam_width=args.beam_width)[0]
    return {
        "text": best.text,
        "words": [{"word": w, "start_frame": s, "end_frame": e} for w, (s, e) in best.words],
        "entities": [{"entity": m.text, "start_frame": m.start_frame, "end_frame": m.end_frame}
                     for m in best.entities],
    }


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // total
    end = "\n" if done == total else ""
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end=end,
          file=sys.stderr, flush=True)


def _transcribe(args: argparse.Namespace) -> Any:
    from .transcribe import Transcriber

    entities = _entity_file(args)
    transcriber = Transcriber(args.model, kenlm_model_path=args.kenlm, tokenizer=args.tokenizer,
                              beam_width=args.beam_width, device=args.device,
                              weight=args.weight)
    show = _progress if len(args.audio) > 1 and sys.stderr.isatty() else None
    results = transcriber.transcribe(args.audio, entities, progress=show)
    if args.json:
        return [{"audio": r.source, "text": r.text, "duration_s": round(r.duration_s, 3),
                 "words": [{"word": w.word, "start_s": round(w.start_s, 2),
                            "end_s": round(w.end_s, 2)} for w in r.words],
                 "entities": [{"entity": h.entity, "start_s": round(h.start_s, 2),
                               "end_s": round(h.end_s, 2)} for h in r.entities]}
                for r in results]
    if len(results) == 1:
        return results[0].text
    return "\n".join(f"{r.source}\t{r.text}" for r in results)


def _eval_lists(args: argparse.Namespace, dataset: list[Any]) -> dict[str, EntityList]:
    """Each utterance's list: its own entities, the global list, distractors up to a size."""
    import random

    from .evaluate import auto_entities, split_rarity, with_distractors, wordfreq_rarity

    own: dict[str, list[str]] = {u.id: [] for u in dataset}
    global_list: list[str] = []
    if args.entities == "auto":
        if args.auto_reference_split:
            from .datasets import load_dataset

            reference = load_dataset(args.dataset, args.auto_reference_split)
            is_rare = split_rarity([u.text for u in reference])
        else:
            is_rare = wordfreq_rarity()
        own = {u.id: auto_entities(u.text, is_rare) for u in dataset}
    elif args.entities:
        global_list = [e.text for e in EntityList.from_file(args.entities, "skip")]
    if args.entities_per_utt:
        from .datasets import read_entities_per_utt

        per_utt = read_entities_per_utt(args.entities_per_utt)
        for utt_id in own:
            own[utt_id] = list(dict.fromkeys([*own[utt_id], *per_utt.get(utt_id, [])]))
    pool: list[str] = []
    if args.distractors:
        pool = [e.text for e in EntityList.from_file(args.distractors, "skip")]
        if args.list_size is None:
            raise ValueError("--distractors needs --list-size N (entities per utterance)")
    rng = random.Random(args.seed)
    lists = {}
    for utt in dataset:
        entries = list(dict.fromkeys([*own[utt.id], *global_list]))
        if pool:
            entries = with_distractors(entries, pool, args.list_size, rng)
        lists[utt.id] = EntityList(entries, on_unrepresentable="skip")
    return lists


def _eval(args: argparse.Namespace) -> str:
    from pathlib import Path

    from .datasets import load_dataset
    from .evaluate import EvalContext, parse_techniques, run_eval
    from .models import load_model

    techniques = parse_techniques(args.techniques)
    dataset = load_dataset(args.dataset, args.split)
    if args.limit:
        dataset = dataset[:args.limit]
    if not dataset:
        raise ValueError(f"no utterances in {args.dataset} (split {args.split!r})")
    lists = _eval_lists(args, dataset)
    model = load_model(args.model, device=args.device)
    context = EvalContext(labels=model.labels, kenlm_model_path=args.kenlm,
                          tokenizer=args.tokenizer or getattr(model, "tokenizer_path", None),
                          beam_width=args.beam_width,
                          options=_decoder_options(args.set))
    cache = None if args.no_cache else Path(args.cache).expanduser()
    info = {"name": Path(args.dataset).name, "path": str(args.dataset), "split": args.split,
            "entities": args.entities, "entities_per_utt": args.entities_per_utt,
            "distractors": args.distractors, "list_size": args.list_size, "seed": args.seed,
            "kenlm": args.kenlm, "beam_width": args.beam_width,
            "decoder_options": context.options}
    show = _progress_named if sys.stderr.isatty() else None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unrepresentable list entries are skipped, by design
        report = run_eval(dataset, lists, model, args.model, techniques, context,
                          Path(args.output), cache, info, progress=show)
    from .evaluate import results_markdown

    return results_markdown(report) + f"\nwritten to {args.output}/results.{{json,md,png}}"


def _decoder_options(pairs: list[str]) -> dict[str, Any]:
    """``["unit_bonus=0.3", "lm_boost_logp=none"]`` -> decoder options."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        if value.lower() == "none":
            options[key] = None
        else:
            try:
                options[key] = int(value) if value.lstrip("-").isdigit() else float(value)
            except ValueError:
                raise ValueError(f"--set {key}: {value!r} is not a number") from None
    return options


def _progress_named(stage: str, done: int, total: int) -> None:
    print(f"\r{stage:>10} ", end="", file=sys.stderr)
    _progress(done, total)


def _add_decoder_arguments(parser: argparse.ArgumentParser) -> None:
    """The entity list and decoder settings shared by decode and transcribe."""
    parser.add_argument("--entities", help="entity file: one per line, optional <TAB>weight")
    parser.add_argument("--skip-unrepresentable", action="store_true",
                        help="drop entities the model cannot spell instead of failing")
    parser.add_argument("--kenlm", help="KenLM model (.arpa or binary)")
    parser.add_argument("--tokenizer", help="sentencepiece model that made the labels "
                        "(default: the model's own, if it has one)")
    parser.add_argument("--beam-width", type=int, default=100)
    parser.add_argument("--weight", type=float, default=1.0,
                        help="biasing strength (0 = off, 1 = default)")


def _entity_file(args: argparse.Namespace) -> EntityList:
    policy: OnError = "skip" if args.skip_unrepresentable else "raise"
    return EntityList.from_file(args.entities, policy) if args.entities else EntityList()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ctc-biasing", description="Bias CTC speech recognition toward a list of names.")
    commands = parser.add_subparsers(dest="command", required=True)
    decode = commands.add_parser(
        "decode", help="decode saved CTC log-probabilities with an entity list")
    decode.add_argument("--logits", required=True,
                        help=".npy of (frames, vocab) log-probabilities (see --log-softmax)")
    decode.add_argument("--labels", required=True,
                        help="labels file: one per line as written, empty line = blank, "
                             "or a .json list")
    _add_decoder_arguments(decode)
    decode.add_argument("--log-softmax", action="store_true",
                        help="the .npy holds raw logits: apply log_softmax first")
    decode.add_argument("--json", action="store_true", help="print words, frames and entities")
    decode.set_defaults(run=_decode)

    transcribe = commands.add_parser(
        "transcribe", help="transcribe audio files with an acoustic model and an entity list")
    transcribe.add_argument("audio", nargs="+", help="audio files (wav, flac, ogg; any rate)")
    transcribe.add_argument("--model", default="default",
                            help="default (the bundled model, the default), quartznet:DIR "
                                 "or hf:DIR")
    _add_decoder_arguments(transcribe)
    transcribe.add_argument("--device", default="cpu", help="cpu or cuda")
    transcribe.add_argument("--json", action="store_true",
                            help="print words and entities with times in seconds")
    transcribe.set_defaults(run=_transcribe)

    evaluate = commands.add_parser(
        "eval", help="score biasing techniques on a dataset (WER, entity F1, B/U-WER, speed)")
    evaluate.add_argument("--dataset", required=True,
                          help="VoxPopuli-layout folder (asr_{split}.tsv) or Kaldi-style "
                               "folder (text, wav.scp)")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--model", default="default",
                          help="default (the bundled model, the default), quartznet:DIR or "
                               "hf:DIR")
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
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--kenlm", help="KenLM model (.arpa or binary)")
    evaluate.add_argument("--tokenizer", help="sentencepiece model that made the labels")
    evaluate.add_argument("--techniques", default="none,hotwords,subword",
                          help="comma-separated: none, hotwords, subword, lm, all, ...")
    evaluate.add_argument("--beam-width", type=int, default=100)
    evaluate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          help="decoder option for every technique, e.g. unit_bonus=0.3 "
                               "(repeatable)")
    evaluate.add_argument("--limit", type=int, help="only the first N utterances")
    evaluate.add_argument("--device", default="cpu")
    evaluate.add_argument("--cache", default="~/.cache/ctc-biasing/logprobs",
                          help="where model outputs are cached (keyed by model and audio)")
    evaluate.add_argument("--no-cache", action="store_true")
    evaluate.add_argument("--output", required=True, help="folder for the report")
    evaluate.set_defaults(run=_eval, json=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result = args.run(args)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as error:
        print(f"ctc-biasing {args.command}: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        print(result["text"] if isinstance(result, dict) else result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
