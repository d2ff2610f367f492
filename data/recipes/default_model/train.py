"""Train the bundled default model: QuartzNet 15x5 fine-tuned with self-conditioned
intermediate CTC heads and a phone CTC head.

Start: NVIDIA's pretrained QuartzNet 15x5 (characters, CC-BY-4.0) from
``../shared/models/quartznet15x5``. CTC heads with feedback over the output units are added
on blocks 5 and 11 (the method's 6th and 12th layers) and a phone head (39 stressless
ARPAbet phones + blank, targets from CMUdict / G2P) on block 11. New heads and feedback
projections start at zero, so step 0 computes exactly the pretrained network. The first
``--freeze-steps`` steps train the new heads only; then every weight learns, pretrained
layers at a low rate.

Output units (``--units``):

- ``chars`` (the shipped model, and the defaults below): the pretrained character head is
  kept and fine-tuned.
- ``pieces``: a new sentencepiece head (``--vocab`` units + blank), started from the
  character head (``piece_head_from_chars``), optionally with a frame-level loss on the
  character model's alignment (``--aligned``). On 2 CPU cores this did not get past CTC's
  all-blank plateau within the few hundred steps a session allows (the model card has the
  numbers); it is here for a longer run or a GPU. ``train_heads.py`` (stage 2) trains new
  heads on the frozen result of this script instead.

Loss: ``(1 - inter) * ctc(final) + inter * mean(ctc(ctc_5), ctc(ctc_11)) + phone *
ctc(phones)`` (plus ``aligned`` times the frame losses for pieces).

Data (``prepare.py`` makes the synthetic part): speechocean762 *train* (real speech; 100
utterances kept for validation) and the synthetic training speech, with speed perturbation,
noise, reverberation, gain and SpecAugment. speechocean762 *test*, the held-out voices and
the dev benchmark entities are never used.

Resumable: ``RUN/checkpoint.pt`` is written every ``--save-every`` steps and read on start;
``RUN/log.tsv`` logs losses and validation WER. Stops after ``--steps`` or ``--minutes``.

    python data/recipes/default_model/train.py RUN [--minutes 46]
    python data/recipes/default_model/export.py RUN data/models/default
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

from biasing.lexicon import pronounce_batch, strip_stress
from biasing.lexicon.arpabet import BASE_PHONES
from biasing.metrics import normalize_text, wer
from biasing.models import greedy_labels
from biasing.models.frontend import LogMelFrontend
from biasing.models.quartznet import (
    HeadSpec,
    NetworkOutput,
    QuartzNet,
    _conv_specs,
    _frontend_config,
    _read_weights,
)

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "data" / "recipes" / "tts_testset"))
from make_testset import tts_text

SHARED = ROOT.parent / "shared"
BASE = SHARED / "models" / "quartznet15x5"
PREPARED = Path.home() / ".cache" / "ctc-biasing" / "default_model"
RATE = 16000
INTER_LAYERS = (5, 11)  # self-conditioned subword heads
PHONE_LAYER = 11
MAX_SECONDS = 20.0  # longer utterances are left out of training


@dataclass
class Utterance:
    utt_id: str
    wave: np.ndarray  # int16 at RATE
    text: str  # normalised: lower case words separated by single spaces
    source: str  # "speechocean762" or "tts"


# ------------------------------------------------------------------------------------ data


def read_speechocean_train() -> list[tuple[str, Path, str]]:
    folder = SHARED / "data" / "speechocean762"
    scp = dict(line.split(maxsplit=1) for line in (folder / "train" / "wav.scp").read_text()
               .splitlines())
    rows = []
    for line in (folder / "train" / "text").read_text().splitlines():
        utt, text = line.split(maxsplit=1)
        rows.append((utt, folder / scp[utt], text))
    return rows


def read_tts(folder: Path) -> list[tuple[str, Path, str]]:
    """(id, audio, text) of a make_testset.py folder, numbers spelled as the voices read them."""
    rows = []
    for line in (folder / "asr_train.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        utt, raw = line.split("\t")[:2]
        rows.append((utt, folder / f"{utt}.ogg", tts_text(raw)))
    return rows


def load_corpus(cache: Path) -> list[Utterance]:
    """Every training utterance, audio as int16 in memory (cached in one .npz)."""
    rows = [(u, p, t, "speechocean762") for u, p, t in read_speechocean_train()]
    rows += [(u, p, t, "tts") for u, p, t in read_tts(PREPARED / "tts_train")]
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
        np.savez(cache, **audio)
    corpus = []
    for utt, _, text, source in rows:
        words = normalize_text(text)
        spelled = words and not any(c.isdigit() for w in words for c in w)
        if spelled and utt in audio and len(audio[utt]) <= MAX_SECONDS * RATE:
            corpus.append(Utterance(utt, audio[utt], " ".join(words), source))
    return corpus


def phone_sequence(text: str, cache: dict[str, tuple[str, ...]]) -> list[str]:
    words = text.split()
    missing = sorted({w for w in words if w not in cache})
    if missing:
        for word, prons in zip(missing, pronounce_batch(missing)):
            cache[word] = strip_stress(prons[0]) if prons else ()
    return [p for w in words for p in cache[w]]


def train_tokenizer(texts: list[str], vocab: int, out: Path) -> None:
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_prefix=str(out.with_suffix("")), vocab_size=vocab,
        model_type="unigram", bos_id=-1, eos_id=-1, unk_id=0, character_coverage=1.0,
        minloglevel=2)


# ---------------------------------------------------------------------------- augmentation


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


# ----------------------------------------------------------------------------------- model


def piece_head_from_chars(pieces: list[str], char_labels: list[str], weight: np.ndarray,
                          bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start the subword head from the character head: a piece scores like its last letter.

    The pretrained network spikes once per character, so at step 0 each piece fires where
    its last character would (ties split evenly in the bias) and the blank stays the blank.
    CTC training then starts from a good alignment instead of the all-blank plateau a random
    head sits on for hundreds of steps.
    """
    index = {c: i for i, c in enumerate(char_labels)}
    last = [index.get(p.replace("▁", " ")[-1:] or " ", -1) for p in pieces]
    ties = np.bincount([i for i in last if i >= 0], minlength=len(char_labels))
    new_weight = np.zeros((len(pieces) + 1,) + weight.shape[1:], dtype=np.float32)
    new_bias = np.full(len(pieces) + 1, -10.0, dtype=np.float32)
    for row, char in enumerate(last):
        if char >= 0:
            new_weight[row] = weight[char]
            new_bias[row] = bias[char] - np.log(ties[char])
    new_weight[-1], new_bias[-1] = weight[len(char_labels)], bias[len(char_labels)]  # blank
    return new_weight, new_bias


