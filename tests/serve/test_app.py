"""The app through an in-process client: transcription with and without a list, the
OpenAI response formats, per-request isolation under concurrent requests, every limit and
malformed field, the API key, readiness."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import soundfile

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("httpx", reason="the serve extra is not installed")
from fastapi.testclient import TestClient

from biasing.serve import Limits, ServerConfig, create_app
from tests.serve.conftest import CLIPS, NAMES

URL = "/v1/audio/transcriptions"
LOOPBACK = ("127.0.0.1", 50000)  # the client address: a server without a key serves only these


def client_for(transcriber: Any, **settings: Any) -> TestClient:
    config = ServerConfig(workers=0, **settings)
    return TestClient(create_app(config, transcriber), client=LOOPBACK)


@pytest.fixture(scope="module")
def client(transcriber: Any) -> Any:
    with client_for(transcriber) as c:
        yield c


class HeldModel:
    """The acoustic model behind a gate: a forward pass waits until the test opens it, so a
    request is provably in flight (its audio in the model) for as long as the test needs."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.entered = threading.Event()  # a forward pass is waiting at the gate
        self.gate = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def forward(self, waves: Sequence[np.ndarray], layers: Sequence[int] = ()) -> Any:
        self.entered.set()
        assert self.gate.wait(120), "the test never opened the gate"
        return self.model.forward(waves, layers)


