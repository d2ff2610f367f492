"""What the any-model additions cost: the phonetic companion's forward pass against QuartzNet
15x5's on the same audio, and the output-unit verifier against decoding without it.

Usage:
    python benchmarks/companion_speed.py [--utterances 50] [--threads 1] [--list-size 1000]
        [--repeats 3]

Reads speechocean762 test utterances of the development data, runs each once (batch 1,
after a warm-up) through QuartzNet 15x5 and through the companion (the bundled model up
to its phone head's block), and decodes QuartzNet's outputs with ``--list-size`` Earnings-21
distractors, the default decoding without phones (subword boosting and unit spots) with
and without the verifier (``verify_units``); each timing is the best of ``--repeats``
interleaved runs. Prints a markdown table. Skips with a message when the development data is absent.
"""

from __future__ import annotations

import argparse
import random
import time
import warnings

from biasing.paths import shared_root

QUARTZNET = shared_root() / "models" / "quartznet15x5"
DATA = shared_root() / "data" / "speechocean762"
DISTRACTORS = shared_root() / "data" / "earnings21" / "bias_lists" / "distractor_list.txt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--list-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="decoding runs (best of)")
    args = parser.parse_args(argv)
    if not (QUARTZNET / "weights.npz").is_file() or not (DATA / "test" / "wav.scp").is_file():
        print(f"skipped: needs {QUARTZNET} and {DATA} (development data absent)")
        return 0
    import torch

    from biasing import EntityList, build_biased_decoder
    from biasing.audio import load_audio
    from biasing.datasets import load_dataset
    from biasing.models import load_model
    from biasing.models.companion import load_companion

    torch.set_num_threads(args.threads)
    model = load_model(f"quartznet:{QUARTZNET}")
    companion = load_companion("default")
    utterances = load_dataset(DATA, "test")[:args.utterances]
    waves = [load_audio(u.audio, model.sample_rate) for u in utterances]
    audio_s = sum(len(w) for w in waves) / model.sample_rate

    def timed(step, items):  # type: ignore[no-untyped-def]
        step(items[0])  # warm-up
        started = time.perf_counter()
        out = [step(item) for item in items]
        return time.perf_counter() - started, out

    forward_s = companion_s = float("inf")
    for _ in range(args.repeats):  # interleaved, best of
        seconds, outputs = timed(lambda w: model.forward([w])[0], waves)
        forward_s = min(forward_s, seconds)
        seconds, _ = timed(lambda w: companion.posteriors([w], model.sample_rate)[0], waves)
        companion_s = min(companion_s, seconds)
    pool = [line for line in DISTRACTORS.read_text(encoding="utf-8").splitlines() if line]
    entities = EntityList(random.Random(0).sample(pool, args.list_size),
                          on_unrepresentable="skip")
    rows = [("QuartzNet 15x5 forward", forward_s, 1.0),
            ("companion forward (bundled model to its phone head)", companion_s,
             companion_s / forward_s)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        decoders = {verify: build_biased_decoder(model.labels, verify_units=verify)
                    for verify in (False, True)}
        decode = {False: float("inf"), True: float("inf")}
        for _ in range(args.repeats):  # interleaved, best of: the machine's speed drifts
            for verify, decoder in decoders.items():
                decoder.compile(entities)
                seconds, _ = timed(
                    lambda out, d=decoder: d.decode(out.logprobs, entities=entities), outputs)
                decode[verify] = min(decode[verify], seconds)
    rows += [("decode (subword + unit spots), verifier off", decode[False], 1.0),
             ("decode (subword + unit spots), verifier on", decode[True],
              decode[True] / decode[False])]
    print(f"{len(waves)} utterances of speechocean762 test, {audio_s:.1f} s of audio, "
          f"{args.threads} torch thread(s), lists of {len(entities)}\n")
    print("| step | seconds | RTF | ratio |")
    print("|---|---:|---:|---:|")
    for name, seconds, ratio in rows:
        print(f"| {name} | {seconds:.2f} | {seconds / audio_s:.4f} | {ratio:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
