"""Prepare the training and held-out data of the bundled default model.

Writes under OUT (default ``recipes.common.PREPARED``, ``$CTC_BIASING_CACHE/default_model``):

- ``text/tts_train.tsv``: sentences for synthetic training speech, ``id<TAB>text<TAB>``:
  Earnings-21 sentences, speechocean762 *train* transcripts, and template sentences full of
  names from the Earnings-21 bias lists. Every sentence mentioning an entity of the
  Earnings-21 dev benchmark is dropped, and so are the benchmark's own sentences, so the
  benchmark's names stay new to the model.
- ``text/heldout.tsv``: the 300 dev benchmark sentences, read by ``HELDOUT_VOICES`` only.
- ``tts_train/`` and ``tts_heldout/``: the audio (``biasing.testset.make_testset``).

Held out from training: speechocean762 *test*, the voices in ``HELDOUT_VOICES``, and every
dev benchmark entity. Needs ``python -m recipes.earnings21_dev.select`` run first and the
TTS engines of ``biasing/testset/install_voices.sh``.

    python -m recipes.default_model.prepare [--out DIR] [--earnings 2500] [--names 1000]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from biasing.metrics import normalize_text
from biasing.paths import copy_atomic, shared_root, write_text_atomic
from biasing.testset import VOICES, make_testset
from recipes.common import PREPARED
from recipes.dev_lm import DEV, dev_entity_pattern, earnings_sentences, speechocean_train_texts

# Voices no training utterance uses: one per engine family that QuartzNet-style models
# understand (flite, festival, RHVoice), so the held-out WER measures new speakers, not
# new engines.
HELDOUT_VOICES = ("flite-kal16", "festival-rab", "rhvoice-alan")
# Voices of the training speech: every known voice but the held-out ones. The MBROLA voices
# through espeak-ng and the plain espeak formant voices are hard to understand but add
# speaker variety.
TRAIN_VOICES = tuple(v.name for v in VOICES if v.name not in HELDOUT_VOICES)

_TEMPLATES = (
    "I spoke with {a} about the new contract yesterday.",
    "{a} said the results were better than expected.",
    "Please send the report to {a} and {b} before Friday.",
    "Our partnership with {a} continues to grow.",
    "The next question comes from {a} with {b}.",
    "We welcomed {a} to the board this quarter.",
    "{a} and {b} will join us on the call.",
    "Can you call {a} tomorrow morning?",
    "The meeting with {a} went well.",
    "Thanks, {a}. Now over to {b}.",
    "We signed an agreement with {a} last month.",
    "{a} is now available in more stores.",
    "Let me introduce {a}, our new head of sales.",
    "Revenue from {a} doubled compared to last year.",
    "I think {a} made a good point.",
    "Did you hear what {a} said about {b}?",
)
_KEEP = re.compile(r"^[A-Za-z][A-Za-z' .,&\-]*$")


def training_sentences(n_earnings: int, n_names: int, n_speechocean: int,
                       seed: int) -> list[tuple[str, str]]:
    """(id, text) pairs for the synthetic training speech, dev entities excluded."""
    rng = random.Random(seed)
    banned = dev_entity_pattern()
    dev_texts = {" ".join(normalize_text(line.split("\t")[1])) for line in
                 (DEV / "sentences.tsv").read_text(encoding="utf-8").splitlines()}

    def allowed(text: str) -> bool:
        norm = " ".join(normalize_text(text))
        return bool(norm) and norm not in dev_texts and not banned.search(norm)

    earnings = [s for s in earnings_sentences() if 4 <= len(s.split()) <= 30 and allowed(s)]
    rng.shuffle(earnings)
    names: list[str] = []
    for list_name in ("oracle_list.txt", "distractor_list.txt"):
        path = shared_root() / "data" / "earnings21" / "bias_lists" / list_name
        names += [n.strip() for n in path.read_text(encoding="utf-8").splitlines()
                  if _KEEP.match(n.strip()) and len(n.strip()) > 2 and allowed(n.strip())]
    templated = []
    for _ in range(n_names):
        a, b = rng.sample(names, 2)
        templated.append(rng.choice(_TEMPLATES).format(a=a, b=b))
    speechocean = [text.capitalize() for text in speechocean_train_texts()]
    rng.shuffle(speechocean)
    rows = [(f"e21_{i:05d}", s) for i, s in enumerate(earnings[:n_earnings])]
    rows += [(f"names_{i:05d}", s) for i, s in enumerate(templated)]
    rows += [(f"so762_{i:05d}", s) for i, s in enumerate(speechocean[:n_speechocean])]
    return rows


def synthesise(tsv: Path, out: Path, voices: Sequence[str], split: str, jobs: int) -> None:
    made = make_testset(tsv, out, split=split, voices=list(voices), jobs=jobs,
                        log=lambda line: print(f"prepare: {line}", file=sys.stderr, flush=True))
    if made.failures:
        sys.exit(f"{len(made.failures)} sentences failed; run again to retry them")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=PREPARED)
    parser.add_argument("--earnings", type=int, default=2500)
    parser.add_argument("--names", type=int, default=1000)
    parser.add_argument("--speechocean", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    text = args.out / "text"
    text.mkdir(parents=True, exist_ok=True)
    rows = training_sentences(args.earnings, args.names, args.speechocean, args.seed)
    train_tsv = text / "tts_train.tsv"
    write_text_atomic(train_tsv, "".join(f"{i}\t{s.replace(chr(9), ' ')}\t\n" for i, s in rows))
    heldout_tsv = text / "heldout.tsv"
    copy_atomic(DEV / "sentences.tsv", heldout_tsv)
    print(f"{len(rows)} training sentences -> {train_tsv}", flush=True)
    synthesise(heldout_tsv, args.out / "tts_heldout", HELDOUT_VOICES, "test", args.jobs)
    synthesise(train_tsv, args.out / "tts_train", TRAIN_VOICES, "train", args.jobs)


if __name__ == "__main__":
    main()