class HeldTranscriber:
    """``transcriber`` whose model is ``held`` (the server runs its batches on
    ``transcriber.model``; everything else is the transcriber's own)."""

    def __init__(self, transcriber: Any, held: HeldModel) -> None:
        self.transcriber = transcriber
        self.model = held

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transcriber, name)


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 120) -> None:
    """Poll ``condition`` (a state the test waits for, not a timing window)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {seconds} s"
        time.sleep(0.01)


def post(client: TestClient, clip: str = "clinic", audio: bytes | None = None,
         **fields: str) -> Any:
    return client.post(URL, files={"file": (f"{clip}.ogg", CLIPS[clip] if audio is None
                                            else audio)}, data=fields)


def expected(transcriber: Any, clip: str, entities: list[str] | None = None) -> Any:
    wave, rate = soundfile.read(io.BytesIO(CLIPS[clip]), dtype="float32")
    return transcriber.transcribe([(wave, rate)], entities)[0]


def test_without_a_list_the_text_is_the_library_s(client: TestClient, transcriber: Any) -> None:
    response = post(client)
    assert response.status_code == 200, response.text
    assert response.json() == {"text": expected(transcriber, "clinic").text}
    assert "Przybylski" not in response.json()["text"]


def test_a_list_brings_the_names_and_verbose_json_places_them(client: TestClient) -> None:
    response = post(client, entities="\n".join(NAMES["clinic"] + ["Zermatt"]),
                    response_format="verbose_json")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == "doctor Przybylski switched the patient to tirzepatide last week"
    assert [e["entity"] for e in body["entities"]] == ["Przybylski", "tirzepatide"]
    assert body["duration"] == pytest.approx(4.59, abs=0.01)
    words = body["words"]
    assert [w["word"] for w in words] == body["text"].split()
    assert all(0 <= w["start"] <= w["end"] <= body["duration"] for w in words)
    hit = body["entities"][0]
    assert (words[hit["first_word"]]["start"], words[hit["last_word"]]["end"]) == \
        (hit["start"], hit["end"])


def test_text_format_json_lists_and_an_entities_file(client: TestClient) -> None:
    response = post(client, entities=json.dumps(NAMES["clinic"]), response_format="text")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "doctor Przybylski switched the patient to tirzepatide last week"
    upload = client.post(URL, files={"file": ("clinic.ogg", CLIPS["clinic"]),
                                     "entities": ("names.txt", "\n".join(NAMES["clinic"]))})
    assert upload.json()["text"] == response.text


def test_weight_zero_gives_the_unbiased_text(client: TestClient) -> None:
    plain = post(client).json()["text"]
    assert post(client, entities="\n".join(NAMES["clinic"]), weight="0").json()["text"] == plain


def test_concurrent_requests_share_a_batch_and_each_get_their_own_list(
        transcriber: Any) -> None:
    """The first request is held in the model until the others have all reached the
    batcher: they then make one forward pass together, whatever the timing, and each
    is decoded with its own list."""
    jobs = [(clip, names) for clip, names in NAMES.items()] * 2 + \
        [(clip, None) for clip in NAMES]
    want = {(clip, bool(names)): expected(transcriber, clip, names).text
            for clip, names in jobs}
    held = HeldModel(transcriber.model)
    with client_for(HeldTranscriber(transcriber, held), max_wait_ms=0,
                    max_batch=16) as client:
        batcher = client.app.state.server.batcher
        arrived: list[int] = []
        forward = batcher.forward

        async def counted(wave: np.ndarray, layers: Sequence[int] = ()) -> Any:
            arrived.append(len(wave))  # then queued, in the same step of the event loop
            return await forward(wave, layers)

        batcher.forward = counted

        def send(job: tuple[str, list[str] | None]) -> str:
            clip, names = job
            fields = {"entities": "\n".join(names)} if names else {}
            response = post(client, clip, **fields)
            assert response.status_code == 200, response.text
            return str(response.json()["text"])

        with ThreadPoolExecutor(len(jobs)) as pool:
            try:
                first = pool.submit(send, jobs[0])
                assert held.entered.wait(120), "the first request never reached the model"
                rest = [pool.submit(send, job) for job in jobs[1:]]
                wait_until(lambda: len(arrived) == len(jobs), "all queued")
            finally:
                held.gate.set()
            got = [first.result(), *(future.result() for future in rest)]
        assert (batcher.batches, batcher.items) == (2, len(jobs))  # the held one, the rest
    for (clip, names), text in zip(jobs, got):
        assert text == want[clip, bool(names)], (clip, names)
        for other, other_names in NAMES.items():  # no other request's names leak in
            if other != clip or not names:
                assert not any(n in text for n in other_names), (clip, names, text)


def test_a_stopping_app_finishes_the_request_in_flight(transcriber: Any) -> None:
    """Shutdown waits for the request held in the model, and refuses new ones meanwhile."""
    held = HeldModel(transcriber.model)
    client = client_for(HeldTranscriber(transcriber, held))
    client.__enter__()  # left from another thread below, while the request is held
    server = client.app.state.server
    with ThreadPoolExecutor(2) as pool:
        stopped = None
        try:
            in_flight = pool.submit(post, client)
            assert held.entered.wait(120), "the request never reached the model"
            stopped = pool.submit(client.__exit__, None, None, None)
            wait_until(lambda: server.stopping, "stopping")
            assert client.get("/readyz").json()["status"] == "stopping"
            refused = post(client)
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "shutting_down"
            assert not in_flight.done() and not stopped.done()
        finally:
            held.gate.set()
            if stopped is None:
                client.__exit__(None, None, None)
        response = in_flight.result()
        stopped.result()
    assert response.status_code == 200, response.text
    assert response.json() == {"text": expected(transcriber, "clinic").text}


def test_a_list_is_compiled_once_across_requests(client: TestClient, transcriber: Any) -> None:
    names = "\n".join(NAMES["travel"] + ["Zerodha"])
    post(client, "travel", entities=names)
    from biasing.serve.form import parse_entities

    compiled = transcriber.decoder.compile(parse_entities(names, Limits()))
    post(client, "travel", entities=names)
    assert transcriber.decoder.compile(parse_entities(names, Limits())) is compiled


def wav_bytes(seconds: float, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, np.zeros(int(seconds * rate), np.float32), rate, format="WAV")
    return out.getvalue()


@pytest.mark.parametrize(("fields", "audio", "status", "param", "says"), [
    ({}, b"", 400, "file", "is empty"),
    ({}, b"certainly not audio", 415, "file", "not audio in a format"),
    ({}, wav_bytes(0.05), 400, "file", "shorter than"),
    ({}, CLIPS["clinic"][:len(CLIPS["clinic"]) // 2], 400, "file", "truncated"),
    ({"entities": "AT&T"}, None, 400, "entities", "'AT&T' ('&')"),
    ({"entities": "\n".join(f"name{i}" for i in range(11))}, None, 413, "entities",
     "more than this server's limit of 10"),
    ({"entities": "x" * 31}, None, 413, "entities", "more than 30"),
    ({"entities": "Kaiyo\tlots"}, None, 400, "entities", "is not a number"),
    ({"adapter": "true", "entities": "Kaiyo"}, None, 400, "adapter", "without a contextual"),
    ({"response_format": "srt"}, None, 400, "response_format", "not supported"),
    ({"weight": "heavy"}, None, 400, "weight", "not a number"),
    ({"entites": "Kaiyo"}, None, 400, "entites", "unknown field"),
])
def test_every_limit_and_malformed_field_is_a_clear_4xx(
        transcriber: Any, fields: dict[str, str], audio: bytes | None, status: int,
        param: str, says: str) -> None:
    limits = Limits(entities=10, entity_chars=30, audio_s=60)
    with client_for(transcriber, limits=limits) as client:
        response = post(client, audio=audio, **fields)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert says in error["message"], error["message"]


def test_audio_over_the_limits(transcriber: Any) -> None:
    with client_for(transcriber, limits=Limits(audio_bytes=50_000, audio_s=2.0)) as client:
        under = post(client, audio=wav_bytes(1.5, rate=8000))  # 24 kB, 1.5 s
        assert under.status_code == 200, under.text
        seconds = post(client, audio=wav_bytes(2.5, rate=8000))  # 40 kB, 2.5 s
        assert seconds.status_code == 413
        assert "more than this server's limit of 2 s" in seconds.json()["error"]["message"]
    with client_for(transcriber, limits=Limits(audio_bytes=20_000)) as client:
        big = post(client, audio=wav_bytes(1.0))  # 32 kB
        assert big.status_code == 413
        assert "limit of 20,000" in big.json()["error"]["message"]


def test_requests_that_are_not_a_transcription_form(client: TestClient) -> None:
    as_json = client.post(URL, json={"file": "/etc/passwd"})
    assert as_json.status_code == 400
    assert "expected a multipart/form-data body" in as_json.json()["error"]["message"]
    no_file = client.post(URL, files={"entities": (None, "Kaiyo")})
    assert no_file.status_code == 400
    assert no_file.json()["error"]["param"] == "file"
    named_path = client.post(URL, data={"file": "/etc/passwd"},
                             files={"entities": (None, "Kaiyo")})
    assert named_path.status_code == 400
    assert "never opens a path" in named_path.json()["error"]["message"]
    bad_utf8 = client.post(URL, files={"file": ("c.ogg", CLIPS["clinic"]),
                                       "entities": ("n.txt", b"Caf\xe9")})
    assert bad_utf8.status_code == 400
    assert "not UTF-8" in bad_utf8.json()["error"]["message"]


def test_skip_unrepresentable_drops_what_cannot_be_spelled(client: TestClient) -> None:
    response = post(client, entities="AT&T\nPrzybylski\ntirzepatide",
                    skip_unrepresentable="true")
    assert response.status_code == 200, response.text
    assert "Przybylski" in response.json()["text"]


def test_the_api_key_guards_transcription_but_not_health(transcriber: Any) -> None:
    with client_for(transcriber, api_key="s3cret") as client:
        assert client.get("/healthz").status_code == 200
        missing = post(client)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = client.post(URL, files={"file": ("c.ogg", CLIPS["clinic"])},
                            headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 401
        right = client.post(URL, files={"file": ("c.ogg", CLIPS["clinic"])},
                            headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200


def test_readiness_and_a_stopping_server(transcriber: Any) -> None:
    with client_for(transcriber) as client:
        assert client.get("/readyz").json()["status"] == "ready"
        server = client.app.state.server
        server.stopping = True
        assert client.get("/readyz").status_code == 503
        refused = post(client)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "shutting_down"
        server.stopping = False


def test_the_adapter_is_used_when_a_request_asks(transcriber: Any) -> None:
    from biasing import Transcriber

    adapted = Transcriber(threads=1, pronunciation_cache=False, adapter=True)
    names = "\n".join(NAMES["clinic"])
    with client_for(adapted, adapter=True) as client:
        with_adapter = post(client, entities=names, adapter="true")
        without = post(client, entities=names)
    assert with_adapter.status_code == 200, with_adapter.text
    wave, rate = soundfile.read(io.BytesIO(CLIPS["clinic"]), dtype="float32")
    assert with_adapter.json()["text"] == adapted.transcribe([(wave, rate)],
                                                             NAMES["clinic"])[0].text
    assert without.json()["text"] == expected(transcriber, "clinic", NAMES["clinic"]).text


def test_a_transcriber_with_worker_processes_is_refused(transcriber: Any) -> None:
    with pytest.raises(ValueError, match="pass transcriber only with workers=0"), \
            TestClient(create_app(ServerConfig(workers=1), transcriber)):
        pass


def test_a_body_over_the_limit_is_refused_declared_or_streamed(transcriber: Any) -> None:
    limits = Limits(audio_bytes=1000, entities=1, entity_chars=1)  # about 67 kB in all
    audio = wav_bytes(6.0)  # 192 kB
    boundary = "ctcbiasingboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode() + audio + \
        f"\r\n--{boundary}--\r\n".encode()
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    with client_for(transcriber, limits=limits) as client:
        declared = client.post(URL, content=body, headers=headers)
        streamed = client.post(URL, content=(body[i:i + 8192]
                                             for i in range(0, len(body), 8192)),
                               headers=headers)
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "request_too_large"
    assert f"request body is {len(body):,} bytes" in declared.json()["error"]["message"]
    assert "request body is over" in streamed.json()["error"]["message"]
