"""Where ctc-biasing keeps its caches and finds the development data.

- :func:`cache_root`: ``$CTC_BIASING_CACHE``, else ``~/.cache/ctc-biasing``. Logprob caches,
  G2G tables, recipe runs and generated benchmark audio live below it.
- :func:`shared_root`: ``$CTC_BIASING_SHARED``, else ``../shared`` beside the source
  checkout: the development data (pretrained QuartzNet, speechocean762, Earnings-21 text)
  that tests, benchmarks and recipes use when it is there. Nothing here checks that it
  exists; callers skip or fail with a message that names the folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

CACHE_ENV = "CTC_BIASING_CACHE"
SHARED_ENV = "CTC_BIASING_SHARED"


def cache_root() -> Path:
    """``$CTC_BIASING_CACHE`` or ``~/.cache/ctc-biasing`` (``~`` expanded, not created)."""
    return Path(os.environ.get(CACHE_ENV) or "~/.cache/ctc-biasing").expanduser()


def checkout_root() -> Path:
    """The folder holding the ``biasing`` package: the repository root in a checkout."""
    return Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    """``$CTC_BIASING_SHARED`` or ``../shared`` next to the source checkout."""
    configured = os.environ.get(SHARED_ENV)
    if configured:
        return Path(configured).expanduser()
    return checkout_root().parent / "shared"


def ensure_folder(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a folder (created with its parents when missing).

    Raises:
        ValueError: ``path`` (or a parent) is a file; the message names it and ``what``.
    """
    folder = Path(path).expanduser()
    for part in (folder, *folder.parents):
        if part.exists() and not part.is_dir():
            raise ValueError(f"cannot use {folder} as the {what}: {part} is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot make {folder}, the {what}: {err.strerror}") from None
    return folder


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; rename it to ``path`` when
    the block ends without an error, delete it otherwise. Readers never see half a file, and
    a failed or killed write leaves at most a ``*.tmp`` file, never a truncated ``path``.
    """
    target = Path(path)
    ensure_folder(target.parent, f"folder of {target.name}")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` with :func:`atomic_write`."""
    with atomic_write(path) as stream:
        stream.write(text.encode("utf-8"))


def copy_atomic(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Copy the file ``source`` to ``target`` with :func:`atomic_write`."""
    with open(source, "rb") as stream, atomic_write(target) as out:
        shutil.copyfileobj(stream, out)
