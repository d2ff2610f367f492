"""Evaluation sets on disk: VoxPopuli ASR folders and Kaldi-style lists, plus entity lists.

>>> utterances = load_dataset("/data/speechocean762", split="test")  # doctest: +SKIP
>>> utterances[0]                                                   # doctest: +SKIP
Utterance(id='000030012', audio=PosixPath('/data/speechocean762/audio/SPEAKER0003/000030012.ogg'),
          text='MARK IS GOING TO SEE ELEPHANT', normalized_text='mark is going to see elephant',
          speaker='0003')
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .metrics import normalize_text
from .readers import read_lines

OnMissingAudio = Literal["raise", "skip"]

# Where VoxPopuli audio may lie, relative to the folder of asr_{split}.tsv, tried in order.
_VOXPOPULI_AUDIO = ("{year}/{id}.ogg", "{id}.wav", "{id}.flac", "{id}.ogg")
_VOXPOPULI_COLUMNS = ("id", "raw_text", "normalized_text")  # required; speaker_id optional


@dataclass(frozen=True)
class Utterance:
    """One utterance of an evaluation set.

    >>> Utterance("u1", Path("u1.wav"), "Hello, World!", "hello world", "spk1")  # doctest: +SKIP
    """

    id: str  # the utterance id, unique in its set
    audio: Path  # the audio file, checked to exist when the set was read
    text: str  # the transcript as the set gives it (cased, punctuated where the set is)
    normalized_text: str  # the set's normalised transcript, or normalize_text(text) joined
    speaker: str | None = None  # the speaker id, where the set gives one


def load_dataset(path: str | Path, split: str = "test",
                 on_missing_audio: OnMissingAudio = "raise") -> list[Utterance]:
    """Read one split of an evaluation set, detecting its layout, in file order.

    Layouts, tried in this order:

    - VoxPopuli ASR: ``{path}/asr_{split}.tsv`` (tab-separated, unquoted, with a header
      naming at least ``id raw_text normalized_text``; ``speaker_id`` is used when present).
      Audio is looked for at ``{year}/{id}.ogg`` (year = the first 4 characters of the id),
      then ``{id}.wav``, ``{id}.flac``, ``{id}.ogg``, all beside the TSV.
    - Kaldi: ``{path}/{split}/text`` + ``{path}/{split}/wav.scp``, or ``{path}/text`` +
      ``{path}/wav.scp``; ``utt2spk`` beside them gives speakers when present. Relative
      ``wav.scp`` paths are resolved against the folder holding ``wav.scp``, then against
      its parent (the dataset root in the ``{root}/{split}/wav.scp`` layout); the first
      that exists wins. Utterances of ``text`` must all be in ``wav.scp``.

    Args:
        path: the dataset folder.
        split: the split name, e.g. ``"test"``, ``"dev"``.
        on_missing_audio: ``"raise"`` (default) raises ``FileNotFoundError`` naming the
            utterance and the paths tried; ``"skip"`` leaves such utterances out and warns
            once with their number.

    Raises:
        ValueError: no known layout in ``path`` (the message lists the expected files), a
            malformed line (named by file and line number), a duplicate id, a ``wav.scp``
            command (``... |``) or a ``segments`` file (neither is supported).
        FileNotFoundError: an utterance's audio is missing and ``on_missing_audio="raise"``.
    """
    if on_missing_audio not in ("raise", "skip"):
        raise ValueError(f"on_missing_audio={on_missing_audio!r}: expected 'raise' or 'skip'")
    folder = Path(path)
    if (folder / f"asr_{split}.tsv").is_file():
        return _read_voxpopuli(folder / f"asr_{split}.tsv", on_missing_audio)
    for kaldi in (folder / split, folder):
        if (kaldi / "text").is_file() and (kaldi / "wav.scp").is_file():
            return _read_kaldi(kaldi, on_missing_audio)
    raise ValueError(
        f"{folder}: no {split!r} split found; expected asr_{split}.tsv (VoxPopuli), "
        f"{split}/text + {split}/wav.scp or text + wav.scp (Kaldi)"
        + ("" if folder.is_dir() else f" ({folder} is not a folder)"))


def read_entities_per_utt(path: str | Path) -> dict[str, list[str]]:
    """Read per-utterance entity lists: ``id<TAB>entity|entity|...`` lines.

    Blank lines and lines starting with ``#`` are skipped; entities are stripped of
    surrounding spaces; ``id<TAB>`` with nothing after it gives an empty list.

    >>> read_entities_per_utt("entities.tsv")  # doctest: +SKIP
    {'20180110-0900-PLENARY-3_en_12': ['Juncker', 'European Central Bank']}

    Raises:
        ValueError: a line without a tab, an empty id, an empty entity (``a||b``) or a
            repeated id, named by file and line number.
    """
    lists: dict[str, list[str]] = {}
    for where, line in read_lines(path, "entities-per-utterance file"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        utt, tab, rest = line.partition("\t")
        utt = utt.strip()
        if not tab or not utt:
            raise ValueError(f"{where}: expected 'id<TAB>entity|entity...', got {line!r}")
        entities = [e.strip() for e in rest.split("|")] if rest.strip() else []
        if any(not e for e in entities):
            raise ValueError(f"{where}: empty entity in {rest!r} (entities are '|'-separated)")
        if utt in lists:
            raise ValueError(f"{where}: utterance {utt!r} listed twice")
        lists[utt] = entities
    return lists


def _lines(path: Path) -> Iterator[tuple[str, str]]:
    """``("file:line", line)`` pairs of a dataset list, line ends removed."""
    return read_lines(path, "dataset list")


def _read_voxpopuli(tsv: Path, on_missing_audio: OnMissingAudio) -> list[Utterance]:
    lines = _lines(tsv)
    header = next(lines, None)
    if header is None:
        raise ValueError(f"{tsv}: empty file, expected a header line")
    columns = header[1].split("\t")
    missing = [c for c in _VOXPOPULI_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"{header[0]}: header {columns} lacks the columns {missing}")
    at = {name: columns.index(name) for name in (*_VOXPOPULI_COLUMNS, "speaker_id")
          if name in columns}

    rows: list[list[str]] = []
    seen: set[str] = set()
    for where, line in lines:  # the whole file is checked before any audio is looked for
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(columns):
            raise ValueError(f"{where}: {len(fields)} tab-separated fields, the header has "
                             f"{len(columns)}")
        utt = fields[at["id"]]
        if not utt:
            raise ValueError(f"{where}: empty id")
        if utt in seen:
            raise ValueError(f"{where}: utterance {utt!r} listed twice")
        seen.add(utt)
        rows.append(fields)

    folder = tsv.parent
    utterances: list[Utterance] = []
    skipped: list[str] = []
    for fields in rows:
        utt = fields[at["id"]]
        tried = [folder / p.format(year=utt[:4], id=utt) for p in _VOXPOPULI_AUDIO]
        audio = next((p for p in tried if p.is_file()), None)
        if audio is None:
            _missing_audio(utt, str(tsv), tried, on_missing_audio, skipped)
            continue
        speaker = fields[at["speaker_id"]] if "speaker_id" in at else ""
        utterances.append(Utterance(utt, audio, fields[at["raw_text"]],
                                    fields[at["normalized_text"]], speaker or None))
    _warn_skipped(skipped, folder)
    return utterances


def _read_kaldi(folder: Path, on_missing_audio: OnMissingAudio) -> list[Utterance]:
    if (folder / "segments").exists():
        raise ValueError(f"{folder / 'segments'}: segmented recordings are not supported; "
                         "cut the audio per utterance first")
    texts = _read_table(folder / "text", allow_empty_value=True)
    wavs = _read_table(folder / "wav.scp", allow_empty_value=False)
    speakers = (_read_table(folder / "utt2spk", allow_empty_value=False)
                if (folder / "utt2spk").is_file() else {})

    for utt in texts:  # every entry is checked before any audio is looked for
        if utt not in wavs:
            raise ValueError(f"{folder / 'wav.scp'}: no entry for utterance {utt!r} of "
                             f"{folder / 'text'}")
        entry, where = wavs[utt]
        if entry.endswith("|"):
            raise ValueError(f"{where}: {entry!r} is a command; only file paths are supported")

    utterances: list[Utterance] = []
    skipped: list[str] = []
    for utt, (text, _) in texts.items():
        relative = Path(wavs[utt][0])
        tried = ([relative] if relative.is_absolute()
                 else [folder / relative, folder.parent / relative])
        audio = next((p for p in tried if p.is_file()), None)
        if audio is None:
            _missing_audio(utt, wavs[utt][1], tried, on_missing_audio, skipped)
            continue
        speaker = speakers[utt][0] if utt in speakers else None
        utterances.append(Utterance(utt, audio, text, " ".join(normalize_text(text)), speaker))
    _warn_skipped(skipped, folder)
    return utterances


def _read_table(path: Path, allow_empty_value: bool) -> dict[str, tuple[str, str]]:
    """A Kaldi table: ``key value...`` lines (whitespace after the key) -> key -> (value,
    "file:line")."""
    table: dict[str, tuple[str, str]] = {}
    for where, line in _lines(path):
        if not line.strip():
            continue
        key, *rest = line.strip().split(maxsplit=1)
        value = rest[0].strip() if rest else ""
        if not value and not allow_empty_value:
            raise ValueError(f"{where}: expected '<id> <value>', got {line!r}")
        if key in table:
            raise ValueError(f"{where}: {key!r} listed twice")
        table[key] = (value, where)
    return table


def _missing_audio(utt: str, where: str, tried: list[Path], on_missing_audio: OnMissingAudio,
                   skipped: list[str]) -> None:
    if on_missing_audio == "raise":
        raise FileNotFoundError(f"{where}: no audio for utterance {utt!r}; tried "
                                + ", ".join(str(p) for p in tried))
    skipped.append(utt)


def _warn_skipped(skipped: list[str], folder: Path) -> None:
    if skipped:
        warnings.warn(f"{folder}: skipped {len(skipped)} utterances whose audio is missing "
                      f"(first: {skipped[0]!r})", stacklevel=4)
