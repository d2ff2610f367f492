"""``transcribe-corpus`` and ``decode`` under hostile input: a regression probe of every
refusal we know of, run through the command line as a user runs it, each with the one
outcome it must get: its exit code, a one-line error naming the problem, and the case's
folder as it was (no file lost, cut short or written through a link; nothing new but what
the row allows). Local and bounded in time: no model loads and no Ray starts, since every
refusal comes before either."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from conftest import CHAR_LABELS, char_logprobs, read_only

from biasing.cli import main

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = '{"audio": "a.wav"}\n'  # a valid row: the output folder is what is refused
PRECIOUS = b"keep me\na last line without its newline"  # a resumed run drops such a line


@dataclass
class Scene:
    """What a case's setup builds on."""

    folder: Path  # the case's own folder; all of it is compared before and after the run
    cleanup: contextlib.ExitStack  # undoes what outlives the run (a lock holder, chattr +i)
    names: dict[str, object] = field(default_factory=dict)  # filled into the expected text


Setup = Callable[[Scene], list[str]]


def _corpus(scene: Scene, manifest: str | bytes = MANIFEST) -> list[str]:
    path = scene.folder / "manifest.jsonl"
    path.write_bytes(manifest.encode() if isinstance(manifest, str) else manifest)
    return ["transcribe-corpus", str(path), "--output", str(scene.folder / "out"), "--no-ray"]


def _precious(scene: Scene) -> Path:
    """A file outside the output folder, for a link there to point at."""
    (scene.folder / "elsewhere").mkdir()
    path = scene.folder / "elsewhere" / "precious.txt"
    path.write_bytes(PRECIOUS)
    return path


def _linked_in_out(name: str, dangling: bool = False) -> Setup:
    def setup(scene: Scene) -> list[str]:
        (scene.folder / "out").mkdir()
        target = _precious(scene)
        if dangling:  # in a folder that exists: a followed link would make the file
            target = target.with_name("new.txt")
        (scene.folder / "out" / name).symlink_to(target)
        return _corpus(scene)

    return setup


def _out_linked_to_a_folder(scene: Scene) -> list[str]:
    (scene.folder / "real").mkdir()
    (scene.folder / "out").symlink_to(scene.folder / "real")
    return _corpus(scene)


