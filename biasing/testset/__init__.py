"""Synthetic-voice test sets for an entity list (``ctc-biasing make-testset``).

Write a few sentences that mention your entities, let a dozen offline text-to-speech
voices read them, and measure with ``ctc-biasing eval`` how often the recogniser gets the
entities right. ``docs/make-testset.md`` is the guide; ``install_voices.sh`` (beside this
file, :data:`INSTALL_SCRIPT`) installs the engines from Debian and PyPI.

- :mod:`.text`: the sentences file, text for the voices, VoxPopuli normalisation;
- :mod:`.voices`: the voice catalogue and the engines;
- :mod:`.make`: audio post-processing and the output layout (:func:`make_testset`).
"""

from __future__ import annotations

from .make import MadeTestset, make_testset, voice_table
from .text import SentenceRow, parse_sentences, tts_text
from .voices import INSTALL_SCRIPT, VOICES, SynthesisError, Voice, choose_voices

__all__ = ["INSTALL_SCRIPT", "VOICES", "MadeTestset", "SentenceRow", "SynthesisError", "Voice",
           "choose_voices", "make_testset", "parse_sentences", "tts_text", "voice_table"]