def build_network(pieces: list[str]) -> tuple[QuartzNet, LogMelFrontend, dict]:
    """Pretrained QuartzNet with a subword head (+ blank) and the auxiliary heads."""
    vocab = len(pieces)
    config = json.loads((BASE / "config.json").read_text())
    weights = _read_weights(BASE / "weights.npz")
    head_weight, head_bias = piece_head_from_chars(
        pieces, config["labels"], weights["head.weight"], weights["head.bias"])
    config["convolutions"] = [dict(c, out_channels=vocab + 1) if c["name"] == "head" else c
                              for c in config["convolutions"]]
    del weights["head.weight"], weights["head.bias"]
    heads = [HeadSpec(f"ctc_{layer}", layer, vocab + 1, True) for layer in INTER_LAYERS]
    heads.append(HeadSpec("phones", PHONE_LAYER, len(BASE_PHONES) + 1, False))
    specs = _conv_specs(config, {**weights, "head.weight": np.zeros((vocab + 1, 1024, 1))})
    network = QuartzNet(specs, heads)
    state = network.state_dict()
    for name in state:
        key = name.replace("subs.", "sub.")
        if key in weights:
            state[name] = torch.from_numpy(weights[key].astype(np.float32).reshape(
                state[name].shape))
    state["head.weight"] = torch.from_numpy(head_weight.reshape(state["head.weight"].shape))
    state["head.bias"] = torch.from_numpy(head_bias)
    network.load_state_dict(state)
    config["heads"] = [{"name": h.name, "layer": h.layer, "classes": h.classes,
                        "feedback": h.feedback} for h in heads]
    return network, LogMelFrontend(_frontend_config(config)), config


