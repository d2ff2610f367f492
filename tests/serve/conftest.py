"""The server's tests run the app in process on the bundled model (the serve extra)."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples"
CLIPS = {p.stem: p.read_bytes() for p in sorted(EXAMPLES.glob("*.ogg"))}
NAMES = {"booking": ["Kaiyo", "Thandiwe Okonkwo"], "clinic": ["Przybylski", "tirzepatide"],
         "invoice": ["Quetzal Robotics"], "travel": ["Reykjavik"]}


@pytest.fixture(scope="session")
def transcriber():  # type: ignore[no-untyped-def]
    """The bundled model, shared by every app of these tests (workers=0)."""
    pytest.importorskip("torch")
    from biasing import Transcriber

    return Transcriber(threads=1, pronunciation_cache=False, list_cache=4)
