"""What a server runs and what it accepts: :class:`ServerConfig` and its :class:`Limits`."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..decoders import DEFAULT_BEAM_WIDTH
from ..entities import MAX_ENTITY_CHARS
from ..models import DEFAULT_MODEL

MiB = 1 << 20
API_KEY_ENV = "CTC_BIASING_API_KEY"  # the bearer token, when the config gives none
API_KEY_FILE_ENV = "CTC_BIASING_API_KEY_FILE"  # a file holding it (not in argv or `ps`)


@dataclass(frozen=True)
class Limits:
    """The most a request may ask for; more is refused with a 4xx JSON error."""

    audio_bytes: int = 25 * MiB  # the uploaded file (OpenAI's own limit is 25 MB)
    audio_s: float = 300.0  # its duration, read from the header before decoding
    entities: int = 10_000  # entries in one request's list
    entity_chars: int = MAX_ENTITY_CHARS  # characters in one entry

    def __post_init__(self) -> None:
        for name in ("audio_bytes", "entities", "entity_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"limit {name} must be a positive integer, got {value!r}")
        if not (isinstance(self.audio_s, (int, float)) and math.isfinite(self.audio_s)
                and self.audio_s > 0):
            raise ValueError(f"limit audio_s must be a positive number, got {self.audio_s!r}")

    @property
    def entities_bytes(self) -> int:
        """The most bytes an entities field may hold: every entry at full length with a
        weight."""
        return self.entities * (4 * self.entity_chars + 32)


@dataclass(frozen=True)
class ServerConfig:
    """How ``ctc-biasing serve`` runs (see :func:`biasing.serve.create_app`).

    The model, decoder and adapter settings are those of :class:`biasing.Transcriber`;
    ``options`` are its decoder options (``BiasingOptions`` fields), the defaults a request
    may override (``weight``, ``phonetic``, ``adapter``, ``merge_spots``).
    """

    model: str = DEFAULT_MODEL  # "default", "quartznet:DIR" or "hf:DIR"
    device: str = "cpu"  # of the acoustic model
    threads: int | None = None  # torch threads of the acoustic model (None: all cores)
    kenlm: str | None = None  # KenLM model for the decoder
    beam_width: int = DEFAULT_BEAM_WIDTH
    phonetic: bool | None = None  # the phone head's techniques (None: when the model has one)
    companion: str | None = "default"  # for a model without a phone head: a model with one
    # run beside it ("default": the bundled model; None: none)
    adapter: bool | str | None = None  # the contextual adapter loaded (True: the model
    # folder's); requests use it when they ask for it ("adapter=true")
    adapter_default: bool = False  # whether a request that does not say uses it
    options: Mapping[str, Any] = field(default_factory=dict)
    workers: int = 2  # decoding processes; 0 decodes in this process, one at a time
    max_batch: int = 8  # acoustic-model batch across concurrent requests
    max_wait_ms: float = 10.0  # how long the first request of a batch waits for others
    max_pending: int = 64  # requests in flight (body received) before new ones get 503
    max_uploads: int = 256  # request bodies being received at once before new ones get
    # 503 (uploads spool to disk; a slow one is cut off after body_timeout_s)
    list_cache: int = 16  # compiled entity lists kept per decoding process
    limits: Limits = field(default_factory=Limits)
    api_key: str | None = None  # bearer token every request but /healthz and /readyz must
    # carry; None: $CTC_BIASING_API_KEY, else the file $CTC_BIASING_API_KEY_FILE names,
    # else no key (and then only loopback clients are served)
    body_timeout_s: float = 60.0  # a request body not received within this is refused (408)
    health_interval_s: float = 2.0  # how often idle decoding processes are checked

    def __post_init__(self) -> None:
        for name, low in (("workers", 0), ("max_batch", 1), ("max_pending", 1),
                          ("max_uploads", 1),
                          ("list_cache", 1), ("beam_width", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not (isinstance(self.max_wait_ms, (int, float)) and 0 <= self.max_wait_ms <= 10_000):
            raise ValueError(f"max_wait_ms must be from 0 to 10000, got {self.max_wait_ms!r}")
        for name in ("body_timeout_s", "health_interval_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key is empty: give a token or None")
        if self.adapter_default and not self.adapter:
            raise ValueError("adapter_default=True needs an adapter (adapter=True or a file)")

    def resolved_api_key(self) -> str | None:
        """The key requests must carry: ``api_key``, else ``$CTC_BIASING_API_KEY``, else
        the first line of the file ``$CTC_BIASING_API_KEY_FILE`` names; None for no key.
        Every way of starting the server (``ctc-biasing serve``, ``uvicorn --factory``,
        ``create_app``) resolves it here.

        Raises:
            ValueError: the key file cannot be read or is empty.
        """
        if self.api_key is not None:
            return self.api_key
        key = os.environ.get(API_KEY_ENV, "").strip()
        if key:
            return key
        path = os.environ.get(API_KEY_FILE_ENV, "").strip()
        return read_api_key(path) if path else None

    def transcriber_arguments(self) -> dict[str, Any]:
        """Keyword arguments of the :class:`biasing.Transcriber` every decoding process
        builds (picklable: they travel to spawned workers)."""
        return dict(self.options, model=self.model, kenlm_model_path=self.kenlm,
                    beam_width=self.beam_width, phonetic=self.phonetic,
                    companion=self.companion,
                    adapter=self.adapter or None, list_cache=self.list_cache,
                    pronunciation_cache=False)


def read_api_key(path: str) -> str:
    """The key in ``path``: its first line, stripped.

    Raises:
        ValueError: the file cannot be read, is not UTF-8 text, or its first line is empty.
    """
    from ..readers import read_text

    try:
        text = read_text(path, "API key file")
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read the API key: {err}") from None
    key = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not key:
        raise ValueError(f"API key file {path} is empty")
    return key
