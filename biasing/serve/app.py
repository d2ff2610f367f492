"""The HTTP app: ``POST /v1/audio/transcriptions`` (OpenAI's speech-to-text convention plus
our entity list, as JSON or as OpenAI's stream events), ``GET /v1/models``, ``/healthz``
and ``/readyz``.

Who may call and how much a body may hold is checked in front of the app
(:mod:`.access`). A request's body is read first (bounded in size and time); only then does
it count against ``max_pending``, so slow senders cannot hold the server's slots. It is
checked (fields, list, size, format) before any model work; its list is compiled in the
decoding worker it will be decoded in (a list the model cannot spell is refused there,
before the forward pass), its audio joins the next acoustic-model batch, and its output is
decoded with its own list and options. The server never opens a path a client names: audio
comes only as an upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

try:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
except ImportError as _missing:  # pragma: no cover - depends on the environment
    raise ImportError("the server needs FastAPI and uvicorn: pip install "
                      "'ctc-biasing[serve]'") from _missing

from ..entities import UnrepresentableEntitiesError, describe_unrepresentable
from ..transcribe import Transcript, UnavailableOptionError
from .access import BodyTimeout, BodyTooLarge, Gate
from .batching import Batcher
from .form import RequestError, TranscriptionRequest, parse_fields
from .settings import Limits, ServerConfig
from .workers import DecodePool, WorkerDied

logger = logging.getLogger(__name__)
TRANSCRIPTIONS = "/v1/audio/transcriptions"
MODELS = "/v1/models"
_FORM_SLACK = 64 * 1024  # multipart headers and small fields, beyond audio and list


class Server:
    """The state behind the app: the model, the batcher, the decoding pool."""

    def __init__(self, config: ServerConfig, transcriber: Any = None) -> None:
        self.config = config
        self.transcriber = transcriber
        self.batcher: Batcher | None = None
        self.pool: DecodePool | None = None
        self.ready = False
        self.stopping = False
        self.pending = 0  # requests whose body has arrived and that are not answered yet
        self.reading = 0  # requests whose body is being read
        self.problem: str | None = None  # why the workers failed to start
        self.started = int(time.time())
        self._warming: asyncio.Task[None] | None = None
        self._watching: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from ..transcribe import Transcriber

        config = self.config
        if self.transcriber is None:
            arguments = config.transcriber_arguments()
            if config.workers:  # the decoders live in the workers: keep this one's cache small
                arguments["list_cache"] = 1
            self.transcriber = await asyncio.to_thread(
                lambda: Transcriber(device=config.device, threads=config.threads, **arguments))
        elif config.workers:
            raise ValueError("a ServerConfig with workers > 0 builds its own Transcriber in "
                             "each worker; pass transcriber only with workers=0")
        gc.freeze()  # the model and lexicons live as long as the server: no GC passes over them
        self.batcher = Batcher(self.transcriber.model, config.max_batch,
                               config.max_wait_ms / 1000)
        self.batcher.start()
        self.pool = DecodePool(config.workers, config.transcriber_arguments(),
                               self.transcriber if not config.workers else None)
        self._warming = asyncio.get_running_loop().create_task(self._warm())

    async def _warm(self) -> None:
        assert self.pool is not None
        try:
            await self.pool.ready()
        except Exception as err:  # noqa: BLE001 - reported by /readyz
            self.problem = f"decoding workers failed to start: {err}"
            logger.error(self.problem)
            return
        self.ready = True
        logger.info("ready: %d decoding worker(s)%s", self.pool.size,
                    " (in process)" if self.pool.in_process else "")
        if not self.pool.in_process:
            self._watching = asyncio.get_running_loop().create_task(
                self.pool.watch(self.config.health_interval_s))

    async def stop(self) -> None:
        """Refuse new requests, finish those in flight, stop the workers."""
        self.ready = False
        self.stopping = True
        for task in (self._warming, self._watching):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for _ in range(600):  # uvicorn waits for open requests; a test client may not
            if not self.pending:
                break
            await asyncio.sleep(0.05)
        if self.batcher is not None:
            await self.batcher.stop()
        if self.pool is not None:
            await asyncio.to_thread(self.pool.shutdown)

    # ------------------------------------------------------------------ a request

    def may_read(self) -> None:
        """Refuse a request before its body is read: stopping, or too many bodies arriving
        at once."""
        if self.stopping:
            raise RequestError(503, "the server is shutting down", None, "shutting_down")
        if self.reading >= self.config.max_uploads:
            raise RequestError(503, f"the server is busy ({self.reading} request bodies "
                                    f"arriving): try again shortly", None, "busy")

    def admit(self) -> None:
        """Refuse a request whose body has arrived when the server cannot take it now."""
        if self.stopping:
            raise RequestError(503, "the server is shutting down", None, "shutting_down")
        if not self.ready:
            raise RequestError(503, self.problem or "the server is starting: try again when "
                                                    "/readyz says ready", None, "not_ready")
        if self.pending >= self.config.max_pending:
            raise RequestError(503, f"the server is busy ({self.pending} requests in "
                                    f"flight): try again shortly", None, "busy")

    async def transcribe(self, audio: bytes, filename: str,
                         request: TranscriptionRequest) -> Transcript:
        assert self.batcher is not None and self.pool is not None
        transcriber = self.transcriber
        overrides = request.overrides
        if overrides.adapter is None:
            overrides = replace(overrides, adapter=self.config.adapter_default)
        try:
            use_adapter = transcriber.uses_adapter(request.entities, overrides)
        except UnavailableOptionError as err:
            raise RequestError(400, str(err), err.field) from None
        rate = transcriber.model.sample_rate
        wave, _ = await asyncio.gather(
            asyncio.to_thread(_read_audio, audio, filename, rate, self.config.limits),
            self._check_list(request))
        layers = transcriber.adapter.layers if use_adapter else ()
        output = await self.batcher.forward(wave, layers)
        try:
            return await self.pool.decode(output, request.entities, overrides,
                                          source=filename, duration_s=len(wave) / rate)
        except WorkerDied as err:
            raise RequestError(503, str(err), None, "worker_died") from None

    async def _check_list(self, request: TranscriptionRequest) -> None:
        assert self.pool is not None
        try:
            await self.pool.check(request.entities)
        except WorkerDied as err:
            raise RequestError(503, str(err), None, "worker_died") from None
        except UnrepresentableEntitiesError as err:
            raise RequestError(400, f"entities: {describe_unrepresentable(err.problems)}. "
                                    f"Send skip_unrepresentable=true to drop them.",
                               "entities", "unrepresentable_entities") from None


def _read_audio(data: bytes, filename: str, rate: int, limits: Limits) -> Any:
    from ..audio import audio_info, check_audio_size, decode_audio

    name = f"uploaded file {filename[:80]!r}"
    if not data:
        raise RequestError(400, f"{name} is empty", "file")
    try:
        info = audio_info(data, name)
    except ValueError as err:
        raise RequestError(415, str(err), "file", "unsupported_audio") from None
    try:  # what the header declares, before a sample is decoded (a small file may declare GBs)
        check_audio_size(info, name)
    except ValueError as err:
        raise RequestError(413, str(err), "file", "audio_too_large") from None
    if info.duration_s > limits.audio_s:
        raise RequestError(413, f"{name} is {info.duration_s:.1f} s long, more than this "
                                f"server's limit of {limits.audio_s:g} s", "file",
                           "audio_too_long")
    try:
        return decode_audio(data, rate, name)
    except ValueError as err:
        raise RequestError(400, str(err), "file", "bad_audio") from None


# ------------------------------------------------------------------------ responses

def stream_events(transcript: Transcript) -> Iterator[str]:
    """OpenAI's transcription stream: the text as one ``transcript.text.delta`` event (the
    transcript is complete before the first byte is sent), then ``transcript.text.done``;
    server-sent events."""
    for event in ({"type": "transcript.text.delta", "delta": transcript.text},
                  {"type": "transcript.text.done", "text": transcript.text}):
        yield f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"


def transcript_body(transcript: Transcript, response_format: str) -> Any:
    """The response for ``response_format``: a dict (json, verbose_json) or a string."""
    if response_format == "text":
        return transcript.text
    if response_format == "json":
        return {"text": transcript.text}
    return {
        "task": "transcribe", "language": "english",
        "duration": round(transcript.duration_s, 3), "text": transcript.text,
        "words": [{"word": w.word, "start": round(w.start_s, 2), "end": round(w.end_s, 2)}
                  for w in transcript.words],
        "segments": [{"id": 0, "start": 0.0, "end": round(transcript.duration_s, 3),
                      "text": transcript.text}],
        "entities": [{"entity": h.entity, "start": round(h.start_s, 2),
                      "end": round(h.end_s, 2), "first_word": h.first_word,
                      "last_word": h.last_word, "technique": h.technique,
                      "phone_score": None if h.phone_score is None
                      else round(h.phone_score, 2)}
                     for h in transcript.entities],
    }


# ---------------------------------------------------------------------------- the app

def create_app(config: ServerConfig | None = None, transcriber: Any = None) -> Any:
    """The ASGI app (FastAPI; the ``serve`` extra). Run it with ``ctc-biasing serve``, any
    ASGI server (``uvicorn 'biasing.serve:create_app' --factory``) or Ray Serve.

    Args:
        config: model, decoder, batching, limits and API key (default: the bundled model,
            two decoding processes, no key).
        transcriber: a ready :class:`biasing.Transcriber` to serve instead of loading
            ``config.model`` (only with ``config.workers == 0``; tests, notebooks).
    """
    config = config or ServerConfig()
    server = Server(config, transcriber)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    app = FastAPI(title="ctc-biasing", lifespan=lifespan,
                  description="CTC speech recognition with per-request entity lists.")
    app.state.server = server
    limit = config.limits.audio_bytes + config.limits.entities_bytes + _FORM_SLACK
    app.add_middleware(Gate, api_key=config.resolved_api_key(),
                       bounded_paths=frozenset({TRANSCRIPTIONS}), limit=limit,
                       timeout_s=config.body_timeout_s)

    def error(err: RequestError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status)

    @app.get("/healthz")
    async def healthz() -> Any:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Any:
        """Ready: the model and at least one decoding worker are loaded and the server is
        not stopping; ``live_workers`` counts the workers up now (one that died is counted
        out until its replacement has loaded)."""
        pool = server.pool
        live = pool.live if pool is not None else 0
        if server.ready and not server.stopping and live > 0:
            return {"status": "ready" if live == pool.size else "degraded",  # type: ignore[union-attr]
                    "workers": pool.size, "live_workers": live,  # type: ignore[union-attr]
                    "pending": server.pending}
        status = "stopping" if server.stopping else "failed" if server.problem else \
            "starting" if not server.ready else "no_live_workers"
        return JSONResponse({"status": status, "problem": server.problem,
                             "live_workers": live}, status_code=503)

    @app.get(MODELS)
    async def models() -> Any:
        """The one model this server runs, in OpenAI's list shape."""
        return {"object": "list", "data": [{"id": config.model, "object": "model",
                                            "created": server.started,
                                            "owned_by": "ctc-biasing"}]}

    @app.post(TRANSCRIPTIONS)
    async def transcriptions(request: Request) -> Any:
        """Transcribe the uploaded ``file`` with the request's ``entities``."""
        try:
            server.may_read()
        except RequestError as err:
            return error(err)
        server.reading += 1
        try:
            audio, filename, fields = await _read_form(request, config, limit)
        except RequestError as err:
            return error(err)
        finally:
            server.reading -= 1
        try:
            server.admit()
        except RequestError as err:
            return error(err)
        server.pending += 1
        try:
            parsed = parse_fields(fields, config.limits)
            transcript = await server.transcribe(audio, filename, parsed)
        except RequestError as err:
            return error(err)
        finally:
            server.pending -= 1
        if parsed.stream:
            return StreamingResponse(stream_events(transcript), media_type="text/event-stream")
        body = transcript_body(transcript, parsed.response_format)
        if isinstance(body, str):
            return PlainTextResponse(body)
        return JSONResponse(body)

    return app


