"""Fixtures shared by the whole suite: character and sentencepiece vocabularies, peaky
log-probs, a tiny ARPA LM, a scripted acoustic model, a tiny random QuartzNet folder, and the
development data (skipped with the reason when absent).

Helpers that tests construct themselves (``char_logprobs``, ``ScriptedModel``,
``write_tiny_quartznet``) are importable as ``from conftest import ...``.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from biasing.models import ModelOutput
from biasing.paths import shared_root

CHAR_LABELS = [" ", *"abcdefghijklmnopqrstuvwxyz", "'", ""]

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


# ------------------------------------------------------------------ scripted acoustic model

def spoken_logprobs() -> np.ndarray:
    """"we met in fremont today" whose "t" is weaker than a "d": fremond without a list."""
    return char_logprobs("we met in fremont today", weak={16: ("d", 0.55, 0.35)})


class ScriptedModel:
    """Emits :func:`spoken_logprobs` (repeated or cut) for any audio, one frame per 20 ms;
    ``fingerprint`` makes its outputs cacheable."""

    labels = CHAR_LABELS
    sample_rate = 16000
    frame_shift_s = 0.02
    fingerprint = "scripted-v1"

    def __init__(self, heads: dict[str, list[str]] | None = None) -> None:
        self.batches: list[int] = []  # the size of every forward batch
        self.head_labels = dict(heads or {})  # auxiliary heads: uniform log-probs

    def forward(self, waves: Sequence[np.ndarray], layers: Sequence[int] = ()
                ) -> list[ModelOutput]:
        self.batches.append(len(waves))
        spoken = spoken_logprobs()
        out = []
        for wave in waves:
            frames = int(len(wave) / (self.sample_rate * self.frame_shift_s))
            reps = -(-frames // len(spoken))
            heads = {name: np.full((frames, len(labels)), -np.log(len(labels)), np.float32)
                     for name, labels in self.head_labels.items()}
            out.append(ModelOutput(np.concatenate([spoken] * reps)[:frames], heads=heads))
        return out


# ------------------------------------------------------------------------ tiny QuartzNet

TINY_LABELS = [" ", "a", "b", "c", "'"]  # blank is index 5, after the labels, as in NeMo
TINY_MELS = 8


def _conv(name: str, out: int, kernel: int = 1, stride: int = 1, dilation: int = 1,
          groups: int = 1) -> dict[str, Any]:
    return {
        "name": name, "groups": groups, "dilation": dilation, "out_channels": out,
        "padding": dilation * (kernel - 1) // 2, "kernel_size": kernel, "stride": stride,
        "bias": kernel == 1,
    }


def write_tiny_quartznet(folder: Path, seed: int = 0) -> Path:
    """Write a random 2-block QuartzNet (8 mels, 6 classes) to ``folder``.

    It has the real folder layout (config.json + weights.npz) and structure (strided
    prolog, blocks of dw/pw sub-blocks with a residual, a dilated epilog, a head), so every
    code path runs in milliseconds without the development data.
    """
    rng = np.random.default_rng(seed)
    convs = [_conv("prolog.dw", TINY_MELS, 5, stride=2, groups=TINY_MELS),
             _conv("prolog.pw", 16)]
    channels_in = 16
    for block, channels in enumerate((16, 24)):
        width = channels_in
        for sub in range(2):
            convs.append(_conv(f"blocks.{block}.sub.{sub}.dw", width, 3, groups=width))
            convs.append(_conv(f"blocks.{block}.sub.{sub}.pw", channels))
            width = channels
        convs.append(_conv(f"blocks.{block}.residual", channels))
        channels_in = channels
    convs += [_conv("epilog.0.dw", 24, 5, dilation=2, groups=24), _conv("epilog.0.pw", 24),
              _conv("epilog.1.pw", 32), _conv("head", len(TINY_LABELS) + 1)]
    weights: dict[str, np.ndarray] = {}
    channels = TINY_MELS
    for conv in convs:
        in_per_group = 1 if conv["groups"] > 1 else channels
        if conv["name"].endswith("residual"):
            in_per_group = weights[conv["name"].replace("residual", "sub.0.dw") + ".weight"].shape[0]
        shape = (conv["out_channels"], in_per_group, conv["kernel_size"])
        weights[conv["name"] + ".weight"] = (
            rng.standard_normal(shape) / np.sqrt(in_per_group * conv["kernel_size"])
        ).astype(np.float32)
        if conv["bias"]:
            weights[conv["name"] + ".bias"] = (0.1 * rng.standard_normal(conv["out_channels"])
                                              ).astype(np.float32)
        if not conv["name"].endswith("residual"):
            channels = conv["out_channels"]
    config = {
        "sample_rate": 16000,
        "labels": TINY_LABELS,
        "blank_index": len(TINY_LABELS),
        "features": {
            "type": "log-mel", "n_mels": TINY_MELS, "n_fft": 512, "win_length": 320,
            "hop_length": 160, "window": "hann (periodic)", "center": True,
            "preemphasis": 0.97, "mel": "librosa-style Slaney mel filterbank, fmin 0, fmax 8000",
            "power": 2.0, "log": "natural log of (mel power + 2**-24)", "dither": 0.0,
            "normalize": {"fixed_mean": [-10.0] * TINY_MELS, "fixed_std": [3.0] * TINY_MELS},
        },
        "convolutions": convs,
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    np.savez(folder / "weights.npz", **weights)
    return folder


@pytest.fixture(scope="session")
def tiny_quartznet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_quartznet(tmp_path_factory.mktemp("tiny_quartznet"))


# ------------------------------------------------------------------- development data

def shared_path(*parts: str) -> Path:
    """A path in the development data, or a skip that names it when it is absent."""
    path = shared_root().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"development data absent: {path} (set $CTC_BIASING_SHARED or put "
                    "the shared folder beside the checkout)")
    return path


@pytest.fixture(scope="session")
def quartznet_dir() -> Path:
    """The pretrained QuartzNet 15x5 folder of the development data."""
    return shared_path("models", "quartznet15x5")


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` read-only: by its mode, or where modes do not stop this user (root), as
    immutable (chattr +i); skips where neither can be done."""
    folder.chmod(0o555)
    immutable = False
    try:
        probe = folder / "probe"
        with contextlib.suppress(OSError):
            probe.touch()
        if probe.exists():
            probe.unlink()
            chattr = shutil.which("chattr")
            immutable = chattr is not None and subprocess.run(
                [chattr, "+i", str(folder)], capture_output=True, check=False).returncode == 0
            if not immutable:
                pytest.skip("this user writes into read-only folders and chattr +i fails")
        yield
    finally:
        if immutable:
            subprocess.run([str(shutil.which("chattr")), "-i", str(folder)], check=True)
        folder.chmod(0o755)


def _no_model(*args: object, **kwargs: object) -> None:
    raise AssertionError("a model was loaded although the input is refused")


def _no_ray(*args: object, **kwargs: object) -> None:
    raise AssertionError("Ray was started although the input is refused")


@pytest.fixture
def refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a model or starting Ray fails the test: refusals come before either (an
    AssertionError is not one of the errors the command line turns into exit 2)."""
    monkeypatch.setattr("biasing.transcribe.Transcriber", _no_model)
    monkeypatch.setattr("biasing.corpus.ray_map", _no_ray)
