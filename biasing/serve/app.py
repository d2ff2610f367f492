"""The HTTP app: ``POST /v1/audio/transcriptions`` (OpenAI's speech-to-text convention plus
our entity list), ``/healthz`` and ``/readyz``.

A request is checked (fields, list, size, format) before any model work; its list is
compiled in the decoding worker it will be decoded in (a list the model cannot spell is
refused there, before the forward pass), its audio joins the next acoustic-model batch,
and its output is decoded with its own list and options. The server never opens a path a
client names: audio comes only as an upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from typing import Any

try:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse
except ImportError as _missing:  # pragma: no cover - depends on the environment
    raise ImportError("the server needs FastAPI and uvicorn: pip install "
                      "'ctc-biasing[serve]'") from _missing

from ..transcribe import Transcript
from .batching import Batcher
from .form import RequestError, TranscriptionRequest, parse_fields
from .settings import Limits, ServerConfig
from .workers import DecodePool, WorkerDied

logger = logging.getLogger(__name__)
TRANSCRIPTIONS = "/v1/audio/transcriptions"
_FORM_SLACK = 64 * 1024  # multipart headers and small fields, beyond audio and list


class _BodyTooLarge(Exception):
    pass


class Server:
    """The state behind the app: the model, the batcher, the decoding pool."""

    def __init__(self, config: ServerConfig, transcriber: Any = None) -> None:
        self.config = config
        self.transcriber = transcriber
        self.batcher: Batcher | None = None
        self.pool: DecodePool | None = None
        self.ready = False
        self.stopping = False
        self.pending = 0
        self.problem: str | None = None  # why the workers failed to start
        self._warming: asyncio.Task[None] | None = None

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

    async def stop(self) -> None:
        """Refuse new requests, finish those in flight, stop the workers."""
        self.ready = False
        self.stopping = True
        if self._warming is not None:
            self._warming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._warming
        for _ in range(600):  # uvicorn waits for open requests; a test client may not
            if not self.pending:
                break
            await asyncio.sleep(0.05)
        if self.batcher is not None:
            await self.batcher.stop()
        if self.pool is not None:
            await asyncio.to_thread(self.pool.shutdown)

    # ------------------------------------------------------------------ a request

    def authorize(self, header: str | None) -> None:
        key = self.config.api_key
        if key is None:
            return
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                 key.encode()):
            raise RequestError(401, "missing or wrong API key: send 'Authorization: Bearer "
                                    "<key>'", None, "invalid_api_key")

    def admit(self) -> None:
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
        if request.phonetic and not transcriber.phonetic:
            raise RequestError(400, "phonetic=true, but this server's model has no phone head "
                                    "(or phonetic techniques are off)", "phonetic")
        if request.adapter and transcriber.adapter is None:
            raise RequestError(400, "adapter=true, but this server runs without a contextual "
                                    "adapter (start it with --adapter)", "adapter")
        wants = self.config.adapter_default if request.adapter is None else request.adapter
        weight = transcriber.decoder.options.weight if request.weight is None \
            else request.weight
        use_adapter = bool(wants and transcriber.adapter is not None and request.entities
                           and weight > 0)
        rate = transcriber.model.sample_rate
        wave, _ = await asyncio.gather(
            asyncio.to_thread(_read_audio, audio, filename, rate, self.config.limits),
            self._check_list(request))
        layers = transcriber.adapter.layers if use_adapter else ()
        output = await self.batcher.forward(wave, layers)
        try:
            return await self.pool.decode(output, request.entities, source=filename,
                                          duration_s=len(wave) / rate, weight=request.weight,
                                          phonetic=request.phonetic, adapter=use_adapter,
                                          merge_spots=request.merge_spots)
        except WorkerDied as err:
            raise RequestError(503, str(err), None, "worker_died") from None

    async def _check_list(self, request: TranscriptionRequest) -> None:
        assert self.pool is not None
        try:
            await self.pool.check(request.entities)
        except WorkerDied as err:
            raise RequestError(503, str(err), None, "worker_died") from None
        except ValueError as err:
            why = str(err).split(". Pass on_unrepresentable=")[0]
            raise RequestError(400, f"entities: {why}. Send skip_unrepresentable=true to "
                                    f"drop them.", "entities",
                               "unrepresentable_entities") from None


def _read_audio(data: bytes, filename: str, rate: int, limits: Limits) -> Any:
    from ..audio import audio_info, decode_audio

    name = f"uploaded file {filename!r}"
    if not data:
        raise RequestError(400, f"{name} is empty", "file")
    try:
        info = audio_info(data, name)
    except ValueError as err:
        raise RequestError(415, str(err), "file", "unsupported_audio") from None
    if info.duration_s > limits.audio_s:
        raise RequestError(413, f"{name} is {info.duration_s:.1f} s long, more than this "
                                f"server's limit of {limits.audio_s:g} s", "file",
                           "audio_too_long")
    try:
        return decode_audio(data, rate, name)
    except ValueError as err:
        raise RequestError(400, str(err), "file", "bad_audio") from None


# ------------------------------------------------------------------------ responses

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

    def error(err: RequestError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
        return JSONResponse(err.body(), status_code=err.status, headers=headers)

    @app.get("/healthz")
    async def healthz() -> Any:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Any:
        """The model and every decoding worker are loaded, and the server is not stopping."""
        if server.ready and not server.stopping:
            return {"status": "ready", "workers": server.pool.size if server.pool else 0,
                    "pending": server.pending}
        status = "stopping" if server.stopping else "failed" if server.problem else "starting"
        return JSONResponse({"status": status, "problem": server.problem}, status_code=503)

    @app.post(TRANSCRIPTIONS)
    async def transcriptions(request: Request) -> Any:
        """Transcribe the uploaded ``file`` with the request's ``entities``."""
        try:
            server.authorize(request.headers.get("authorization"))
            server.admit()
        except RequestError as err:
            return error(err)
        server.pending += 1
        try:
            audio, filename, fields = await _read_form(request, config.limits, limit)
            parsed = parse_fields(fields, config.limits)
            transcript = await server.transcribe(audio, filename, parsed)
        except RequestError as err:
            return error(err)
        finally:
            server.pending -= 1
        body = transcript_body(transcript, parsed.response_format)
        if isinstance(body, str):
            return PlainTextResponse(body)
        return JSONResponse(body)

    return app


