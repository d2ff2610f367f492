"""ctc-biasing: teach CTC speech recognisers new words at inference time.

>>> from biasing import build_biased_decoder
>>> decoder = build_biased_decoder(labels)                    # doctest: +SKIP
>>> decoder.decode(logprobs, entities=["Zelenskyy", "Fremont"]) # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from .entities import Entity, EntityList

__all__ = ["BiasedBeamSearchDecoder", "BiasingOptions", "Entity", "EntityList", "Hypothesis",
           "Transcriber", "build_biased_decoder"]
__version__ = "0.1.0"

_LAZY = {"BiasedBeamSearchDecoder", "BiasingOptions", "Hypothesis", "build_biased_decoder"}


def __getattr__(name: str) -> Any:
    # keep `import biasing` cheap: the decoder and the transcriber load on first use
    if name in _LAZY:
        from . import decoders

        return getattr(decoders, name)
    if name == "Transcriber":
        from .transcribe import Transcriber

        return Transcriber
    raise AttributeError(f"module 'biasing' has no attribute {name!r}")
