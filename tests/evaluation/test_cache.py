"""The model output cache: keyed by model fingerprint and audio bytes, atomic, self-healing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biasing.evaluation import OutputCache
from biasing.models import ModelOutput

OUTPUT = ModelOutput(np.log(np.full((4, 3), 1 / 3, np.float32)),
                     heads={"phones": np.zeros((4, 2), np.float32)})


@pytest.fixture()
def audio(tmp_path: Path) -> Path:
    path = tmp_path / "a.wav"
    path.write_bytes(b"RIFF first version")
    return path


def test_round_trip_with_heads(tmp_path: Path, audio: Path) -> None:
    cache = OutputCache(tmp_path / "cache", "model-a")
    entry = cache.entry(audio)
    assert cache.load(entry) is None
    cache.save(entry, OUTPUT, 1.5, heads=["phones"])
    output, seconds = cache.load(entry, ["phones"])
    assert seconds == 1.5
    np.testing.assert_array_equal(output.logprobs, OUTPUT.logprobs)
    np.testing.assert_array_equal(output.heads["phones"], OUTPUT.heads["phones"])
    assert cache.load(entry, ["ctc_5"]) is None  # a head it does not hold: compute again


def test_keys_follow_content_not_names(tmp_path: Path, audio: Path) -> None:
    cache = OutputCache(tmp_path / "cache", "model-a")
    before = cache.entry(audio)
    audio.write_bytes(b"RIFF edited, same name")
    assert cache.entry(audio) != before
    assert OutputCache(tmp_path / "cache", "model-b").entry(audio).parent.name == "model-b"
    with pytest.raises(ValueError, match="plain name"):
        OutputCache(tmp_path / "cache", "../escape")


def test_a_corrupt_entry_is_reported_with_its_path_and_recomputed(tmp_path: Path,
                                                                  audio: Path) -> None:
    cache = OutputCache(tmp_path / "cache", "model-a")
    entry = cache.entry(audio)
    cache.save(entry, OUTPUT, 1.0)
    entry.write_bytes(entry.read_bytes()[:50])  # truncated, as after a kill or a full disk
    with pytest.warns(RuntimeWarning, match=f"{entry}.*unreadable"):
        assert cache.load(entry) is None
    cache.save(entry, OUTPUT, 1.0)
    assert cache.load(entry) is not None


def test_a_failed_write_leaves_no_entry(tmp_path: Path, audio: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cache = OutputCache(tmp_path / "cache", "model-a")
    entry = cache.entry(audio)

    def fail(stream, **arrays):
        stream.write(b"PK partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError, match="No space"):
        cache.save(entry, OUTPUT, 1.0)
    assert list(entry.parent.iterdir()) == []  # neither the entry nor a temporary file


def test_models_without_a_fingerprint_are_not_cached(tmp_path: Path) -> None:
    class Bare:
        sample_rate = 16000
    assert OutputCache.for_model(tmp_path, Bare()) is None  # type: ignore[arg-type]
