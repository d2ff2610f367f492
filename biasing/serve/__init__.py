"""Serving: an HTTP server with per-request entity lists (the ``serve`` extra).

>>> from biasing.serve import ServerConfig, create_app
>>> app = create_app(ServerConfig(model="default", workers=2))  # doctest: +SKIP

``ctc-biasing serve`` runs it under uvicorn; ``uvicorn 'biasing.serve:create_app'
--factory`` or Ray Serve run it too.
"""

from __future__ import annotations

from .app import create_app
from .form import RequestError
from .settings import API_KEY_ENV, Limits, ServerConfig

__all__ = ["API_KEY_ENV", "Limits", "RequestError", "ServerConfig", "create_app"]