def _held_by_another_process(scene: Scene) -> list[str]:
    """The library's own writer holds the folder in another process until its stdin closes
    (so it also goes when this process dies)."""
    hold = ("import sys; from biasing.corpus_output import ResultWriter; "
            "writer = ResultWriter(sys.argv[1]); print('locked', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(scene.folder / "out")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              cwd=ROOT)

    def release() -> None:
        holder.kill()
        holder.communicate(timeout=30)

    scene.cleanup.callback(release)
    assert holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"
    scene.names["pid"] = holder.pid
    return _corpus(scene)


def _read_only_out(scene: Scene) -> list[str]:
    (scene.folder / "out").mkdir()
    scene.cleanup.enter_context(read_only(scene.folder / "out"))
    return _corpus(scene)


def _decode(scene: Scene, logits: np.ndarray | None = None,
            labels: list[str] = CHAR_LABELS) -> list[str]:
    np.save(scene.folder / "x.npy", char_logprobs("we met") if logits is None else logits)
    (scene.folder / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    return ["decode", "--logits", str(scene.folder / "x.npy"),
            "--labels", str(scene.folder / "labels.txt")]


def _blank_first_labels_without_it(scene: Scene) -> list[str]:
    """The model's blank is column 0; the labels file lists the other labels only."""
    logits = char_logprobs("we met in fremont today")
    blank = CHAR_LABELS.index("")
    logits = np.concatenate([logits[:, [blank]], np.delete(logits, blank, axis=1)], axis=1)
    return _decode(scene, logits, [x for x in CHAR_LABELS if x])


def _nan_at_frame_3(scene: Scene) -> list[str]:
    logits = char_logprobs("we met")
    logits[3, 5] = np.nan
    return _decode(scene, logits)


def _latin1_entities(scene: Scene) -> list[str]:
    (scene.folder / "e.txt").write_bytes(b"Fremont\nM\xfcller\n")
    return [*_decode(scene), "--entities", str(scene.folder / "e.txt")]


# (name, setup, exit code, what stderr must say ({folder}: the case's folder, and the
# setup's names), what a refused run may leave in the folder besides what was there)
CASES: list[tuple[str, Setup, int, str, tuple[str, ...]]] = [
    # the output folder
    ("results.jsonl linked to a file outside", _linked_in_out("results.jsonl"), 2,
     "error: {folder}/out/results.jsonl is a symbolic link; links in an output folder",
     ("out/.lock",)),
    ("results.jsonl linked to no file yet", _linked_in_out("results.jsonl", dangling=True), 2,
     "error: {folder}/out/results.jsonl is a symbolic link", ("out/.lock",)),
    ("the output folder a link to a folder", _out_linked_to_a_folder, 2,
     "error: the output folder {folder}/out is a symbolic link (to {folder}/real)", ()),
    ("out/.lock linked to a file outside", _linked_in_out(".lock"), 2,
     "error: {folder}/out/.lock is a symbolic link", ()),
    ("another process holding the folder", _held_by_another_process, 2,
     "error: another run (pid {pid}) is writing to {folder}/out: wait for it to end", ()),
    ("a read-only output folder", _read_only_out, 2,
     "error: cannot write in the output folder {folder}/out: ", ()),
    # the manifest: refused before the output folder is made
    ("a manifest with a repeated id",
     lambda s: _corpus(s, '{"audio": "a.wav"}\n{"audio": "b.wav"}\n{"audio": "a.wav"}\n'), 2,
     "error: {folder}/manifest.jsonl:3: id 'a.wav' repeats line 1", ()),
    ("a manifest with a malformed JSON line",
     lambda s: _corpus(s, '{"audio": "a.wav"}\n{"audio": "b.wav",\n'), 2,
     "error: {folder}/manifest.jsonl:2: not valid JSON", ()),
    ("a manifest in Latin-1", lambda s: _corpus(s, b'{"audio": "a.wav"}\n{"audio": "\xe9"}\n'),
     2, "error: {folder}/manifest.jsonl:2: manifest is not valid UTF-8 (byte 0xe9", ()),
    # decode
    ("labels without the blank the logits have in column 0", _blank_first_labels_without_it,
     2, "error: {folder}/labels.txt has no blank (an empty line), so the decoder added one",
     ()),
    ("logits with NaN", _nan_at_frame_3, 2,
     "error: logits contain NaN or +inf (first at frame 3)", ()),
    ("logits of the wrong width", lambda s: _decode(s, np.zeros((5, 7))), 2,
     "error: logits have shape (5, 7), but need (frames, 29)", ()),
    ("an entity file that is not UTF-8", _latin1_entities, 2,
     "error: {folder}/e.txt:2: entity file is not valid UTF-8 (byte 0xfc at offset 9)", ()),
]


def _snapshot(folder: Path) -> dict[str, tuple[str, bytes | str | None]]:
    """Every entry under ``folder``, none followed through a link: a link as its target, a
    file as its bytes, a folder as such."""
    found: dict[str, tuple[str, bytes | str | None]] = {}
    for top, folders, files in os.walk(folder):  # a link to a folder is listed, not entered
        for name in [*folders, *files]:
            path = Path(top, name)
            where = path.relative_to(folder).as_posix()
            if path.is_symlink():
                found[where] = ("link", os.readlink(path))
            elif path.is_dir():
                found[where] = ("folder", None)
            else:
                found[where] = ("file", path.read_bytes())
    return found


@pytest.mark.parametrize(("name", "setup", "code", "says", "leaves"), CASES,
                         ids=[c[0] for c in CASES])
def test_each_case_gets_its_outcome(tmp_path: Path, refused: None,
                                    capsys: pytest.CaptureFixture[str], name: str,
                                    setup: Setup, code: int, says: str,
                                    leaves: tuple[str, ...]) -> None:
    with contextlib.ExitStack() as cleanup:
        scene = Scene(tmp_path, cleanup, {"folder": tmp_path})
        argv = setup(scene)
        before = _snapshot(tmp_path)
        capsys.readouterr()
        assert main(argv) == code
        after = _snapshot(tmp_path)
    err = capsys.readouterr().err
    assert says.format(**scene.names) in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert {where: after.get(where) for where in before} == before  # nothing lost or changed
    added = sorted(after.keys() - before.keys())
    assert [where for where in added if where not in leaves] == [], added
    assert all(after[where][0] == "file" for where in added), added
