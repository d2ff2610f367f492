"""Corpus transcription: a manifest of audio files (each row with its own entity list, or
one list for all) transcribed into JSONL or Parquet results, resumably, in this process or
on a Ray cluster (the ``ray`` extra).

The manifest is JSONL (``{"audio": PATH, "id": ..., "entities": [...] or "A|B"}`` per
line) or TSV (a header naming the columns ``audio``, ``id``, ``entities`` with entities
separated by ``|``; without a header the columns are ``audio`` and ``entities``). Relative
audio paths are taken from the manifest's folder; ``id`` defaults to the audio path as
written and must be unique.

Results go to ``OUTPUT/results.jsonl`` or Parquet parts (:mod:`.corpus_output`: one run
at a time, nothing opened through a symbolic link). A rerun with the same OUTPUT skips the
rows already there, so a killed run resumes where it stopped; a line cut short by the kill
is dropped and redone.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .corpus_output import OutputFormat, ResultWriter
from .entities import EntityList
from .models import trim_memory
from .raypool import ROWS_PER_CALL, RayOptions, ray_map
from .readers import read_text

PROGRESS_S = 30.0  # seconds between progress lines


@dataclass(frozen=True)
class CorpusRow:
    """One manifest row."""

    id: str
    audio: str  # path, resolved against the manifest's folder
    entities: tuple[str, ...] | None  # its own list; None: the global list only


def read_manifest(path: str | os.PathLike[str]) -> list[CorpusRow]:
    """The rows of a JSONL or TSV manifest (see the module's documentation).

    Raises:
        ValueError: a malformed line, a row without audio, a duplicate id; the message names
            the file and line.
    """
    manifest = Path(path)
    text = read_text(manifest, "manifest")
    folder = manifest.parent
    is_json = manifest.suffix.lower() in (".jsonl", ".json") or text.lstrip().startswith("{")
    rows = list(_json_rows(text, manifest) if is_json else _tsv_rows(text, manifest))
    seen: dict[str, int] = {}
    out = []
    for line, row_id, audio, entities in rows:
        if row_id in seen:
            raise ValueError(f"{manifest}:{line}: id {row_id!r} repeats line {seen[row_id]}; "
                             f"ids must be unique (give an 'id' column)")
        seen[row_id] = line
        resolved = audio if os.path.isabs(audio) else str(folder / audio)
        out.append(CorpusRow(row_id, resolved, entities))
    if not out:
        raise ValueError(f"{manifest}: no rows")
    return out


def _json_rows(text: str, manifest: Path) -> Iterator[tuple[int, str, str, Any]]:
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{manifest}:{n}: not valid JSON: {err.msg}") from None
        if not isinstance(item, dict):
            raise ValueError(  # noqa: TRY004 - the file is wrong, not an argument
                f"{manifest}:{n}: expected a JSON object, got {line[:60]!r}")
        audio = item.get("audio")
        if not isinstance(audio, str) or not audio.strip():
            raise ValueError(f"{manifest}:{n}: no 'audio' path (expected "
                             f"{{\"audio\": PATH, \"entities\": [...]}})")
        row_id = item.get("id", audio)
        if not isinstance(row_id, (str, int)):
            raise ValueError(  # noqa: TRY004 - the file is wrong, not an argument
                f"{manifest}:{n}: id {row_id!r} is not a string")
        yield n, str(row_id), audio, _entities(item.get("entities"), manifest, n)


def _tsv_rows(text: str, manifest: Path) -> Iterator[tuple[int, str, str, Any]]:
    lines = list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))
    header = ["audio", "entities"]
    first = 0
    if lines and "audio" in [c.strip().lower() for c in lines[0]]:
        header = [c.strip().lower() for c in lines[0]]
        first = 1
        unknown = sorted(set(header) - {"audio", "id", "entities"})
        if unknown:
            raise ValueError(f"{manifest}:1: unknown column(s) {', '.join(unknown)}; expected "
                             f"audio, id, entities")
    for n, cells in enumerate(lines[first:], first + 1):
        if not any(c.strip() for c in cells) or cells[0].startswith("#"):
            continue
        if len(cells) > len(header):
            raise ValueError(f"{manifest}:{n}: {len(cells)} columns, expected at most "
                             f"{len(header)} ({', '.join(header)})")
        row = dict(zip(header, cells))
        audio = row.get("audio", "").strip()
        if not audio:
            raise ValueError(f"{manifest}:{n}: no audio path")
        yield n, row.get("id", "").strip() or audio, audio, \
            _entities(row.get("entities"), manifest, n)


def _entities(value: Any, manifest: Path, line: int) -> tuple[str, ...] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return tuple(e.strip() for e in value.split("|") if e.strip())
    if isinstance(value, list) and all(isinstance(e, str) for e in value):
        return tuple(value)
    raise ValueError(f"{manifest}:{line}: entities must be a list of strings or 'A|B|C', "
                     f"got {json.dumps(value)[:60]}")


# ------------------------------------------------------------------ transcribing rows

class RowTranscriber:
    """Transcribes batches of manifest rows: one :class:`biasing.Transcriber`, each row
    with its own list plus the global one. The same code runs in this process and in
    each Ray actor (as a Ray Data callable class)."""

    def __init__(self, arguments: dict[str, Any], entities: Sequence[str] = (),
                 threads: int | None = None) -> None:
        from .transcribe import Transcriber

        self.transcriber = Transcriber(threads=threads, **arguments)
        self.entities = tuple(entities)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        ids, audio, lists = list(batch["id"]), list(batch["audio"]), list(batch["entities"])
        out: dict[str, list[Any]] = {"id": [], "result": []}
        groups: dict[str, list[int]] = {}
        for i, encoded in enumerate(lists):  # rows sharing a list share forward batches
            groups.setdefault(str(encoded), []).append(i)
        for encoded, members in groups.items():
            own = json.loads(encoded) or []
            problem = ""
            results: list[Any]
            try:
                entities = EntityList([*self.entities, *own], on_unrepresentable="skip")
                results = self.transcriber.transcribe([str(audio[i]) for i in members],
                                                      entities, on_error="report")
            except (ValueError, TypeError) as err:  # a bad list: every row of it fails
                results = [None] * len(members)
                problem = f"entities: {err}"
            for i, result in zip(members, results):
                out["id"].append(str(ids[i]))
                record = {"error": problem} if result is None else _record(result)
                out["result"].append(json.dumps({"id": str(ids[i]), "audio": str(audio[i]),
                                                 **record}, ensure_ascii=False))
        trim_memory()  # recordings of every length fragment the heap
        return out


def _record(result: Any) -> dict[str, Any]:
    if result.error is not None:
        return {"error": result.error}
    return {"text": result.text, "duration_s": round(result.duration_s, 3),
            "words": [{"word": w.word, "start_s": round(w.start_s, 2),
                       "end_s": round(w.end_s, 2)} for w in result.words],
            "entities": [{"entity": h.entity, "start_s": round(h.start_s, 2),
                          "end_s": round(h.end_s, 2), "technique": h.technique}
                         for h in result.entities]}


def _batches(rows: Sequence[CorpusRow], size: int) -> Iterator[dict[str, list[Any]]]:
    for start in range(0, len(rows), size):
        chunk = rows[start:start + size]
        yield {"id": [r.id for r in chunk], "audio": [r.audio for r in chunk],
               "entities": [json.dumps(list(r.entities or ())) for r in chunk]}


# ------------------------------------------------------------------------ the driver

@dataclass(frozen=True)
class CorpusSummary:
    total: int  # rows in the manifest
    skipped: int  # already in the output
    written: int  # written now
    failed: int  # of those, rows whose result is an error


def transcribe_corpus(rows: Sequence[CorpusRow], output: str | os.PathLike[str],
                      arguments: dict[str, Any], entities: Sequence[str] = (),
                      output_format: OutputFormat = "jsonl", ray: RayOptions | None = None,
                      threads: int | None = None,
                      log: Callable[[str], None] = lambda line: None) -> CorpusSummary:
    """Transcribe ``rows`` into ``output``, skipping rows already there.

    The folder is checked and locked (:class:`ResultWriter`) before a model loads or Ray
    starts, and stays locked until the run ends.

    Args:
        rows: the manifest (:func:`read_manifest`).
        output: results folder (not a symbolic link; see :class:`ResultWriter`).
        arguments: keyword arguments of each :class:`biasing.Transcriber` (model, decoder).
        entities: a list added to every row's own.
        ray: run on Ray with these options; None transcribes in this process.
        threads: torch threads in this process (``ray=None``).
        log: takes a line at the start and every ``PROGRESS_S`` seconds.

    Raises:
        ValueError, RuntimeError: the folder cannot be used (see :class:`ResultWriter`).
    """
    with contextlib.closing(ResultWriter(output, output_format)) as writer:  # no model yet
        done = writer.done()
        todo = [r for r in rows if r.id not in done]
        log(f"{len(rows)} rows, {len(rows) - len(todo)} already in {output}, "
            f"{len(todo)} to do")
        written = failed = 0
        report = time.monotonic() + PROGRESS_S
        results = _run_ray(todo, arguments, entities, ray, log) if ray is not None \
            else _run_local(todo, arguments, entities, threads)
        with contextlib.closing(results):  # stops a Ray run on an error here too
            for encoded in results:
                record = json.loads(encoded)
                writer.write(record)
                written += 1
                failed += "error" in record
                if time.monotonic() >= report:
                    log(f"{written}/{len(todo)} rows ({failed} failed)")
                    report = time.monotonic() + PROGRESS_S
    return CorpusSummary(len(rows), len(rows) - len(todo), written, failed)


def _run_local(rows: Sequence[CorpusRow], arguments: dict[str, Any], entities: Sequence[str],
               threads: int | None) -> Generator[str, None, None]:
    if not rows:
        return
    worker = RowTranscriber(arguments, entities, threads)
    for batch in _batches(rows, ROWS_PER_CALL):
        yield from worker(batch)["result"]


def _run_ray(rows: Sequence[CorpusRow], arguments: dict[str, Any], entities: Sequence[str],
             options: RayOptions, log: Callable[[str], None]) -> Generator[str, None, None]:
    actor_arguments = dict(arguments, device="cuda") if options.gpus_per_actor else arguments
    items = [{"id": r.id, "audio": r.audio, "entities": json.dumps(list(r.entities or ()))}
             for r in rows]
    for row in ray_map(items, RowTranscriber, {"arguments": actor_arguments,
                                               "entities": tuple(entities),
                                               "threads": options.threads_per_actor},
                       options, log):
        yield str(row["result"])
