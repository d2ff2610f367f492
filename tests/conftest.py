"""Tiny synthetic fixtures: character and sentencepiece vocabularies, peaky log-probs, ARPA LM."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

CHAR_LABELS = [" ", *"abcdefghijklmnopqrstuvwxyz", "'", ""]
SHARED = Path(__file__).resolve().parents[1].parent / "shared"

LM_SENTENCES = [
    "the annual report is out", "we met the president today", "the city is big",
    "i met him in the city today", "the report was read by the president",
    "we read the annual report", "he is out today", "the big city report",
]
SPM_TEXT = LM_SENTENCES + [
    "fremont is a city", "zelensky spoke today", "the market rallied on news",
    "dapagliflozin lowers sugar", "acme corporation reported revenue growth",
    "new york and new jersey", "we spoke with the chief executive officer",
]


def frames_to_logprobs(frames: list[dict[int, float]], vocab: int, floor: float = 1e-4,
                       ) -> np.ndarray:
    """Each frame gives probabilities for a few units; the rest share what is left."""
    out = np.empty((len(frames), vocab), dtype=np.float32)
    for t, probs in enumerate(frames):
        rest = max(1.0 - sum(probs.values()), floor * vocab)
        row = np.full(vocab, rest / (vocab - len(probs)))
        for unit, p in probs.items():
            row[unit] = p
        out[t] = np.log(row / row.sum())
    return out


def spell(units: list[int], blank: int, peak: float = 0.9995,
          weak: dict[int, tuple[int, float, float]] | None = None) -> list[dict[int, float]]:
    """Frames for a unit sequence: unit, unit, blank per unit (blank between repeats).

    ``weak[i] = (competitor, p_competitor, p_true)`` makes position ``i`` acoustically weak
    (its first frame; the second is left to the blank).
    """
    frames: list[dict[int, float]] = []
    for i, unit in enumerate(units):
        if weak and i in weak:
            other, p_other, p_true = weak[i]
            frames += [{other: p_other, unit: p_true}, {blank: peak}]
        else:
            frames += [{unit: peak}, {unit: peak}, {blank: peak}]
    return frames


def char_logprobs(text: str, weak: dict[int, tuple[str, float, float]] | None = None,
                  ) -> np.ndarray:
    """Peaky log-probs over CHAR_LABELS spelling ``text``; ``weak`` keyed by char position."""
    index = {c: i for i, c in enumerate(CHAR_LABELS)}
    blank = index[""]
    units = [index[c] for c in text]
    weak_units = {pos: (index[c], po, pt) for pos, (c, po, pt) in (weak or {}).items()}
    frames = [{blank: 0.9995}] + spell(units, blank, weak=weak_units) + [{blank: 0.9995}]
    return frames_to_logprobs(frames, len(CHAR_LABELS))


@pytest.fixture(scope="session")
def char_labels() -> list[str]:
    return list(CHAR_LABELS)


@pytest.fixture(scope="session")
def spm_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 120-piece unigram sentencepiece model trained on a few sentences."""
    import sentencepiece as spm

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SPM_TEXT * 4), model_writer=buffer, vocab_size=120,
        model_type="unigram", bos_id=-1, eos_id=-1, unk_id=0, hard_vocab_limit=False,
        character_coverage=1.0, minloglevel=2)
    path = tmp_path_factory.mktemp("spm") / "tiny.model"
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture(scope="session")
def bpe_labels(spm_model: Path) -> list[str]:
    """The sentencepiece pieces in id order, blank appended (pyctcdecode convention)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())] + [""]


@pytest.fixture(scope="session")
def arpa_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from biasing.decoders.arpa import write_arpa

    path = tmp_path_factory.mktemp("lm") / "tiny.arpa"
    write_arpa(LM_SENTENCES, path)
    return path
