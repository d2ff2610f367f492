"""Record pyctcdecode 0.5.0's beams as golden fixtures for our search (run once, by hand).

    pip install pyctcdecode==0.5.0 && python tests/decoders/golden/record.py

Writes beside this file ``cases.npz`` (the inputs), ``lm.arpa`` (a tiny bigram LM) and
``beams.json`` (per case: the labels, the decoder and call settings, and the 20 best output
beams of ``decode_beams`` as text, word frames, acoustic score and combined score). The tests in
``tests/decoders/test_golden.py`` replay them without pyctcdecode.
"""

from __future__ import annotations

import io
import json
import string
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
KEEP = 20  # beams stored per call (best first)
CHAR = [" ", *string.ascii_lowercase, "'", ""]
SENTENCES = ["the annual report is out", "we met the president today", "the city is big",
             "i met him in the city today", "the report was read by the president",
             "we read the annual report", "he is out today", "the big city report",
             "fremont is a city", "zelensky spoke today"]


def bpe_labels() -> list[str]:
    """A 64-piece unigram sentencepiece vocabulary (``<unk>`` included), blank appended."""
    import sentencepiece as spm

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCES * 4), model_writer=buffer, vocab_size=64,
        model_type="unigram", bos_id=-1, eos_id=-1, unk_id=0, hard_vocab_limit=False,
        character_coverage=1.0, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_proto=buffer.getvalue())
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())] + [""]


def logits(rng: np.random.Generator, frames: int, vocab: int, kind: str) -> np.ndarray:
    """``random``: flat log-probs (many tokens per frame); ``peaky``: CTC-like spikes."""
    x = rng.normal(size=(frames, vocab)) * 2.0
    if kind == "peaky":
        x = rng.normal(size=(frames, vocab))
        x[np.arange(frames), rng.integers(0, vocab, frames)] += 8.0
        x[rng.random(frames) < 0.5, -1] += 10.0  # blank-heavy
        x[rng.random(frames) < 0.15] *= 0.2  # some uncertain frames
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def main() -> None:
    from pyctcdecode import build_ctcdecoder

    from biasing.decoders.arpa import write_arpa

    write_arpa(SENTENCES, HERE / "lm.arpa")
    rng = np.random.default_rng(20261201)
    vocabularies = {"char": CHAR, "bpe": bpe_labels()}
    inputs: dict[str, np.ndarray] = {}
    cases = []
    shapes = [("char", "random", 30), ("char", "peaky", 160), ("char", "peaky", 400),
              ("bpe", "random", 30), ("bpe", "peaky", 160)]
    for vocab, kind, frames in shapes:
        labels = vocabularies[vocab]
        for lm in (False, True):
            name = f"{vocab}_{kind}{frames}_{'lm' if lm else 'nolm'}"
            x = logits(rng, frames, len(labels), kind)
            # peaky inputs as models give them (float32); random ones stay float64
            inputs[name] = x.astype(np.float32) if kind == "peaky" else x
            calls: list[dict] = [{"beam_width": 16},
                                 {"beam_width": 100, "prune_history": True}]
            if kind == "peaky":
                calls.append({"beam_width": 16, "hotwords": ["fremont", "the city"]})
            cases.append({"name": name, "vocab": vocab, "lm": lm, "calls": calls})
    # the input conversions pyctcdecode applies: float64, probabilities, raw logits, integers
    base = inputs["char_peaky160_nolm"]
    inputs["char_float64"] = base.astype(np.float64)
    inputs["char_probabilities"] = np.exp(base.astype(np.float64))
    inputs["char_raw_logits"] = base * 1.7 + 3.0
    inputs["char_integers"] = np.rint(base - base.min()).astype(np.int64)
    for name in ("char_float64", "char_probabilities", "char_raw_logits", "char_integers"):
        cases.append({"name": name, "vocab": "char", "lm": False, "calls": [{"beam_width": 16}]})
    decoders = {(vocab, lm): build_ctcdecoder(labels, str(HERE / "lm.arpa") if lm else None)
                for vocab, labels in vocabularies.items() for lm in (False, True)}
    for case in cases:
        decoder = decoders[(case["vocab"], case["lm"])]
        case["results"] = []
        for call in case["calls"]:
            beams = decoder.decode_beams(inputs[case["name"]], **call)
            case["results"].append([[text, [[w, list(f)] for w, f in frames], logit, score]
                                    for text, _, frames, logit, score in beams[:KEEP]])
    np.savez_compressed(HERE / "cases.npz", **inputs)
    (HERE / "beams.json").write_text(json.dumps(
        {"pyctcdecode": "0.5.0", "numpy": np.__version__, "labels": vocabularies,
         "cases": cases}, indent=0) + "\n", encoding="utf-8")
    print(f"{len(cases)} cases, {sum(len(c['calls']) for c in cases)} calls")


if __name__ == "__main__":
    main()
