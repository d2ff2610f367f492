"""The results folder of a corpus run: which rows are done, and appending new ones.

Results go to ``OUTPUT/results.jsonl`` (one JSON object per row, flushed as each arrives)
or ``OUTPUT/part-NNNNN.parquet`` (written under a temporary name and renamed, every
``PARQUET_ROWS`` rows). One run at a time writes a folder (an exclusive lock on
``OUTPUT/.lock``, which records its pid and which the system releases however the process
dies), and no file there is opened through a symbolic link: every one is opened relative
to the folder's descriptor with ``O_NOFOLLOW``, and the folder itself must not be a link.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any, Literal

from .paths import ensure_folder

__all__ = ["LOCK_FILE", "PARQUET_ROWS", "RESULTS_JSONL", "OutputFormat", "ResultWriter"]

RESULTS_JSONL = "results.jsonl"
LOCK_FILE = ".lock"  # locked by the run writing the folder; holds its pid
PARQUET_ROWS = 256  # rows per Parquet part file
OutputFormat = Literal["jsonl", "parquet"]
class ResultWriter:
    """Results in ``folder``: which rows are done, and appending new ones.

    The writer holds the folder for this process: an exclusive lock on ``folder/.lock``
    (which records the pid), released by :meth:`close` or, when the process dies however
    it dies, by the system. A second run into the same folder is refused instead of writing
    every row twice. Nothing in the folder is opened through a symbolic link, and the folder
    itself must not be one (the folders above it may be).

    Raises:
        ValueError: an unknown ``output_format``; ``folder`` is a symbolic link, cannot be
            made or written; a file the run uses there is a link or not a plain file.
        RuntimeError: another run holds the folder; the message gives its pid.
    """

    def __init__(self, folder: str | os.PathLike[str], output_format: OutputFormat = "jsonl"
                 ) -> None:
        if output_format not in ("jsonl", "parquet"):
            raise ValueError(f"output format must be jsonl or parquet, got {output_format!r}")
        self.folder = _make_folder(Path(folder).expanduser())
        self.format = output_format
        self._pending: list[dict[str, Any]] = []
        self._dir = _open_folder(self.folder)
        self._lock = self._results = -1
        try:
            self._lock = _lock(self._dir, self.folder)
            _check_writable(self._dir, self.folder)
            if output_format == "jsonl":
                self._results = _open_in(self._dir, self.folder, RESULTS_JSONL,
                                         os.O_RDWR | os.O_CREAT | os.O_APPEND)
            else:
                _remove_temporary_parts(self._dir)
        except BaseException:
            self._release()
            raise

    def done(self) -> set[str]:
        """Ids already written (a line cut short by a kill is removed first)."""
        if self.format == "parquet":
            import pyarrow.parquet as pq

            found: set[str] = set()
            for name in sorted(n for n in os.listdir(self._dir) if _is_part(n)):
                with os.fdopen(_open_in(self._dir, self.folder, name, os.O_RDONLY),
                               "rb") as stream:
                    found.update(pq.read_table(stream, columns=["id"]).column("id")
                                 .to_pylist())
            return found
        data = _read_all(self._results)
        complete = data[:data.rfind(b"\n") + 1]
        if len(complete) != len(data):  # drop the partial last line
            os.ftruncate(self._results, len(complete))
        found = set()
        for line in complete.decode("utf-8", errors="replace").splitlines():
            try:
                found.add(str(json.loads(line)["id"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
        return found

    def write(self, result: dict[str, Any]) -> None:
        if self.format == "parquet":
            self._pending.append(result)
            if len(self._pending) >= PARQUET_ROWS:
                self._flush_parquet()
            return
        line = json.dumps(result, ensure_ascii=False) + "\n"
        _write_all(self._results, line.encode("utf-8"))

    def _flush_parquet(self) -> None:
        if not self._pending:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist([_flat(r) for r in self._pending])
        names = set(os.listdir(self._dir))
        number = sum(map(_is_part, names))
        while f"part-{number:05d}.parquet" in names:
            number += 1
        name = f"part-{number:05d}.parquet"
        # a dot first: Parquet readers of the folder skip it if a kill leaves it behind
        temporary = f".{name}.{secrets.token_hex(4)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            with os.fdopen(_open_in(self._dir, self.folder, temporary, flags), "wb") as out:
                pq.write_table(table, out)
            os.rename(temporary, name, src_dir_fd=self._dir, dst_dir_fd=self._dir)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=self._dir)
            raise
        self._pending = []

    def close(self) -> None:
        """Write the Parquet rows still pending and let the folder go (idempotent)."""
        try:
            if self.format == "parquet" and self._dir >= 0:
                self._flush_parquet()
        finally:
            self._release()

    def _release(self) -> None:
        for fd in (self._results, self._lock, self._dir):
            if fd >= 0:
                os.close(fd)
        self._results = self._lock = self._dir = -1


def _make_folder(folder: Path) -> Path:
    if folder.is_symlink():
        raise ValueError(f"the output folder {folder} is a symbolic link (to "
                         f"{os.readlink(folder)}); links in an output folder are not "
                         f"followed: give the folder it points to")
    return ensure_folder(folder, "--output folder")


def _open_folder(folder: Path) -> int:
    """A descriptor of ``folder``: the files in it are opened relative to it, so that a
    link put in place of the folder after the check is not followed either."""
    try:
        return os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        if folder.is_symlink():
            raise ValueError(f"the output folder {folder} is a symbolic link; links in an "
                             f"output folder are not followed") from None
        raise ValueError(f"cannot open the output folder {folder}: {err.strerror}") from None


def _open_in(directory: int, folder: Path, name: str, flags: int) -> int:
    """``name`` in the folder open with ``flags``, never through a link, and only if it is a
    plain file with no other name (a hard link would be written through as well)."""
    try:
        # O_NONBLOCK: a FIFO put there does not hang the run; plain files ignore it
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o644,
                     dir_fd=directory)
    except OSError as err:
        kind = _kind(directory, name)
        if kind is not None and stat.S_ISLNK(kind):
            raise ValueError(f"{folder / name} is a symbolic link; links in an output "
                             f"folder are not followed: remove it, or write elsewhere"
                             ) from None
        if kind is None and flags & os.O_CREAT:
            raise ValueError(f"cannot write in the output folder {folder}: "
                             f"{err.strerror}") from None
        raise ValueError(f"cannot open {folder / name}: {err.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        problem = "is not a plain file"
    elif info.st_nlink > 1:
        problem = f"has {info.st_nlink} hard links (writing it would change the others)"
    else:
        return fd
    os.close(fd)
    raise ValueError(f"{folder / name} {problem}: remove it, or write elsewhere")


def _kind(directory: int, name: str) -> int | None:
    """The ``st_mode`` of ``name`` itself (not of what a link points to); None: absent."""
    try:
        return os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode
    except OSError:
        return None


def _lock(directory: int, folder: Path) -> int:
    """Take the folder's lock (``flock``, so the system drops it when the process dies,
    even by SIGKILL) and record this pid in it."""
    import fcntl

    fd = _open_in(directory, folder, LOCK_FILE, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        pid = f" (pid {holder})" if holder.isdigit() else ""
        raise RuntimeError(f"another run{pid} is writing to {folder}: wait for it to "
                           f"end, or write elsewhere") from None
    except OSError as err:
        os.close(fd)
        raise ValueError(f"cannot lock {folder / LOCK_FILE}: {err.strerror}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


def _check_writable(directory: int, folder: Path) -> None:
    """Make and remove a file: a read-only folder is reported now, not after the model has
    loaded and the first rows ran."""
    probe = f".write-test.{os.getpid()}.{secrets.token_hex(4)}"
    os.close(_open_in(directory, folder, probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    os.unlink(probe, dir_fd=directory)


def _is_part(name: str) -> bool:
    return name.startswith("part-") and name.endswith(".parquet")


def _remove_temporary_parts(directory: int) -> None:
    """Part files a killed run left half written (this run holds the lock: none is being
    written); older versions named them ``part-N.parquet.X.tmp``."""
    for name in os.listdir(directory):
        if name.startswith((".part-", "part-")) and name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=directory)


def _read_all(fd: int) -> bytes:
    chunks, offset = [], 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _flat(result: dict[str, Any]) -> dict[str, Any]:
    """A Parquet row: words and entities as JSON text (their fields vary)."""
    return {**result, "words": json.dumps(result.get("words", [])),
            "entities": json.dumps(result.get("entities", []))}


