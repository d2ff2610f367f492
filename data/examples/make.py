"""Write the example clips: short sentences with rare names read by voices the default
model never heard in training, and the entity list to transcribe them with.

Writes beside this file ``*.ogg`` (16 kHz Ogg Vorbis), ``asr_test.tsv`` and
``entities_per_utt.tsv`` (the VoxPopuli layout, so ``ctc-biasing eval data/examples`` works)
and ``entities.txt``: the names said in the clips plus distractors that are not said.
The sentences are our own; the names in them are not in the model's training text.

    python data/examples/make.py    # needs the TTS engines of data/recipes/tts_testset
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE.parent / "recipes" / "tts_testset" / "make_testset.py"
VOICES = "rhvoice-alan,festival-rab,flite-kal16"  # the default model's held-out voices

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


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tsv = Path(tmp) / "sentences.tsv"
        tsv.write_text("".join(f"{i}\t{text}\t{'|'.join(names)}\n"
                               for i, text, names in SENTENCES), encoding="utf-8")
        subprocess.run([sys.executable, str(SCRIPT), str(tsv), str(HERE), "--voices", VOICES,
                        "--jobs", "1"], check=True)
    said = [name for _, _, names in SENTENCES for name in names]
    (HERE / "entities.txt").write_text("\n".join(said + list(DISTRACTORS)) + "\n",
                                       encoding="utf-8")


if __name__ == "__main__":
    main()
