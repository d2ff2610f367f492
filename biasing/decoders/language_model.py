"""Unigram boosting through KenLM: listed words the LM does not know form a BOOST class.

An n-gram LM gives a word it has never seen the unknown-word penalty, which is exactly what
a new name is. :class:`BoostedLanguageModel` wraps pyctcdecode's :class:`LanguageModel` for
one decode call: a listed word that is out of the LM's vocabulary is scored with the class
log-probability ``boost_logp`` (natural log) instead of KenLM's ``<unk>`` score plus the
penalty, and partial words on the way to a listed word are not penalised. Words the LM
knows keep their LM score. The LM file is never modified, and the list can change per call.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from typing import Any

from pyctcdecode.constants import LOG_BASE_CHANGE_FACTOR
from pyctcdecode.language_model import AbstractLanguageModel, LanguageModel

DEFAULT_BOOST_LOGP = -8.0


class BoostWords:
    """The listed words that need the class, with a fast prefix test (sorted list + bisect)."""

    def __init__(self, words: Iterable[str], language_model: LanguageModel) -> None:
        kenlm_model = language_model._kenlm_model
        known = language_model._unigram_set
        self.words = frozenset(w for w in words
                               if w not in kenlm_model or (known and w not in known))
        self._sorted = sorted(self.words)

    def __bool__(self) -> bool:
        return bool(self.words)

    def is_prefix(self, part: str) -> bool:
        i = bisect.bisect_left(self._sorted, part)
        return i < len(self._sorted) and self._sorted[i].startswith(part)


class BoostedLanguageModel(AbstractLanguageModel):
    """pyctcdecode LM with the BOOST class for ``boost`` words (see module docs).

    Args:
        base: the decoder's language model (alpha, beta and offsets are read from it).
        boost: words scored with the class.
        boost_logp: class log-probability in nats, used instead of ``<unk>`` + penalty.
    """

    def __init__(self, base: LanguageModel, boost: BoostWords, boost_logp: float) -> None:
        self._base = base
        self._boost = boost
        # KenLM scores are log10; the class score joins them before pyctcdecode's base change.
        self._boost_log10 = boost_logp / math.log(10)

    @property
    def order(self) -> int:
        return self._base.order

    def get_start_state(self) -> Any:
        return self._base.get_start_state()

    def score_partial_token(self, partial_token: str) -> float:
        if self._boost.is_prefix(partial_token):
            return 0.0
        return self._base.score_partial_token(partial_token)

    def score(self, prev_state: Any, word: str, is_last_word: bool = False,
              ) -> tuple[float, Any]:
        if word not in self._boost.words:
            return self._base.score(prev_state, word, is_last_word=is_last_word)
        base = self._base
        end_state = type(prev_state)()
        base._kenlm_model.BaseScore(prev_state, word, end_state)  # advances the context
        lm_score = self._boost_log10
        if is_last_word:
            lm_score += base._get_raw_end_score(end_state)
        return base.alpha * lm_score * LOG_BASE_CHANGE_FACTOR + base.beta, end_state
