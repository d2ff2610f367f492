"""Serving: an HTTP server with per-request entity lists (the ``serve`` extra).

>>> from biasing.serve import ServerConfig, create_app
>>> app = create_app(ServerConfig(model="default", workers=2))  # doctest: +SKIP

``ctc-biasing serve`` runs it under uvicorn; ``uvicorn 'biasing.serve:create_app'
--factory`` or Ray Serve run it too. The request checks (:mod:`.form`) and settings need
no web framework; :func:`create_app` needs FastAPI.
"""

from __future__ import annotations

from typing import Any

from .form import RequestError
from .settings import API_KEY_ENV, API_KEY_FILE_ENV, Limits, ServerConfig

__all__ = ["API_KEY_ENV", "API_KEY_FILE_ENV", "Limits", "RequestError", "ServerConfig",
           "create_app"]


def create_app(config: ServerConfig | None = None, transcriber: Any = None) -> Any:
    """The ASGI app (see :func:`biasing.serve.app.create_app`)."""
    from .app import create_app as create

    return create(config, transcriber)
