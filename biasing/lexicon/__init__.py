"""Pronunciations of entities and the spellings they suggest (needs the ``g2p`` extra).

- :mod:`~biasing.lexicon.g2p`: offline G2P, CMUdict then g2p_en's neural model in numpy;
- :mod:`~biasing.lexicon.lexicon`: :class:`Lexicon`, user entries + G2P, per entity;
- :mod:`~biasing.lexicon.alignment`: EM letter-phone alignment trained on CMUdict;
- :mod:`~biasing.lexicon.g2g`: :func:`spelling_variants`, sound-alike spellings.

Importing this package is cheap: numpy and the data files load on first use.

>>> from biasing.lexicon import spelling_variants
>>> spelling_variants(["Zelenskyy"])["Zelenskyy"]     # doctest: +SKIP
[('zelensky', -0.3), ...]
"""

from __future__ import annotations

from .alignment import AlignmentOptions, AlignmentTable, align_word, load_alignment
from .arpabet import Phones, Pronunciation, parse_pronunciation, strip_stress
from .g2g import G2GOptions, spelling_variants, word_variants
from .g2p import pronounce, pronounce_batch
from .lexicon import Lexicon, entity_words

__all__ = ["AlignmentOptions", "AlignmentTable", "G2GOptions", "Lexicon", "Phones",
           "Pronunciation", "align_word", "entity_words", "load_alignment",
           "parse_pronunciation", "pronounce", "pronounce_batch", "spelling_variants",
           "strip_stress", "word_variants"]
