"""Random bytes into the readers of user files: they parse or raise a ValueError (or
FileNotFoundError for audio a list names) whose message names the file; nothing else."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biasing import EntityList
from biasing.datasets import load_dataset, read_entities_per_utt

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# bytes that are mostly text, with tabs, line ends and the odd invalid byte
_TEXTY = st.lists(st.one_of(st.sampled_from([b"\t", b"\n", b"\r\n", b"#", b"|", b" ", b"0.5",
                                             b"-1", b"nan", b"\xff", b"\xc3", b"\x00"]),
                            st.text(max_size=8).map(str.encode)), max_size=40).map(b"".join)


def _write(folder: str, name: str, data: bytes) -> Path:
    path = Path(folder) / name
    path.write_bytes(data)
    return path


def _entities(path: Path) -> None:
    assert all(e.text and e.weight > 0 for e in EntityList.from_file(path))


def _per_utterance(path: Path) -> None:
    lists = read_entities_per_utt(path)
    assert all(utt and all(lists[utt]) for utt in lists)


@pytest.mark.parametrize("name, read", [("entities.txt", _entities),
                                        ("per_utt.tsv", _per_utterance)])
@FUZZ
@given(data=st.one_of(st.binary(max_size=300), _TEXTY))
def test_list_files(name: str, read: Callable[[Path], None], data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, name, data)
        try:
            read(path)
        except ValueError as err:  # names the file (or, for a list too big, the entities)
            assert str(path) in str(err) or "entities" in str(err)


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), _TEXTY),
       header=st.booleans(), kaldi=st.booleans())
def test_dataset_lists(data: bytes, header: bool, kaldi: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        if kaldi:
            _write(folder, "text", data)
            path = _write(folder, "wav.scp", data)
        else:
            prefix = b"id\traw_text\tnormalized_text\n" if header else b""
            path = _write(folder, "asr_test.tsv", prefix + data)
        try:
            utterances = load_dataset(folder, "test")
        except (ValueError, FileNotFoundError) as err:
            assert folder in str(err) or str(path) in str(err)
            return
        assert all(u.id and u.audio.is_file() for u in utterances)
