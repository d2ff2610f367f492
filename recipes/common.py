"""What the training recipes share: the training corpus, augmentation, batching, the
validation split, CTC loss and greedy error rates.

The corpus is speechocean762 *train* (real speech, from ``shared_root()``) plus the
synthetic training speech ``recipes.default_model.prepare`` writes under ``PREPARED``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

from biasing.lexicon import pronounce_batch, strip_stress
from biasing.lexicon.arpabet import BASE_PHONES
from biasing.metrics import edit_distance, normalize_text, wer
from biasing.paths import atomic_write, cache_root, shared_root
from biasing.testset import tts_text

PREPARED = cache_root() / "default_model"  # prepare.py's output, the runs' default home
RATE = 16000  # Hz of every training waveform
MAX_SECONDS = 20.0  # longer utterances are left out of training
VALIDATION_SIZE = 100  # speechocean762 train utterances kept out of training
PHONE_LABELS = (*BASE_PHONES, "")  # the phone head's labels, blank last


@dataclass
class TrainUtterance:
    """One training utterance, its audio in memory."""

    utt_id: str
    wave: np.ndarray  # int16 at RATE
    text: str  # normalised: lower case words separated by single spaces
    source: str  # "speechocean762" or "tts"

    def float_wave(self) -> np.ndarray:
        """The waveform as float32 in [-1, 1)."""
        return self.wave.astype(np.float32) / 32768


# ------------------------------------------------------------------------------ corpus

def speechocean_train_rows() -> list[tuple[str, Path, str]]:
    """(id, audio, text) of speechocean762 train."""
    folder = shared_root() / "data" / "speechocean762"
    scp = dict(line.split(maxsplit=1) for line in (folder / "train" / "wav.scp").read_text()
               .splitlines())
    rows = []
    for line in (folder / "train" / "text").read_text().splitlines():
        utt, text = line.split(maxsplit=1)
        rows.append((utt, folder / scp[utt], text))
    return rows


def tts_rows(folder: Path) -> list[tuple[str, Path, str]]:
    """(id, audio, text) of a make-testset folder's train split, numbers spelled as the
    voices read them."""
    rows = []
    for line in (folder / "asr_train.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        utt, raw = line.split("\t")[:2]
        rows.append((utt, folder / f"{utt}.ogg", tts_text(raw)))
    return rows


def load_corpus(cache: Path = PREPARED / "train_audio.npz") -> list[TrainUtterance]:
    """Every training utterance with letters-only text, at most MAX_SECONDS long; the audio
    is read once and kept as int16 in one ``.npz`` (``cache``)."""
    rows = [(u, p, t, "speechocean762") for u, p, t in speechocean_train_rows()]
    rows += [(u, p, t, "tts") for u, p, t in tts_rows(PREPARED / "tts_train")]
    if cache.is_file():
        with np.load(cache) as archive:
            audio = {k: archive[k] for k in archive.files}
    else:
        audio = {}
        for utt, path, _, _ in rows:
            wave, rate = sf.read(path, dtype="float32", always_2d=True)
            wave = wave.mean(axis=1)
            if rate != RATE:
                wave = soxr.resample(wave, rate, RATE)
            audio[utt] = (np.clip(wave, -1, 1) * 32767).astype(np.int16)
        with atomic_write(cache) as stream:
            np.savez(stream, **audio)
    corpus = []
    for utt, _, text, source in rows:
        words = normalize_text(text)
        spelled = words and not any(c.isdigit() for w in words for c in w)
        if spelled and utt in audio and len(audio[utt]) <= MAX_SECONDS * RATE:
            corpus.append(TrainUtterance(utt, audio[utt], " ".join(words), source))
    return corpus


def validation_split(corpus: Sequence[TrainUtterance], size: int = VALIDATION_SIZE,
                     ) -> tuple[list[TrainUtterance], list[TrainUtterance]]:
    """(train, validation): every k-th real-speech utterance by id is kept for validation."""
    real = sorted(u.utt_id for u in corpus if u.source == "speechocean762")
    chosen = set(real[::max(1, len(real) // size)][:size])
    return ([u for u in corpus if u.utt_id not in chosen],
            [u for u in corpus if u.utt_id in chosen])


def phone_targets(corpus: Sequence[TrainUtterance]) -> dict[str, list[int]]:
    """Per utterance, its phone label ids: the first CMUdict / G2P pronunciation of each
    word, stress removed."""
    words = sorted({w for u in corpus for w in u.text.split()})
    lexicon = {w: strip_stress(prons[0]) if prons else ()
               for w, prons in zip(words, pronounce_batch(words))}
    index = {p: i for i, p in enumerate(PHONE_LABELS)}
    return {u.utt_id: [index[p] for w in u.text.split() for p in lexicon[w]] for u in corpus}


def train_tokenizer(texts: Sequence[str], vocab: int, out: Path) -> None:
    """A unigram sentencepiece model of ``vocab`` pieces, written to ``out``."""
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_prefix=str(out.with_suffix("")), vocab_size=vocab,
        model_type="unigram", bos_id=-1, eos_id=-1, unk_id=0, character_coverage=1.0,
        minloglevel=2)


# ------------------------------------------------------------------------ augmentation

def augment(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Speed perturbation, reverberation, noise and gain on a float32 waveform."""
    if rng.random() < 0.6:
        speed = float(rng.choice([0.9, 0.95, 1.05, 1.1]))
        wave = soxr.resample(wave, RATE, RATE / speed, quality="LQ").astype(np.float32)
    if rng.random() < 0.25:
        rt60 = rng.uniform(0.15, 0.6)
        n = int(rt60 * RATE)
        rir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
        rir[0] = 1.0 / rng.uniform(0.3, 1.0)  # direct path
        rir /= np.sqrt((rir ** 2).sum())
        size = 1 << math.ceil(math.log2(len(wave) + n))
        wet = np.fft.irfft(np.fft.rfft(wave, size) * np.fft.rfft(rir, size), size)
        wave = wet[: len(wave)].astype(np.float32)
    if rng.random() < 0.5:
        snr_db = rng.uniform(5, 35)
        noise = rng.standard_normal(len(wave)).astype(np.float32)
        colour = rng.choice([0.0, 0.9, 0.99])  # white, pinkish, brownish
        if colour:
            spectrum = np.fft.rfft(noise)
            freqs = np.arange(len(spectrum)) + 1.0
            noise = np.fft.irfft(spectrum / freqs ** (colour / 2), len(noise)).astype(np.float32)
        power = float((wave ** 2).mean()) + 1e-9
        noise *= math.sqrt(power / (float((noise ** 2).mean()) + 1e-12) / 10 ** (snr_db / 10))
        wave = wave + noise
    wave = wave * 10 ** (rng.uniform(-6, 6) / 20)
    peak = float(np.abs(wave).max())
    return wave / peak * 0.99 if peak > 0.99 else wave