async def _read_form(request: Any, limits: Limits, limit: int) -> tuple[bytes, str,
                                                                        dict[str, str]]:
    """The uploaded file's bytes and name, and the text fields, within the limits."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise RequestError(400, f"expected a multipart/form-data body (fields 'file', "
                                f"'entities', ...), got content type {content_type!r}",
                           None, "not_multipart")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(f"{int(declared):,} bytes", limits)
    received = 0
    receive = request._receive

    async def counted() -> Any:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise _BodyTooLarge
        return message

    request._receive = counted
    try:
        form = await request.form(max_files=2, max_fields=32,
                                  max_part_size=limits.entities_bytes + _FORM_SLACK)
    except _BodyTooLarge:
        raise _too_large(f"over {limit:,} bytes", limits) from None
    except Exception as err:  # noqa: BLE001 - Starlette's parser errors are the client's
        raise RequestError(400, f"malformed multipart body: {getattr(err, 'detail', err)}",
                           None, "malformed_body") from None
    audio, filename = None, "audio"
    fields: dict[str, str] = {}
    for key, value in form.multi_items():
        if key in fields or (key == "file" and audio is not None):
            raise RequestError(400, f"field {key!r} is given more than once", key)
        if key == "file" and not hasattr(value, "read"):
            raise RequestError(400, "field 'file' is text; upload the audio itself as a file "
                                    "part (this server never opens a path or URL it is "
                                    "given)", "file", "file_not_uploaded")
        if hasattr(value, "read"):  # an upload
            data = await value.read()
            if key == "file":
                audio, filename = data, value.filename or "audio"
                continue
            if key != "entities":
                raise RequestError(400, f"field {key!r} is a file; only 'file' and "
                                        f"'entities' may be", key)
            try:
                value = data.decode("utf-8")
            except UnicodeDecodeError as err:
                raise RequestError(400, f"entities file is not UTF-8 text (byte "
                                        f"{err.start}: {data[err.start:err.start + 1]!r})",
                                   "entities") from None
        fields[key] = value
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
