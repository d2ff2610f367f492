"""One place for paths: the cache root, the development data, atomic writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from biasing.paths import atomic_write, cache_root, checkout_root, shared_root


def test_roots_honour_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CTC_BIASING_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CTC_BIASING_SHARED", str(tmp_path / "shared"))
    assert cache_root() == tmp_path / "cache"
    assert shared_root() == tmp_path / "shared"
    monkeypatch.delenv("CTC_BIASING_CACHE")
    monkeypatch.delenv("CTC_BIASING_SHARED")
    assert cache_root() == Path.home() / ".cache" / "ctc-biasing"
    assert shared_root() == checkout_root().parent / "shared"
    assert (checkout_root() / "biasing" / "paths.py").is_file()


def test_atomic_write_replaces_or_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "file.bin"
    with atomic_write(target) as stream:
        stream.write(b"first")
    assert target.read_bytes() == b"first"
    with pytest.raises(RuntimeError, match="killed"), atomic_write(target) as stream:
        stream.write(b"half of the sec")
        raise RuntimeError("killed half way")
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]
