"""The adapter's training data: transcribed utterances with their rare words, and the
frozen model's outputs over them, cached in shards.

The frozen model runs once over the training audio; its log-probabilities and the layers
(and heads) the adapter reads are stored (float16) in shards of ``SHARD`` utterances, each
written atomically, so an interrupted run keeps what it had. An utterance's rare words are
its line of ``entities_per_utt.tsv`` in the data folder when there is one, else its words
of at least 4 letters that occur at most ``rare_count`` times in all the transcripts.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..paths import atomic_write, ensure_folder

__all__ = ["Features", "TrainingUtterance", "compute_features", "read_training_data",
           "write_manifest"]

SHARD = 256  # utterances per feature shard
MAX_SECONDS = 30.0  # longer training utterances are left out
Log = Callable[[str], None]


@dataclass(frozen=True)
class TrainingUtterance:
    """One utterance of the training data."""

    id: str
    audio: Path
    text: str  # normalised, spelt with the model's labels
    rare: tuple[str, ...]  # the words or names its lists are made from


def read_training_data(folders: Sequence[str | Path], labels: Sequence[str],
                       tokenizer: Any = None, rare_count: int = 2, log: Log = print,
                       ) -> list[TrainingUtterance]:
    """The transcribed utterances of ``folders`` (split ``train``: ``asr_train.tsv`` or a
    Kaldi ``train/``, ``text`` + ``wav.scp``) with their rare words.

    Raises:
        ValueError: a folder has no transcribed utterances (the message names it and the
            layouts looked for), or none can be spelt with ``labels``.
    """
    from ..datasets import load_dataset, read_entities_per_utt
    from ..entities import normalize_entity
    from ..tokenizer import make_tokenizer

    spell = make_tokenizer(list(labels), tokenizer)
    per_folder = []
    for folder in folders:
        try:
            utterances = load_dataset(folder, split="train", on_missing_audio="skip")
        except (OSError, ValueError) as err:
            raise ValueError(f"training data {str(folder)!r} has no transcribed utterances "
                             f"(expected asr_train.tsv, or Kaldi train/text + wav.scp): "
                             f"{err}") from None
        listed = Path(folder) / "entities_per_utt.tsv"
        rare = read_entities_per_utt(listed) if listed.is_file() else None
        per_folder.append((folder, utterances, rare))
    counts: Counter[str] = Counter(
        w for _, utts, _ in per_folder for u in utts for w in u.normalized_text.split())
    out: list[TrainingUtterance] = []
    skipped = 0
    for folder, utterances, rare in per_folder:
        kept = 0
        for utt in utterances:
            text, offending = normalize_entity(utt.normalized_text, spell.inventory)
            if not text or offending or not spell.segmentations(text):
                skipped += 1
                continue
            words = rare.get(utt.id, []) if rare is not None else [
                w for w in dict.fromkeys(utt.normalized_text.split())
                if len(w) >= 4 and w.isalpha() and counts[w] <= rare_count]
            out.append(TrainingUtterance(utt.id, utt.audio, text, tuple(words)))
            kept += 1
        if kept == 0:
            raise ValueError(f"training data {str(folder)!r}: none of its {len(utterances)} "
                             "utterances has a transcript the model's labels can spell")
        log(f"{folder}: {kept} utterances, rare words from "
            f"{'entities_per_utt.tsv' if rare is not None else 'transcript counts'}")
    if skipped:
        log(f"left out {skipped} utterances whose transcripts the labels cannot spell")
    return out


@dataclass
class Features:
    """Cached frozen-model outputs, one entry per kept utterance."""

    logprobs: list[np.ndarray]  # (T, V) float16
    hidden: list[list[np.ndarray]]  # per utterance, per layer (T, C) float16
    index: list[int]  # position in the utterance list
    heads: list[list[np.ndarray]] = field(default_factory=list)  # per utterance, per query
    # head (T, classes) float16 log-probabilities


def compute_features(model: Any, utterances: Sequence[TrainingUtterance],
                     layers: Sequence[int], folder: Path, log: Log,
                     heads: Sequence[str] = ()) -> Features:
    """Run ``model`` once over ``utterances`` (shards already in ``folder`` are reused)."""
    from ..audio import load_audio

    ensure_folder(folder, "adapter feature cache")
    result = Features([], [], [])
    shards = math.ceil(len(utterances) / SHARD)
    started = time.perf_counter()
    for shard in range(shards):
        path = folder / f"shard_{shard:04d}.npz"
        chunk = list(range(shard * SHARD, min(len(utterances), (shard + 1) * SHARD)))
        if not path.is_file():
            arrays: dict[str, Any] = {}  # Any: numpy stubs take **arrays for allow_pickle
            waves = {}
            for i in chunk:
                wave = load_audio(utterances[i].audio, model.sample_rate)
                if len(wave) <= MAX_SECONDS * model.sample_rate:
                    waves[i] = wave
            order = sorted(waves, key=lambda i: len(waves[i]))
            batch: list[int] = []
            for pos, i in enumerate(order):
                batch.append(i)
                if sum(len(waves[j]) for j in batch) < 60 * model.sample_rate \
                        and pos < len(order) - 1:
                    continue
                for j, out in zip(batch, model.forward([waves[j] for j in batch], layers)):
                    arrays[f"{j}/logprobs"] = out.logprobs.astype(np.float16)
                    for layer in layers:
                        arrays[f"{j}/{layer}"] = out.hidden[layer].astype(np.float16)
                    for head in heads:
                        arrays[f"{j}/head:{head}"] = out.heads[head].astype(np.float16)
                batch = []
            with atomic_write(path) as stream:
                np.savez(stream, **arrays)
            log(f"features: shard {shard + 1}/{shards} ({time.perf_counter() - started:.0f} s)")
        with np.load(path) as stored:
            for i in chunk:
                if f"{i}/logprobs" in stored.files:
                    result.index.append(i)
                    result.logprobs.append(stored[f"{i}/logprobs"])
                    result.hidden.append([stored[f"{i}/{layer}"] for layer in layers])
                    result.heads.append([stored[f"{i}/head:{h}"] for h in heads])
    return result


def write_manifest(folder: Path, utterances: Sequence[TrainingUtterance]) -> None:
    """Shards are only valid for the utterance list they were made from: a different
    list starts the cache again."""
    ensure_folder(folder, "adapter feature cache")
    manifest = "\n".join(f"{u.id}\t{u.audio}" for u in utterances)
    path = folder / "utterances.tsv"
    if path.is_file() and path.read_text(encoding="utf-8") != manifest:
        for shard in folder.glob("shard_*.npz"):
            shard.unlink()
    if not path.is_file() or path.read_text(encoding="utf-8") != manifest:
        with atomic_write(path) as stream:
            stream.write(manifest.encode())