async def _read_form(request: Any, config: ServerConfig, limit: int,
                     ) -> tuple[bytes, str, list[tuple[str, str]]]:
    """The uploaded file's bytes and name, and the text fields as (name, value) pairs,
    within the limits (the body's size and time are bounded by :class:`.access.Gate`)."""
    limits = config.limits
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise RequestError(400, f"expected a multipart/form-data body (fields 'file', "
                                f"'entities', ...), got content type {content_type[:80]!r}",
                           None, "not_multipart")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(f"{int(declared):,} bytes", limits)
    try:
        # fields may be as large as the whole body: the list's own limits are checked
        # (and named) by parse_fields, the body's by the gate
        form = await request.form(max_files=2, max_fields=limits.entities + 32,
                                  max_part_size=limit)
    except BodyTooLarge:
        raise _too_large(f"over {limit:,} bytes", limits) from None
    except BodyTimeout:
        raise RequestError(408, f"the request body did not arrive within "
                                f"{config.body_timeout_s:g} s", None,
                           "request_timeout") from None
    except Exception as err:  # noqa: BLE001 - Starlette's parser errors are the client's
        raise RequestError(400, f"malformed multipart body: {getattr(err, 'detail', err)}",
                           None, "malformed_body") from None
    audio, filename = None, "audio"
    fields: list[tuple[str, str]] = []
    try:
        for key, value in form.multi_items():
            if key == "file" and not hasattr(value, "read"):
                raise RequestError(400, "field 'file' is text; upload the audio itself as a "
                                        "file part (this server never opens a path or URL it "
                                        "is given)", "file", "file_not_uploaded")
            if not hasattr(value, "read"):
                fields.append((key, value))
                continue
            data = await value.read()
            if key == "file":
                if audio is not None:
                    raise RequestError(400, "field 'file' is given more than once", "file")
                audio, filename = data, value.filename or "audio"
                continue
            if key != "entities":
                raise RequestError(400, f"field {key[:40]!r} is a file; only 'file' and "
                                        f"'entities' may be", key[:40])
            try:
                fields.append((key, data.decode("utf-8")))
            except UnicodeDecodeError as err:
                raise RequestError(400, f"entities file is not UTF-8 text (byte "
                                        f"{err.start}: {data[err.start:err.start + 1]!r})",
                                   "entities") from None
    finally:
        await form.close()
    if audio is None:
        raise RequestError(400, "no 'file' field: upload the audio as multipart field "
                                "'file'", "file", "missing_file")
    if len(audio) > limits.audio_bytes:
        raise RequestError(413, f"uploaded file is {len(audio):,} bytes, more than this "
                                f"server's limit of {limits.audio_bytes:,}", "file",
                           "audio_too_large")
    return audio, filename, fields


def _too_large(size: str, limits: Limits) -> RequestError:
    return RequestError(413, f"request body is {size}, more than this server "
                             f"accepts (audio up to {limits.audio_bytes:,} bytes plus an "
                             f"entity list)", None, "request_too_large")
