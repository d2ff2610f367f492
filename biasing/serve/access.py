"""Who may call the server, and how much and how slowly it may send: a pure ASGI
middleware in front of the app, the same whichever way the server was started
(``ctc-biasing serve``, ``uvicorn --factory``, ``create_app`` in another ASGI server).

- **Key**: with an API key configured, every path but ``/healthz`` and ``/readyz`` (the
  OpenAPI page and schema included) needs ``Authorization: Bearer KEY``, compared in
  constant time; anything else gets 401.
- **No key**: only loopback clients are served (403 for others), whatever address the
  server was bound to, so a server started without a key never serves the network.
- **Bodies** of the transcription endpoint are counted as they arrive and timed: more than
  ``limit`` bytes raises :class:`BodyTooLarge` and a body not complete within
  ``timeout_s`` raises :class:`BodyTimeout` inside the endpoint's read, which turns them
  into 413 and 408. A client that sends headers and then trickles its body holds nothing
  but its own connection, and not for long.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .form import RequestError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})


class BodyTooLarge(Exception):
    """The request body passed the server's limit while it was read."""


class BodyTimeout(Exception):
    """The request body did not arrive within the server's time limit."""


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (an address or "localhost") is this machine."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Gate:
    """The middleware (module docs).

    Args:
        app: the ASGI app behind it.
        api_key: the key requests must carry; None: loopback clients only.
        bounded_paths: paths whose request bodies are counted and timed.
        limit: most body bytes those paths accept.
        timeout_s: most seconds their body may take to arrive.
    """

    def __init__(self, app: App, api_key: str | None, bounded_paths: frozenset[str],
                 limit: int, timeout_s: float) -> None:
        self.app = app
        self._key = None if api_key is None else api_key.encode()
        self._bounded = bounded_paths
        self._limit = limit
        self._timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await _send_error(send, refusal)
            return
        if scope["path"] in self._bounded:
            receive = _bounded(receive, self._limit, time.monotonic() + self._timeout_s)
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> RequestError | None:
        """Why the caller may not use this path, if it may not."""
        if scope["path"] in PUBLIC_PATHS:
            return None
        if self._key is None:
            client = scope.get("client")
            if not is_loopback(client[0] if client else None):
                return RequestError(403, "this server has no API key and serves this "
                                    "machine only: start it with a key "
                                    "(CTC_BIASING_API_KEY_FILE) to serve others",
                                    code="loopback_only")
            return None
        headers = dict(scope.get("headers") or [])
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                 self._key):
            return RequestError(401, "missing or wrong API key: send 'Authorization: "
                                "Bearer <key>'", code="invalid_api_key")
        return None


def _bounded(receive: Receive, limit: int, deadline: float) -> Receive:
    """``receive`` that raises once the body passes ``limit`` bytes or ``deadline``."""
    import asyncio

    received = 0

    async def counted() -> Message:
        nonlocal received
        left = deadline - time.monotonic()
        if left <= 0:
            raise BodyTimeout
        try:
            message = await asyncio.wait_for(receive(), left)
        except asyncio.TimeoutError:
            raise BodyTimeout from None
        received += len(message.get("body", b""))
        if received > limit:
            raise BodyTooLarge
        return message

    return counted


async def _send_error(send: Send, error: RequestError) -> None:
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if error.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