def viterbi_spikes(logprobs: np.ndarray, labels: list[int], blank: int) -> list[int] | None:
    """First frame of each label on the best CTC path of ``labels`` through (T, C) ``logprobs``.

    None when the labels do not fit in the frames.
    """
    frames = len(logprobs)
    ext = np.full(2 * len(labels) + 1, blank)
    ext[1::2] = labels
    states = len(ext)
    if frames < len(labels):
        return None
    skip = np.zeros(states, dtype=bool)  # may come from s - 2
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    score = np.full(states, -np.inf)
    score[:2] = logprobs[0, ext[:2]]
    back = np.zeros((frames, states), dtype=np.int8)  # 0: stay, 1: from s-1, 2: from s-2
    for t in range(1, frames):
        candidates = np.stack([score, np.r_[-np.inf, score[:-1]],
                               np.where(skip, np.r_[-np.inf, -np.inf, score[:-2]], -np.inf)])
        back[t] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + logprobs[t, ext]
    state = states - 1 if score[-1] >= score[-2] else states - 2
    if not np.isfinite(score[state]):
        return None
    first = [-1] * len(labels)
    for t in range(frames - 1, -1, -1):
        if state % 2 == 1:
            first[state // 2] = t
        state -= int(back[t, state])
    return first


def frame_targets(char_logprobs: np.ndarray, text: str, pieces: list[str], blank: int,
                  char_index: dict[str, int], char_blank: int) -> np.ndarray:
    """Frame-level subword targets from the pretrained character model's alignment.

    Each piece of ``text`` is placed on the frame where the character model spikes for the
    piece's last character; every other frame is blank. -100 (ignored) when the alignment
    fails. Gives the new output head a direct signal from step 0, next to its CTC loss.
    """
    targets = np.full(len(char_logprobs), blank, dtype=np.int64)
    spikes = viterbi_spikes(char_logprobs, [char_index[c] for c in text], char_blank)
    if spikes is None or "".join(piece for _, piece in pieces) != " " + text:
        targets[:] = -100  # no alignment, or pieces that do not spell the text (<unk>)
        return targets
    end = -2  # index in text of the piece's last character; pieces spell " " + text
    for piece_id, piece in pieces:
        end += len(piece)
        if end >= 0 and targets[spikes[end]] == blank:
            targets[spikes[end]] = piece_id
    return targets


def frame_losses(out: NetworkOutput, epilog: torch.Tensor, char_head: torch.nn.Conv2d,
                 batch: list[Utterance], piece_strings: dict[str, list[tuple[int, str]]],
                 blank: int, char_index: dict[str, int],
                 blank_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame-level cross-entropy of the output and intermediate heads on ``frame_targets``."""
    with torch.no_grad():
        char_lp = torch.log_softmax(char_head(epilog.detach().float()), dim=1)
        char_lp = char_lp.squeeze(2).transpose(1, 2).numpy()  # (B, T, chars)
    frames = torch.full(out.logits.shape[::2], -100, dtype=torch.long)
    for row, (u, n) in enumerate(zip(batch, out.lengths.tolist())):
        frames[row, :n] = torch.from_numpy(frame_targets(
            char_lp[row, :n], u.text, piece_strings[u.utt_id], blank, char_index,
            len(char_index)))
    # blank frames outnumber piece frames ~10:1; weighting them down keeps the frame loss
    # from pulling the heads into CTC's all-blank plateau
    class_weight = torch.ones(blank + 1)
    class_weight[blank] = blank_weight
    aligned = torch.nn.functional.cross_entropy(out.logits.float(), frames, class_weight,
                                                ignore_index=-100)
    aligned_inter = torch.stack([
        torch.nn.functional.cross_entropy(out.heads[f"ctc_{layer}"].float(), frames,
                                          class_weight, ignore_index=-100)
        for layer in INTER_LAYERS]).mean()
    return aligned, aligned_inter


def ctc(logits: torch.Tensor, lengths: torch.Tensor, targets: list[list[int]],
        blank: int) -> torch.Tensor:
    logprobs = torch.log_softmax(logits.float(), dim=1).permute(2, 0, 1)  # (T, B, C)
    flat = torch.tensor([t for seq in targets for t in seq], dtype=torch.long)
    target_lengths = torch.tensor([len(seq) for seq in targets], dtype=torch.long)
    return torch.nn.functional.ctc_loss(logprobs, flat, lengths, target_lengths, blank=blank,
                                        reduction="mean", zero_infinity=True)


def greedy(logits: torch.Tensor, length: int, pieces: list[str]) -> str:
    """Greedy transcript of (classes, frames) ``logits``; the blank is the class after ``pieces``."""
    labels = list(pieces) + [""]
    return "".join(greedy_labels(logits[:, :length].T.numpy(), labels)).replace("▁", " ").strip()


# -------------------------------------------------------------------------------- training


def batches(lengths: list[int], budget: float, max_items: int, seed: int) -> list[list[int]]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--units", choices=("pieces", "chars"), default="chars",
                        help="output units: sentencepiece pieces (a new head) or the "
                             "pretrained characters")
    parser.add_argument("--vocab", type=int, default=256)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--minutes", type=float, default=1e9, help="stop after this long")
    parser.add_argument("--batch-seconds", type=float, default=80.0)
    parser.add_argument("--lr", type=float, default=3e-5, help="pretrained layers")
    parser.add_argument("--head-lr", type=float, default=2e-3, help="auxiliary heads")
    parser.add_argument("--output-lr", type=float, default=3e-5,
                        help="output head (2e-4 for a new sentencepiece head)")
    parser.add_argument("--top-lr", type=float, default=3e-5, help="blocks from --top-block")
    parser.add_argument("--top-block", type=int, default=12)
    parser.add_argument("--feedback-lr", type=float, default=1e-4,
                        help="self-conditioning feedback projections")
    parser.add_argument("--freeze-steps", type=int, default=100,
                        help="first steps train the head projections only")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--inter", type=float, default=0.3)
    parser.add_argument("--aligned", type=float, default=0.0,
                        help="weight of the frame-level loss on the character alignment")
    parser.add_argument("--ctc-start", type=int, default=0,
                        help="step from which the output head also gets its CTC loss")
    parser.add_argument("--blank-weight", type=float, default=0.1,
                        help="weight of blank frames in the frame-level loss")
    parser.add_argument("--phone", type=float, default=0.3)
    parser.add_argument("--save-every", type=int, default=25)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--init", type=Path, help="start from this run's checkpoint.pt weights")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.time()
    args.run.mkdir(parents=True, exist_ok=True)
    log_path = args.run / "log.tsv"

    def log(line: str) -> None:
        with log_path.open("a") as out:
            out.write(line + "\n")

    corpus = load_corpus(PREPARED / "train_audio.npz")
    valid_ids = {u.utt_id for u in corpus if u.source == "speechocean762"}
    valid_ids = set(sorted(valid_ids)[::len(valid_ids) // 100][:100])
    valid = [u for u in corpus if u.utt_id in valid_ids]
    train = [u for u in corpus if u.utt_id not in valid_ids]
    char_labels = json.loads((BASE / "config.json").read_text())["labels"]
    char_index = {c: i for i, c in enumerate(char_labels)}
    if args.units == "pieces":
        spm_path = args.run / "tokenizer.model"
        if not spm_path.is_file():
            train_tokenizer([u.text for u in train], args.vocab, spm_path)
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(spm_path))
        pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
        targets = {u.utt_id: sp.encode(u.text) for u in corpus}
    else:  # the pretrained character head stays as it is
        pieces = list(char_labels)
        targets = {u.utt_id: [char_index[c] for c in u.text] for u in corpus}
    lexicon: dict[str, tuple[str, ...]] = {}
    phone_index = {p: i for i, p in enumerate(BASE_PHONES)}
    piece_strings = {u.utt_id: [(i, pieces[i].replace("▁", " ")) for i in targets[u.utt_id]]
                     for u in corpus}
    phones = {u.utt_id: [phone_index[p] for p in phone_sequence(u.text, lexicon)]
              for u in corpus}
    hours = sum(len(u.wave) for u in train) / RATE / 3600
    print(f"{len(train)} training utterances ({hours:.1f} h), {len(valid)} validation",
          flush=True)

    network, frontend, config = build_network(pieces)
    base_weights = _read_weights(BASE / "weights.npz")
    char_head = torch.nn.Conv2d(1024, len(char_labels) + 1, 1)
    char_head.weight.data = torch.from_numpy(base_weights["head.weight"][..., None])
    char_head.bias.data = torch.from_numpy(base_weights["head.bias"])
    char_head.requires_grad_(False)
    captured: dict[str, torch.Tensor] = {}
    network.head.register_forward_hook(
        lambda module, inputs, output: captured.__setitem__("epilog", inputs[0]))
    device = torch.device(args.device)
    network.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    frontend.to(device)
    # 0: pretrained layers below --top-block, 1: auxiliary head projections (random start),
    # 2: self-conditioning feedback, 3: the output head (started from the character head),
    # 4: pretrained layers from --top-block up. Adam moves every weight by about the rate per
    # step and the ReLU features are all positive, so a logit moves by about rate * channels
    # * mean feature: 1e-3 on the 1024 output features (mean 0.6) would swing logits by ~0.6
    # nats a step. A linear head on frozen character features cannot merge letters into
    # pieces, so the top blocks learn from the start at a higher rate than the rest.
    groups: list[list[torch.nn.Parameter]] = [[], [], [], [], []]
    for name, param in network.named_parameters():
        top = name.startswith("epilog.") or (
            name.startswith("blocks.") and int(name.split(".")[1]) >= args.top_block)
        groups[2 if ".back." in name else 1 if name.startswith("heads.")
               else 3 if name.startswith("head.") else 4 if top else 0].append(param)
    base_lrs = [args.lr, args.head_lr, args.feedback_lr, args.output_lr, args.top_lr]
    optimizer = torch.optim.AdamW([{"params": g, "lr": lr} for g, lr in zip(groups, base_lrs)],
                                  weight_decay=1e-3)
    step = 0
    checkpoint = args.run / "checkpoint.pt"
    if args.init is not None and not checkpoint.is_file():  # weights only, fresh optimizer
        network.load_state_dict(torch.load(args.init, map_location=device)["network"])
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location=device)
        network.load_state_dict(state["network"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        print(f"resumed at step {step}", flush=True)
    (args.run / "config.json").write_text(json.dumps(
        {**config, "labels": pieces, "blank_index": len(pieces),
         **({"tokenizer": "tokenizer.model"} if args.units == "pieces" else {}),
         "head_labels": {**{f"ctc_{layer}": pieces + [""] for layer in INTER_LAYERS},
                         "phones": list(BASE_PHONES) + [""]}}, indent=1))

    # batch composition is fixed by length; each epoch only shuffles the batch order
    train_lengths = [len(u.wave) for u in train]
    n_batches = len(batches(train_lengths, args.batch_seconds * RATE, 32, args.seed))
    blank, phone_blank = len(pieces), len(BASE_PHONES)
    while step < args.steps and (time.time() - started) / 60 < args.minutes:
        epoch, position = divmod(step, n_batches)
        order = batches(train_lengths, args.batch_seconds * RATE, 32, args.seed + epoch)
        batch = [train[i] for i in order[position]]
        rng = np.random.default_rng(args.seed * 1_000_003 + step)
        waves = [augment(u.wave.astype(np.float32) / 32768, rng) for u in batch]
        lengths = torch.tensor([len(w) for w in waves])
        padded = torch.zeros(len(waves), int(lengths.max()))
        for row, wave in enumerate(waves):
            padded[row, : len(wave)] = torch.from_numpy(wave)
        # stage 1: lower pretrained layers and feedback frozen, so random new heads cannot
        # drag the pretrained features around; stage 2: all weights learn
        frozen = step < args.freeze_steps
        for param in groups[0] + groups[2]:
            param.requires_grad_(not frozen)
        network.train()
        with torch.no_grad():
            feats, feat_lengths = frontend(padded.to(device), lengths.to(device))
            spec_augment(feats, feat_lengths, rng)
        out = network(feats, feat_lengths)
        final = ctc(out.logits, out.lengths, [targets[u.utt_id] for u in batch], blank)
        if args.aligned == 0:
            aligned = aligned_inter = torch.zeros(())
        else:
            aligned, aligned_inter = frame_losses(
                out, captured["epilog"], char_head, batch, piece_strings, blank, char_index,
                args.blank_weight)
        inter = torch.stack([ctc(out.heads[f"ctc_{layer}"], out.lengths,
                                 [targets[u.utt_id] for u in batch], blank)
                             for layer in INTER_LAYERS]).mean()
        phone = ctc(out.heads["phones"], out.lengths, [phones[u.utt_id] for u in batch],
                    phone_blank)
        ctc_on = float(step >= args.ctc_start)  # frame loss alone first: no blank plateau
        loss = ((1 - args.inter) * (ctc_on * final + args.aligned * aligned)
                + args.inter * (inter + args.aligned * aligned_inter) + args.phone * phone)
        decay = 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.steps))) * 0.9 + 0.1
        head_warmup = min(1.0, (step + 1) / args.warmup)
        body_warmup = min(1.0, max(0, step + 1 - args.freeze_steps) / args.warmup)
        for group, base_lr, warm in zip(optimizer.param_groups, base_lrs,
                                        (body_warmup, head_warmup, body_warmup, head_warmup,
                                         head_warmup)):
            group["lr"] = base_lr * warm * decay
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 5.0)
        optimizer.step()
        step += 1
        print(f"step {step} loss {loss.item():.3f} aligned {aligned.item():.3f} "
              f"final {final.item():.3f} inter "
              f"{inter.item():.3f} phone {phone.item():.3f} batch {len(batch)} "
              f"{time.time() - started:.0f}s", flush=True)
        log(f"{step}\t{loss.item():.4f}\t{final.item():.4f}\t{inter.item():.4f}\t"
            f"{phone.item():.4f}\t{time.time() - started:.0f}")
        if step % args.save_every == 0 or step == args.steps:
            torch.save({"network": network.state_dict(), "optimizer": optimizer.state_dict(),
                        "step": step}, checkpoint.with_suffix(".tmp"))
            checkpoint.with_suffix(".tmp").replace(checkpoint)
        if step % args.eval_every == 0 or step == args.steps:
            network.eval()
            hyps, refs = [], []
            with torch.no_grad():
                for u in valid:
                    wave = torch.from_numpy(u.wave.astype(np.float32) / 32768)[None]
                    f, n = frontend(wave.to(device), torch.tensor([wave.shape[1]]).to(device))
                    o = network(f, n)
                    hyps.append(greedy(o.logits[0], int(o.lengths[0]), pieces))
                    refs.append(u.text)
            score = wer(refs, hyps)
            print(f"step {step} validation WER {100 * score:.1f}", flush=True)
            log(f"{step}\tvalid_wer\t{score:.4f}")
    # final checkpoint whatever stopped the loop
    torch.save({"network": network.state_dict(), "optimizer": optimizer.state_dict(),
                "step": step}, checkpoint.with_suffix(".tmp"))
    checkpoint.with_suffix(".tmp").replace(checkpoint)
    sys.exit(0)


if __name__ == "__main__":
    main()
