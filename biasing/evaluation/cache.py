"""On-disk cache of model outputs, so that an evaluation runs the acoustic model once.

Entries live in ``FOLDER/<model fingerprint>/<audio hash>.npz``: the model's fingerprint
(``model.fingerprint``, which changes with its weights and configuration) and the SHA-1 of
the audio file's bytes, so an edited file or a retrained model never reads a stale entry.
An entry holds the log-probabilities, the audio duration, the auxiliary heads and the
intermediate layers (float16, for the contextual adapter) that were asked for. Writes are atomic (a temporary file renamed into place), so an interrupted or
failed write never leaves a truncated entry; an unreadable entry is reported with its path
(a ``RuntimeWarning``) and computed again.
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from ..models import AcousticModel, ModelOutput
from ..paths import atomic_write, cache_root, ensure_folder

__all__ = ["OutputCache", "default_cache_dir"]

_HEAD = "head:"  # prefix of a head's array in an entry
_HIDDEN = "hidden:"  # prefix of an intermediate layer's array (float16) in an entry


def default_cache_dir() -> Path:
    """``cache_root() / "logprobs"``."""
    return cache_root() / "logprobs"


class OutputCache:
    """Model outputs of one model, keyed by audio content.

    Args:
        folder: the cache's root folder (one subfolder per model).
        fingerprint: the model's fingerprint (see :meth:`for_model`).
    """

    def __init__(self, folder: str | Path, fingerprint: str) -> None:
        if not fingerprint or any(c in fingerprint for c in "/\\") or fingerprint in (".", ".."):
            raise ValueError(f"a model fingerprint must be a plain name, got {fingerprint!r}")
        self.folder = ensure_folder(Path(folder) / fingerprint, "model output cache")

    @classmethod
    def for_model(cls, folder: str | Path, model: AcousticModel) -> OutputCache | None:
        """The cache of ``model``'s outputs, or None when the model has no ``fingerprint``."""
        fingerprint = getattr(model, "fingerprint", None)
        return None if fingerprint is None else cls(folder, str(fingerprint))

    def entry(self, audio: str | Path) -> Path:
        """Where the entry of the audio file ``audio`` lives (reads the file to hash it)."""
        return self.folder / f"{hashlib.sha1(Path(audio).read_bytes()).hexdigest()}.npz"

    def load(self, path: Path, heads: Collection[str] = (), layers: Collection[int] = (),
             ) -> tuple[ModelOutput, float] | None:
        """(output, audio seconds) stored at ``path`` (an :meth:`entry`), when it is there
        with every head in ``heads`` and every layer in ``layers``."""
        if not path.is_file():
            return None
        try:
            with np.load(path) as entry:
                if not all(_HEAD + name in entry.files for name in heads) or \
                        not all(f"{_HIDDEN}{k}" in entry.files for k in layers):
                    return None
                output = ModelOutput(logprobs=entry["logprobs"],
                                     heads={name: entry[_HEAD + name] for name in heads},
                                     hidden={k: entry[f"{_HIDDEN}{k}"].astype(np.float32)
                                             for k in layers})
                return output, float(entry["seconds"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            warnings.warn(f"model output cache entry {path} is unreadable ({err}); removed it "
                          "and computing it again", RuntimeWarning, stacklevel=2)
            path.unlink(missing_ok=True)
            return None

    def save(self, path: Path, output: ModelOutput, seconds: float,
             heads: Collection[str] = (), layers: Collection[int] = ()) -> None:
        """Store at ``path`` (an :meth:`entry`) the log-probabilities, ``seconds``, the
        heads named in ``heads`` and the layers in ``layers`` (as float16)."""
        arrays: dict[str, Any] = {"logprobs": output.logprobs,  # Any: savez's **kwds stubs
                                         "seconds": np.asarray(seconds, dtype=np.float64)}
        arrays.update({_HEAD + name: output.heads[name] for name in heads})
        arrays.update({f"{_HIDDEN}{k}": output.hidden[k].astype(np.float16) for k in layers})
        with atomic_write(path) as stream:
            np.savez(stream, **arrays)
