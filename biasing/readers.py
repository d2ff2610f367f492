"""Reading the files users give us: bounded, checked up front, and named in every error.

Every user file (entity lists, labels, dataset lists, configs, lexicons, sentences, logits,
audio) goes through :func:`check_file` first: it must exist and be a regular file (a folder,
FIFO or device is refused before anything is opened, so ``/dev/zero`` or a FIFO without a
writer cannot hang or exhaust memory) no larger than the cap for its kind (:data:`LIMITS`).
Text is read with :func:`read_text` (UTF-8, an error names the file, line and byte).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LIMITS", "check_file", "read_lines", "read_text"]

MiB = 1 << 20
# the largest file of each kind read (bytes); a larger one is refused with a message
LIMITS: dict[str, int] = {
    "entity file": 64 * MiB,  # 100,000 entities of at most 200 characters, with weights
    "labels file": 4 * MiB,
    "dataset list": 512 * MiB,  # asr_{split}.tsv, Kaldi text / wav.scp / utt2spk
    "entities-per-utterance file": 512 * MiB,
    "manifest": 512 * MiB,  # transcribe-corpus: a row per recording
    "model config": 16 * MiB,
    "adapter file": 256 * MiB,
    "lexicon file": 256 * MiB,
    "sentences file": 64 * MiB,
    "logits file": 4096 * MiB,
    "phones file": 4096 * MiB,  # phone posteriors (decode --phones)
    "audio file": 4096 * MiB,  # two hours of 16 kHz float32 is 460 MB
    "model weights": 8192 * MiB,
    "tokenizer model": 256 * MiB,
    "API key file": 64 * 1024,  # ctc-biasing serve: the bearer token
}


def check_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path, after checking that it is a regular file within the cap of
    ``what`` (a key of :data:`LIMITS`).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a folder, FIFO, device or socket; or larger than the cap.
    """
    file = Path(path)
    try:
        info = os.stat(file)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {file}") from None
    except OSError as err:
        raise ValueError(f"cannot read {what} {file}: {err.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{what} {file} is a folder, expected a file")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{what} {file} is not a regular file (a FIFO, device or socket): "
                         "give a file")
    cap = LIMITS[what]
    if info.st_size > cap:
        raise ValueError(f"{what} {file} is {info.st_size:,} bytes; at most {cap:,} are read "
                         f"({cap // MiB} MiB)")
    return file


def read_text(path: str | os.PathLike[str], what: str) -> str:
    """The UTF-8 text (a BOM is dropped) of a file checked by :func:`check_file`.

    Raises:
        FileNotFoundError, ValueError: as :func:`check_file`; or not UTF-8 (the message
            names the file, line and byte).
    """
    file = check_file(path, what)
    cap = LIMITS[what]
    with open(file, "rb") as stream:
        data = stream.read(cap + 1)
    if len(data) > cap:
        raise ValueError(f"{what} {file} grew past {cap:,} bytes while it was read")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ValueError(f"{file}:{line}: {what} is not valid UTF-8 (byte {data[err.start]:#04x}"
                         f" at offset {err.start}); save it as UTF-8") from None


def read_lines(path: str | os.PathLike[str], what: str) -> Iterator[tuple[str, str]]:
    """``("file:line", line)`` pairs of a text file split at ``\n`` (a ``\r`` before it is
    dropped; a final empty line is not a line)."""
    file = Path(path)
    lines = read_text(file, what).split("\n")
    if lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, 1):
        yield f"{file}:{number}", line.removesuffix("\r")
