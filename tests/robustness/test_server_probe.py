"""The server under attack and in daily use: a regression probe of every hostile request
and stock OpenAI client call we know of, each with the one outcome it must get. Loopback
only, bounded in time (the bombs are built from their headers, not encoded at length)."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("torch")
sf = pytest.importorskip("soundfile")
from fastapi.testclient import TestClient

from biasing.serve import ServerConfig, create_app

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples"
CLINIC = (EXAMPLES / "clinic.ogg").read_bytes()
URL = "/v1/audio/transcriptions"
LOOPBACK = ("127.0.0.1", 50000)
REMOTE = ("203.0.113.7", 50000)  # TEST-NET-3: an address that is not this machine


def _encoded(samples: np.ndarray, rate: int, fmt: str, subtype: str) -> bytes:
    stream = io.BytesIO()
    sf.write(stream, samples, rate, format=fmt, subtype=subtype)
    return stream.getvalue()


def flac_bomb() -> bytes:
    """The issue's FLAC: silence declaring 655,350 Hz x 8 channels x 60 s (its STREAMINFO
    patched; encoding a real one takes seconds, and only the header is read)."""
    data = bytearray(_encoded(np.zeros((4096, 8), np.int16), 655_350, "FLAC", "PCM_16"))
    frames = 655_350 * 60
    data[21] = (data[21] & 0xF0) | (frames >> 32)
    data[22:26] = (frames & 0xFFFFFFFF).to_bytes(4, "big")
    return bytes(data)


def ogg_bomb() -> bytes:
    """The issue's Ogg Vorbis at 255 channels x 48 kHz (0.5 s of it: the channels decide)."""
    return _encoded(np.zeros((24_000, 255), np.float32), 48_000, "OGG", "VORBIS")


@pytest.fixture(scope="module")
def transcriber():  # type: ignore[no-untyped-def]
    from biasing import Transcriber

    return Transcriber(threads=1, pronunciation_cache=False, list_cache=4)


@pytest.fixture(scope="module")
def client(transcriber: Any) -> Iterator[TestClient]:
    with TestClient(create_app(ServerConfig(workers=0), transcriber), client=LOOPBACK) as c:
        yield c


def _post(client: TestClient, fields: list[tuple[str, str]] | dict[str, str],
          file: tuple[str, bytes] = ("clinic.ogg", CLINIC), **headers: str) -> Any:
    """A multipart request; fields given as pairs may repeat, as the OpenAI SDK sends them."""
    data: dict[str, Any] = {}
    for name, value in fields.items() if isinstance(fields, dict) else fields:
        data[name] = [*data[name], value] if name in data and isinstance(data[name], list) \
            else [data[name], value] if name in data else value
    return client.post(URL, files={"file": file}, data=data, headers=headers)


# (name, form fields, uploaded file, status, what the error code or body must contain)
CASES: list[tuple[str, Any, tuple[str, bytes] | None, int, str]] = [
    ("FLAC declaring 655,350 Hz x 8 ch x 60 s", {}, ("bomb.flac", b""), 413,
     "audio_too_large"),
    ("Ogg Vorbis of 255 channels", {}, ("bomb.ogg", b""), 413, "audio_too_large"),
    ("entities JSON nested 100,000 deep", {"entities": "[" * 100_000 + "]" * 100_000}, None,
     400, "nested too deeply"),
    ("a weight of 400 digits", {"entities": '[["Kaiyo", 1' + "0" * 400 + "]]"}, None, 400,
     "is too large"),
    ("a weight of 5,000 digits", {"entities": '[["Kaiyo", 1' + "0" * 5000 + "]]"}, None, 400,
     "cannot read"),
    ("a weight object of 400 digits",
     {"entities": '[{"text": "Kaiyo", "weight": 1' + "0" * 400 + "}]"}, None, 400,
     "is too large"),
    ("a 10 MB entities text field", {"entities": "Kaiyo\n" * 1_700_000}, None, 413,
     "list_too_large"),
    ("a weight of 1e300", {"entities": "Kaiyo\t1e300"}, None, 400, "at most 1000"),
    ("entities and entities[] together", [("entities", "Kaiyo"), ("entities[]", "Reykjavik")],
     None, 400, "not both"),
    ("a repeated single field", [("weight", "1"), ("weight", "2")], None, 400,
     "given more than once"),
    ("an unknown field", {"entites": "Kaiyo"}, None, 400, "unknown_field"),
    ("OpenAI SDK list: entities[] per item",
     [("entities[]", "Przybylski"), ("entities[]", "tirzepatide")], None, 200, "Przybylski"),
    ("OpenAI SDK timestamp_granularities[] twice",
     [("timestamp_granularities[]", "word"), ("timestamp_granularities[]", "segment"),
      ("response_format", "verbose_json")], None, 200, '"words"'),
]
BOMBS = {"bomb.flac": flac_bomb, "bomb.ogg": ogg_bomb}


@pytest.mark.parametrize(("name", "fields", "file", "status", "says"), CASES,
                         ids=[c[0] for c in CASES])
def test_each_case_gets_its_outcome(client: TestClient, name: str, fields: Any,
                                    file: tuple[str, bytes] | None, status: int,
                                    says: str) -> None:
    if file is not None and file[0] in BOMBS:
        file = (file[0], BOMBS[file[0]]())
    response = _post(client, fields, file or ("clinic.ogg", CLINIC))
    assert response.status_code == status, response.text[:300]
    assert says in response.text, response.text[:300]