def spec_augment(feats: torch.Tensor, lengths: torch.Tensor, rng: np.random.Generator) -> None:
    """Two frequency masks (up to 12 bands) and time masks (up to 5% of frames) in place."""
    for b in range(feats.shape[0]):
        for _ in range(2):
            width = int(rng.integers(0, 13))
            start = int(rng.integers(0, feats.shape[1] - width + 1))
            feats[b, start:start + width, :] = 0.0
        n = int(lengths[b])
        for _ in range(max(1, n // 400)):
            width = int(rng.integers(0, max(1, n // 20) + 1))
            start = int(rng.integers(0, max(1, n - width)))
            feats[b, :, start:start + width] = 0.0


# ------------------------------------------------------------------ batches and losses

def batches(lengths: Sequence[int], budget: float, max_items: int, seed: int) -> list[list[int]]:
    """Length-sorted batches of indices into ``lengths``, in random order.

    A batch holds at most ``max_items`` items and about ``budget`` padded length (its
    longest item times its size), in the unit of ``lengths`` (samples, frames).
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (lengths[i] * (len(current) + 1) > budget or len(current) >= max_items):
            out.append(current)
            current = []
        current.append(i)
    if current:
        out.append(current)
    random.Random(seed).shuffle(out)
    return out


def pad_waves(waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, max samples) zero-padded float32 waveforms and their (batch,) lengths."""
    lengths = torch.tensor([len(w) for w in waves])
    padded = torch.zeros(len(waves), int(lengths.max()))
    for row, wave in enumerate(waves):
        padded[row, : len(wave)] = torch.from_numpy(wave)
    return padded, lengths


def ctc(logits: torch.Tensor, lengths: torch.Tensor, targets: Sequence[Sequence[int]],
        blank: int) -> torch.Tensor:
    """Mean CTC loss of (batch, classes, frames) logits."""
    logprobs = torch.log_softmax(logits.float(), dim=1).permute(2, 0, 1)  # (T, B, C)
    flat = torch.tensor([t for seq in targets for t in seq], dtype=torch.long)
    target_lengths = torch.tensor([len(seq) for seq in targets], dtype=torch.long)
    return torch.nn.functional.ctc_loss(logprobs, flat, lengths, target_lengths, blank=blank,
                                        reduction="mean", zero_infinity=True)


def unit_words(units: Sequence[str]) -> str:
    """The text a sequence of characters or sentencepiece pieces spells."""
    return "".join(units).replace("▁", " ").strip()


def error_rate(truths: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]],
               phones: bool) -> float:
    """Phone error rate of phone sequences, or word error rate of what unit sequences spell."""
    if phones:
        return (sum(edit_distance(t, h) for t, h in zip(truths, hyps))
                / max(1, sum(len(t) for t in truths)))
    return float(wer([unit_words(t) for t in truths], [unit_words(h) for h in hyps]))


def save_checkpoint(payload: object, path: Path) -> None:
    """``torch.save`` of ``payload`` to ``path``, atomically (a killed run keeps the previous
    checkpoint)."""
    with atomic_write(path) as stream:
        torch.save(payload, stream)


class RunLog:
    """Lines printed and appended to a run's log file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        with self.path.open("a") as out:
            out.write(line + "\n")
