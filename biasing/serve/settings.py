"""What a server runs and what it accepts: :class:`ServerConfig` and its :class:`Limits`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..decoders import DEFAULT_BEAM_WIDTH
from ..entities import MAX_ENTITY_CHARS
from ..models import DEFAULT_MODEL

MiB = 1 << 20
API_KEY_ENV = "CTC_BIASING_API_KEY"  # the bearer token, when --api-key is not given


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
    adapter: bool | str | None = None  # the contextual adapter loaded (True: the model
    # folder's); requests use it when they ask for it ("adapter=true")
    adapter_default: bool = False  # whether a request that does not say uses it
    options: Mapping[str, Any] = field(default_factory=dict)
    workers: int = 2  # decoding processes; 0 decodes in this process, one at a time
    max_batch: int = 8  # acoustic-model batch across concurrent requests
    max_wait_ms: float = 10.0  # how long the first request of a batch waits for others
    max_pending: int = 64  # requests in flight before new ones get 503
    list_cache: int = 16  # compiled entity lists kept per decoding process
    limits: Limits = field(default_factory=Limits)
    api_key: str | None = None  # bearer token every transcription request must carry

    def __post_init__(self) -> None:
        for name, low in (("workers", 0), ("max_batch", 1), ("max_pending", 1),
                          ("list_cache", 1), ("beam_width", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not (isinstance(self.max_wait_ms, (int, float)) and 0 <= self.max_wait_ms <= 10_000):
            raise ValueError(f"max_wait_ms must be from 0 to 10000, got {self.max_wait_ms!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key is empty: give a token or None")
        if self.adapter_default and not self.adapter:
            raise ValueError("adapter_default=True needs an adapter (adapter=True or a file)")

    def transcriber_arguments(self) -> dict[str, Any]:
        """Keyword arguments of the :class:`biasing.Transcriber` every decoding process
        builds (picklable: they travel to spawned workers)."""
        return dict(self.options, model=self.model, kenlm_model_path=self.kenlm,
                    beam_width=self.beam_width, phonetic=self.phonetic,
                    adapter=self.adapter or None, list_cache=self.list_cache,
                    pronunciation_cache=False)
