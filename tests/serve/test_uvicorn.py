"""One request end to end against ``ctc-biasing serve`` (uvicorn, a decoding process) on a
free loopback port, then a graceful stop; and the bind rules of the command.

The server runs the command's own ``main`` with one change: while the file ``$HOLD``
exists, the acoustic model's forward passes wait (after creating ``$HOLD.entered``), so
the test can keep a request in flight for as long as it needs, without sleeping."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")
httpx = pytest.importorskip("httpx", reason="the serve extra is not installed")
from biasing.cli import main
from tests.serve.conftest import CLIPS, NAMES

HELD_SERVE = """
import os, sys, time
from pathlib import Path

import biasing.transcribe

hold = Path(os.environ["HOLD"])


class Held(biasing.transcribe.Transcriber):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        forward = self.model.forward

        def held(waves, layers=()):
            if hold.exists():
                Path(f"{hold}.entered").touch()
                while hold.exists():
                    time.sleep(0.01)
            return forward(waves, layers)

        self.model.forward = held


biasing.transcribe.Transcriber = Held
from biasing.cli import main

sys.exit(main(sys.argv[1:]))
"""


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 120) -> None:
    """Poll ``condition`` (a state the test waits for, not a timing window)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {seconds} s"
        time.sleep(0.05)


def readyz(url: str) -> dict:
    return httpx.get(f"{url}/readyz", timeout=5).json()


def refuses_connections(port: int) -> bool:
    """Whether nothing listens on ``port`` any more (the server has begun to stop)."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_real_server_transcribes_and_stops_gracefully(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    hold = tmp_path / "hold"
    server = subprocess.Popen([sys.executable, "-c", HELD_SERVE, "serve", "--port",
                               str(port), "--workers", "1", "--threads", "1",
                               "--api-key", "k", "--log-level", "warning"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "HOLD": str(hold)})
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "not ready within 180 s"
            time.sleep(0.3)
        response = httpx.post(f"{url}/v1/audio/transcriptions",
                              files={"file": ("clinic.ogg", CLIPS["clinic"])},
                              data={"entities": "\n".join(NAMES["clinic"]),
                                    "response_format": "verbose_json"},
                              headers={"Authorization": "Bearer k"}, timeout=120)
        assert response.status_code == 200, response.text
        assert response.json()["text"] == \
            "doctor Przybylski switched the patient to tirzepatide last week"
        assert httpx.post(f"{url}/v1/audio/transcriptions",
                          files={"file": ("c.ogg", CLIPS["clinic"])}).status_code == 401
        # a decoding process that dies while idle is noticed without a request: /readyz
        # counts it out until its replacement has loaded, and then requests are served
        for worker in spawned_children(server.pid):
            os.kill(worker, signal.SIGKILL)
        wait_until(lambda: readyz(url)["live_workers"] == 0, "counted out", 60)
        assert httpx.get(f"{url}/readyz").status_code == 503
        wait_until(lambda: readyz(url)["live_workers"] == 1, "replaced", 120)
        again = httpx.post(f"{url}/v1/audio/transcriptions",
                           files={"file": ("clinic.ogg", CLIPS["clinic"])},
                           data={"entities": "\n".join(NAMES["clinic"])},
                           headers={"Authorization": "Bearer k"}, timeout=120)
        assert again.status_code == 200, again.text
        assert "Przybylski" in again.json()["text"]
        # a request in flight (held in the model) when SIGTERM comes is finished before the
        # server exits: SIGTERM goes once the request is in the model, the request is let go
        # once the server has stopped listening
        hold.touch()
        with ThreadPoolExecutor(1) as pool:
            try:
                in_flight = pool.submit(httpx.post, f"{url}/v1/audio/transcriptions",
                                        files={"file": ("clinic.ogg", CLIPS["clinic"])},
                                        data={"entities": "\n".join(NAMES["clinic"])},
                                        headers={"Authorization": "Bearer k"}, timeout=120)
                wait_until(Path(f"{hold}.entered").exists, "in the model")
                server.send_signal(signal.SIGTERM)
                wait_until(lambda: refuses_connections(port), "stopped listening")
                assert not in_flight.done() and server.poll() is None
            finally:
                hold.unlink()
            finished = in_flight.result()
        assert finished.status_code == 200, finished.text
        assert "Przybylski" in finished.json()["text"]
        code = server.wait(60)
    finally:
        if server.poll() is None:
            server.kill()
    # uvicorn re-raises the signal once it has shut down gracefully
    assert code in (0, -signal.SIGTERM), server.stdout.read() if server.stdout else ""


def spawned_children(pid: int) -> list[int]:
    """The decoding processes of server ``pid`` (multiprocessing spawn children)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"spawn_main" in command:
                found.append(int(child))
    assert found, "no decoding process found"
    return found


def test_binding_beyond_loopback_needs_a_key(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CTC_BIASING_API_KEY", raising=False)
    monkeypatch.delenv("CTC_BIASING_API_KEY_FILE", raising=False)
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "--host 0.0.0.0 lets other machines in: give a key (--api-key-file FILE" in \
        capsys.readouterr().err
