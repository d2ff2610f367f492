"""One request end to end against ``ctc-biasing serve`` (uvicorn, a decoding process) on a
free loopback port, then a graceful stop; and the bind rules of the command."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile

pytest.importorskip("torch")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")
httpx = pytest.importorskip("httpx", reason="the serve extra is not installed")
from biasing.cli import main
from tests.serve.conftest import CLIPS, NAMES


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_real_server_transcribes_and_stops_gracefully() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "biasing.cli", "serve", "--port",
                               str(port), "--workers", "1", "--threads", "1",
                               "--api-key", "k", "--log-level", "warning"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
        # a decoding process that dies is replaced: its request is told to retry, the next
        # one is served
        for worker in spawned_children(server.pid):
            os.kill(worker, signal.SIGKILL)
        died = httpx.post(f"{url}/v1/audio/transcriptions",
                          files={"file": ("clinic.ogg", CLIPS["clinic"])},
                          headers={"Authorization": "Bearer k"}, timeout=120)
        assert died.status_code == 503
        assert died.json()["error"]["code"] == "worker_died"
        again = httpx.post(f"{url}/v1/audio/transcriptions",
                           files={"file": ("clinic.ogg", CLIPS["clinic"])},
                           data={"entities": "\n".join(NAMES["clinic"])},
                           headers={"Authorization": "Bearer k"}, timeout=120)
        assert again.status_code == 200, again.text
        assert "Przybylski" in again.json()["text"]
        # a request in flight when SIGTERM comes is finished before the server exits
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(httpx.post, f"{url}/v1/audio/transcriptions",
                                    files={"file": ("long.wav", long_clip())},
                                    headers={"Authorization": "Bearer k"}, timeout=120)
            time.sleep(0.5)
            server.send_signal(signal.SIGTERM)
            assert in_flight.result().status_code == 200
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


def long_clip() -> bytes:
    """The four example clips, five times over (about 80 s): a request that takes a while."""
    waves = [soundfile.read(io.BytesIO(audio), dtype="float32")[0] for audio in CLIPS.values()]
    out = io.BytesIO()
    soundfile.write(out, np.concatenate(waves * 5), 16000, format="WAV")
    return out.getvalue()


def test_binding_beyond_loopback_needs_a_key(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CTC_BIASING_API_KEY", raising=False)
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "--host 0.0.0.0 lets other machines in: give --api-key" in capsys.readouterr().err