def test_the_stream_answer_is_openais_events(client: TestClient) -> None:
    response = _post(client, {"stream": "true", "entities": "Przybylski"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[len("data: "):]) for line in response.text.splitlines()
              if line.startswith("data: ")]
    assert [e["type"] for e in events] == ["transcript.text.delta", "transcript.text.done"]
    assert events[0]["delta"] == events[1]["text"] and "Przybylski" in events[1]["text"]


def test_models_are_listed(client: TestClient) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list" and body["data"][0]["id"] == "default"


def test_one_request_never_changes_another(client: TestClient) -> None:
    """The compiled-list cache keys the unrepresentable policy: the same list is refused,
    accepted with skip_unrepresentable, and refused again without it."""
    names = "Przybylski\nAT&T"
    assert _post(client, {"entities": names}).status_code == 400
    with pytest.warns(UserWarning):
        assert _post(client, {"entities": names,
                              "skip_unrepresentable": "true"}).status_code == 200
    again = _post(client, {"entities": names})
    assert again.status_code == 400 and "unrepresentable_entities" in again.text


def test_without_a_key_only_this_machine_is_served(transcriber: Any) -> None:
    app = create_app(ServerConfig(workers=0), transcriber)
    with TestClient(app, client=REMOTE) as remote:
        assert remote.get("/healthz").status_code == 200
        refused = _post(remote, {})
        assert refused.status_code == 403 and "loopback_only" in refused.text
        assert remote.get("/docs").status_code == 403


@pytest.mark.parametrize("how", ["config", "environment", "key file"])
def test_a_key_guards_everything_but_health(transcriber: Any, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    monkeypatch.delenv("CTC_BIASING_API_KEY", raising=False)
    monkeypatch.delenv("CTC_BIASING_API_KEY_FILE", raising=False)
    config = ServerConfig(workers=0, api_key="s3cret" if how == "config" else None)
    if how == "environment":  # as `CTC_BIASING_API_KEY=k uvicorn ... --factory` runs it
        monkeypatch.setenv("CTC_BIASING_API_KEY", "s3cret")
    elif how == "key file":
        (tmp_path / "key").write_text("s3cret\n")
        monkeypatch.setenv("CTC_BIASING_API_KEY_FILE", str(tmp_path / "key"))
    with TestClient(create_app(config, transcriber), client=REMOTE) as c:
        for path in ("/docs", "/openapi.json", "/v1/models"):
            assert c.get(path).status_code == 401, path
        assert _post(c, {}).status_code == 401
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        good = {"Authorization": "Bearer s3cret"}
        assert c.get("/openapi.json", headers=good).status_code == 200
        assert _post(c, {}, **good).status_code == 200


# ---------------------------------------------------------------- a real server

class _Server:
    """uvicorn in a thread of this process, on a free loopback port."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Server:  # noqa: PYI034 - Self needs Python 3.11
        self.thread.start()
        _until(lambda: self.server.started, 60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(60)


def _until(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(0.05)


def _slow_request(port: int) -> socket.socket:
    """Headers and the first bytes of a 1 MB multipart body, then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: multipart/form-data; boundary=b\r\n"
                 b"Content-Length: 1000000\r\n\r\n--b\r\nContent-Disposition: form-data; "
                 b'name="file"; filename="a.ogg"\r\n\r\nOggS')
    return sock


def test_slow_bodies_hold_nothing_and_time_out(transcriber: Any) -> None:
    import httpx

    config = ServerConfig(workers=0, max_pending=2, body_timeout_s=2.0)
    with _Server(create_app(config, transcriber)) as server:
        url = f"http://127.0.0.1:{server.port}"
        _until(lambda: httpx.get(f"{url}/readyz").status_code == 200, 60)
        slow = [_slow_request(server.port) for _ in range(8)]
        try:
            started = time.monotonic()
            served = httpx.post(f"{url}{URL}", files={"file": ("clinic.ogg", CLINIC)},
                                timeout=60)
            assert served.status_code == 200, served.text  # not 503 busy
            for sock in slow:  # each is refused once its body is late
                answer = b""
                while b"request_timeout" not in answer:
                    chunk = sock.recv(4096)
                    assert chunk, answer
                    answer += chunk
                assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert time.monotonic() - started < 30
        finally:
            for sock in slow:
                sock.close()


def test_the_openai_client_as_its_users_write_it(transcriber: Any) -> None:
    openai = pytest.importorskip("openai", reason="the openai client is not installed")
    with _Server(create_app(ServerConfig(workers=0), transcriber)) as server:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{server.port}/v1",
                               api_key="unused", max_retries=0)
        _until(lambda: client.with_raw_response.models.list().http_response.status_code
               == 200, 60)
        assert [m.id for m in client.models.list()] == ["default"]
        names = {"entities": ["Przybylski", "tirzepatide"]}
        text = client.audio.transcriptions.create(model="default", file=("c.ogg", CLINIC),
                                                  extra_body=names).text
        assert text == "doctor Przybylski switched the patient to tirzepatide last week"
        verbose = client.audio.transcriptions.create(
            model="default", file=("c.ogg", CLINIC), response_format="verbose_json",
            timestamp_granularities=["word", "segment"], extra_body=names)
        assert verbose.words and verbose.words[1].word == "Przybylski"
        events = list(client.audio.transcriptions.create(
            model="default", file=("c.ogg", CLINIC), stream=True, extra_body=names))
        assert [e.type for e in events] == ["transcript.text.delta", "transcript.text.done"]
        assert events[-1].text == text
