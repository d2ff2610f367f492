"""Write the example data in ``data/examples``.

``clips``: short sentences with rare names read by voices the default model never heard in
training (its held-out voices): ``*.ogg`` (16 kHz Ogg Vorbis), ``asr_test.tsv`` and
``entities_per_utt.tsv`` (the VoxPopuli layout, so ``ctc-biasing eval --dataset
data/examples`` works) and ``entities.txt``: the names said in the clips plus distractors
that are not said. The sentences are our own; the names in them are not in the model's
training text. Needs the TTS engines (``biasing/testset/install_voices.sh``).

``synthetic``: CTC log-probs of "we met in fremont today" whose "t" is acoustically weaker
than a "d", the character labels, and an entity list (``data/examples/synthetic``).

    python -m recipes.examples clips|synthetic
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from biasing.paths import atomic_write, checkout_root, write_text_atomic
from biasing.testset import make_testset

EXAMPLES = checkout_root() / "data" / "examples"
VOICES = ("rhvoice-alan", "festival-rab", "flite-kal16")  # the default model's held-out voices

SENTENCES = (
    ("clinic", "Doctor Przybylski switched the patient to tirzepatide last week.",
     ("Przybylski", "tirzepatide")),
    ("booking", "Please book a table at Kaiyo under the name Thandiwe Okonkwo.",
     ("Kaiyo", "Thandiwe Okonkwo")),
    ("invoice", "Call Anneliese Vanderkloot about the Quetzal Robotics invoice.",
     ("Anneliese Vanderkloot", "Quetzal Robotics")),
    ("travel", "Our flight to Reykjavik leaves after the Zerodha meeting.",
     ("Reykjavik", "Zerodha")),
)
# Listed but never said: a biased decoder must not put these into the transcripts.
DISTRACTORS = ("Przemyslaw Kowalczyk", "Thaddeus Okafor", "Kaito Yamamoto", "Annika Vandermeer",
               "Quentin Rousseau", "Zermatt", "Reykjanes", "semaglutide", "Tirana", "Kyiv",
               "Vanderbilt", "Okonjo", "Zeroday Labs", "Quantum Robotics", "Brzezinski")
CHAR_LABELS = [" ", *"abcdefghijklmnopqrstuvwxyz", "'", ""]


def make_clips(out: Path = EXAMPLES) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tsv = Path(tmp) / "sentences.tsv"
        tsv.write_text("".join(f"{i}\t{text}\t{'|'.join(names)}\n"
                               for i, text, names in SENTENCES), encoding="utf-8")
        made = make_testset(tsv, out, voices=list(VOICES), jobs=1,
                            log=lambda line: print(line, file=sys.stderr))
    if made.failures:
        sys.exit(f"{len(made.failures)} clips failed")
    said = [name for _, _, names in SENTENCES for name in names]
    write_text_atomic(out / "entities.txt", "\n".join(said + list(DISTRACTORS)) + "\n")


def make_synthetic(out: Path = EXAMPLES / "synthetic") -> None:
    index = {c: i for i, c in enumerate(CHAR_LABELS)}
    blank = index[""]
    frames: list[dict[int, float]] = [{blank: 0.9995}]
    for pos, char in enumerate("we met in fremont today"):
        if pos == 16:  # the "t" of fremont: a "d" is more likely
            frames += [{index["d"]: 0.55, index["t"]: 0.35}, {blank: 0.9995}]
        else:
            frames += [{index[char]: 0.9995}] * 2 + [{blank: 0.9995}]
    frames.append({blank: 0.9995})
    logprobs = np.empty((len(frames), len(CHAR_LABELS)), dtype=np.float32)
    for t, probs in enumerate(frames):
        rest = max(1.0 - sum(probs.values()), 1e-4 * len(CHAR_LABELS))
        row = np.full(len(CHAR_LABELS), rest / (len(CHAR_LABELS) - len(probs)))
        for unit, p in probs.items():
            row[unit] = p
        logprobs[t] = np.log(row / row.sum())
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "fremont.npy") as stream:
        np.save(stream, logprobs)
    write_text_atomic(out / "labels.txt", "\n".join(CHAR_LABELS) + "\n")
    write_text_atomic(out / "entities.txt", "# one entity per line, optional <TAB>weight\n"
                      "Fremont\nZelenskyy\t2\nNew York City\n")


def main() -> None:
    kinds = {"clips": make_clips, "synthetic": make_synthetic}
    if len(sys.argv) != 2 or sys.argv[1] not in kinds:
        sys.exit(f"usage: python -m recipes.examples {'|'.join(kinds)}")
    kinds[sys.argv[1]]()


if __name__ == "__main__":
    main()
