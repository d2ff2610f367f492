"""Word-level KenLM scoring for the beam search, and the BOOST class for listed words.

:class:`LanguageModel` scores words exactly as pyctcdecode 0.5.0 does (so the two searches
agree), through the ``kenlm`` module directly:

- a completed word: ``alpha * log10 P(word | context) * ln(10) + beta``; a word outside
  the unigram list (or KenLM's vocabulary) also gets ``unk_score_offset`` (log10 units) before
  the scaling; the last word of an utterance also gets ``P(</s>)`` when
  ``score_boundary``;
- a partial word: ``unk_score_offset`` when it starts no known word, times ``len / 6`` when
  it is longer than 6 characters (pyctcdecode adds this unscaled);
- directory format (``save_to_dir``/``load_from_dir``): ``attrs.json``, ``unigrams.txt``
  and the KenLM file, as pyctcdecode writes them.

The BOOST class (:class:`BoostedLanguageModel`): an n-gram LM gives a word it has never
seen the unknown-word penalty, which is exactly what a new name is. For one decode call,
listed words the LM does not know are scored with the class log-probability
``boost_logp`` (nats) instead, and partial words on the way to one are not penalised.
Words the LM knows keep their LM score; the LM file is never modified.
"""

from __future__ import annotations

import bisect
import json
import math
import os
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any, Protocol

from ..paths import copy_atomic, write_text_atomic

__all__ = ["DEFAULT_ALPHA", "DEFAULT_BETA", "DEFAULT_BOOST_LOGP", "DEFAULT_SCORE_LM_BOUNDARY",
           "DEFAULT_UNK_LOGP_OFFSET", "BoostWords", "BoostedLanguageModel", "LanguageModel",
           "ScoringModel", "load_unigrams_from_arpa"]

DEFAULT_ALPHA = 0.5  # weight of the LM score
DEFAULT_BETA = 1.5  # bonus per word
DEFAULT_UNK_LOGP_OFFSET = -10.0  # log10 penalty of a word outside the vocabulary
DEFAULT_SCORE_LM_BOUNDARY = True  # score <s> and </s>
DEFAULT_BOOST_LOGP = -8.0  # the BOOST class's log-probability (nats)
LOG_BASE_CHANGE_FACTOR = 1.0 / math.log10(math.e)  # KenLM scores log10; we add natural logs
AVG_TOKEN_LEN = 6  # partial words longer than this pay proportionally more
PARTIAL_CACHE = 200_000  # word parts whose partial score a model remembers


class ScoringModel(Protocol):
    """What the search asks of a language model (pyctcdecode's LMs fit it too)."""

    @property
    def order(self) -> int: ...

    def get_start_state(self) -> Any: ...

    def score_partial_token(self, partial_token: str) -> float: ...

    def score(self, prev_state: Any, word: str, is_last_word: bool = False,
              ) -> tuple[float, Any]: ...


def load_unigrams_from_arpa(path: str | os.PathLike[str]) -> set[str]:
    """The words of an ARPA file's ``\\1-grams:`` section.

    Raises:
        ValueError: the file has no unigrams.
    """
    unigrams = set()
    with open(path, encoding="utf-8") as stream:
        started = False
        for line in stream:
            line = line.strip()
            if line == "\\1-grams:":
                started = True
            elif line == "\\2-grams:":
                break
            if started and line:
                parts = line.split("\t")
                if len(parts) == 3:
                    unigrams.add(parts[1])
    if not unigrams:
        raise ValueError(f"no unigrams found in the ARPA file {path}")
    return unigrams


class _Prefixes:
    """Which strings start a word of a set (a sorted list and binary search)."""

    def __init__(self, words: Iterable[str]) -> None:
        self._sorted = sorted(words)

    def __bool__(self) -> bool:
        return bool(self._sorted)

    def starts(self, part: str) -> bool:
        i = bisect.bisect_left(self._sorted, part)
        return i < len(self._sorted) and self._sorted[i].startswith(part)


class LanguageModel:
    """A KenLM model with pyctcdecode's scoring (see the module docs).

    Args:
        kenlm_model: a loaded ``kenlm.Model``.
        unigrams: the known words; None: every partial word counts as unknown. Words KenLM
            does not know are dropped from the list.
        alpha, beta, unk_score_offset, score_boundary: see the module docs.
    """

    JSON_ATTRS = ("alpha", "beta", "unk_score_offset", "score_boundary")
    ATTRS_FILE = "attrs.json"
    UNIGRAMS_FILE = "unigrams.txt"

    def __init__(self, kenlm_model: Any, unigrams: Collection[str] | None = None,
                 alpha: float = DEFAULT_ALPHA, beta: float = DEFAULT_BETA,
                 unk_score_offset: float = DEFAULT_UNK_LOGP_OFFSET,
                 score_boundary: bool = DEFAULT_SCORE_LM_BOUNDARY) -> None:
        import kenlm  # the optional dependency, resolved once rather than per word scored

        self.kenlm_model = kenlm_model
        self.new_state: Callable[[], Any] = kenlm.State
        self._unigrams = ({w for w in set(unigrams) if w in kenlm_model}
                          if unigrams is not None else set())
        self._prefixes = _Prefixes(self._unigrams) if unigrams is not None else None
        self.alpha = alpha
        self.beta = beta
        self.unk_score_offset = unk_score_offset
        self.score_boundary = score_boundary
        self._partial: dict[str, float] = {}  # word part -> score_partial_token ...
        self._partial_offset = unk_score_offset  # ... at this unk_score_offset

    @property
    def order(self) -> int:
        """The n-gram order."""
        return int(self.kenlm_model.order)

    @property
    def unigrams(self) -> frozenset[str]:
        """The known words (empty when none were given)."""
        return frozenset(self._unigrams)

    def is_known(self, word: str) -> bool:
        """Whether ``word`` is scored without the unknown-word penalty."""
        return not ((self._unigrams and word not in self._unigrams)
                    or word not in self.kenlm_model)

    def get_start_state(self) -> Any:
        """The KenLM state before the first word (``<s>`` when ``score_boundary``)."""
        state = self.new_state()
        if self.score_boundary:
            self.kenlm_model.BeginSentenceWrite(state)
        else:
            self.kenlm_model.NullContextWrite(state)
        return state

    def raw_end_score(self, state: Any) -> float:
        """log10 P(</s> | state) when ``score_boundary``, else 0."""
        if not self.score_boundary:
            return 0.0
        return float(self.kenlm_model.BaseScore(state, "</s>", self.new_state()))

    def score_partial_token(self, partial_token: str) -> float:
        """The penalty of a word being spelled (see the module docs); remembered per word
        part (the same parts come back utterance after utterance) until the parameters
        change."""
        if self._partial_offset != self.unk_score_offset:  # the scores depend on it
            self._partial, self._partial_offset = {}, self.unk_score_offset
        found = self._partial.get(partial_token)
        if found is None:
            found = self._partial_score(partial_token)
            if len(self._partial) >= PARTIAL_CACHE:
                self._partial.clear()
            self._partial[partial_token] = found
        return found

    def _partial_score(self, partial_token: str) -> float:
        is_oov = 1.0 if self._prefixes is None else int(not self._prefixes.starts(partial_token))
        unk_score = self.unk_score_offset * is_oov
        if len(partial_token) > AVG_TOKEN_LEN:
            unk_score = unk_score * len(partial_token) / AVG_TOKEN_LEN
        return unk_score

    def score(self, prev_state: Any, word: str, is_last_word: bool = False,
              ) -> tuple[float, Any]:
        """(score in nats with alpha and beta applied, the state after ``word``)."""
        end_state = self.new_state()
        lm_score = self.kenlm_model.BaseScore(prev_state, word, end_state)
        if not self.is_known(word):
            lm_score += self.unk_score_offset
        if is_last_word:
            lm_score = lm_score + self.raw_end_score(end_state)
        return self.alpha * lm_score * LOG_BASE_CHANGE_FACTOR + self.beta, end_state

    def reset_params(self, **params: Any) -> None:
        """Change ``alpha``, ``beta``, ``unk_score_offset`` (floats) or ``score_boundary``
        (bool) in place; None leaves a value as it is.

        Raises:
            ValueError: a value of the wrong type (pyctcdecode's rule: floats must be floats).
        """
        for name, kind in (("alpha", float), ("beta", float), ("unk_score_offset", float),
                           ("score_boundary", bool)):
            value = params.get(name)
            if value is None:
                continue
            if not isinstance(value, kind):
                # ValueError, as pyctcdecode raises it, so callers catch the same thing
                raise ValueError(  # noqa: TRY004
                    f"{name} must be a {kind.__name__}. Got {type(value)}.")
            setattr(self, name, value)

    # ------------------------------------------------------------------ directory format

    def save_to_dir(self, directory: str | os.PathLike[str]) -> None:
        """Write ``attrs.json``, ``unigrams.txt`` and a copy of the KenLM file."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        attrs = {name: getattr(self, name) for name in self.JSON_ATTRS}
        write_text_atomic(folder / self.ATTRS_FILE, json.dumps(attrs))
        write_text_atomic(folder / self.UNIGRAMS_FILE,
                          "".join(w + "\n" for w in sorted(self._unigrams)))
        source = Path(os.fsdecode(self.kenlm_model.path))
        copy_atomic(source, folder / source.name)

    @staticmethod
    def parse_directory_contents(directory: str | os.PathLike[str]) -> dict[str, str]:
        """The three files of a saved LM folder.

        Raises:
            ValueError: not exactly ``attrs.json``, ``unigrams.txt`` and one ``.arpa``,
                ``.bin`` or ``.binary`` file (hidden files are ignored).
        """
        contents = [c for c in os.listdir(directory) if not c.startswith((".", "__"))]
        where = os.fspath(directory)
        if len(contents) != 3:
            raise ValueError(f"{where}: expected 3 files (attrs.json, unigrams.txt and a KenLM "
                             f"file), found {sorted(contents)}")
        for name in (LanguageModel.ATTRS_FILE, LanguageModel.UNIGRAMS_FILE):
            if name not in contents:
                raise ValueError(f"{where}: no {name} among {sorted(contents)}")
            contents.remove(name)
        if os.path.splitext(contents[0])[1] not in {".arpa", ".bin", ".binary"}:
            raise ValueError(f"{where}: the KenLM file must end in .arpa, .bin or .binary, "
                             f"found {contents[0]}")
        return {"json_attrs": os.path.join(directory, LanguageModel.ATTRS_FILE),
                "unigrams": os.path.join(directory, LanguageModel.UNIGRAMS_FILE),
                "kenlm": os.path.join(directory, contents[0])}

    @classmethod
    def load_from_dir(cls, directory: str | os.PathLike[str],
                      unigram_encoding: str | None = None) -> LanguageModel:
        """Read a folder written by :meth:`save_to_dir` (or by pyctcdecode)."""
        import kenlm

        files = cls.parse_directory_contents(directory)
        with open(files["json_attrs"], encoding="utf-8") as stream:
            attrs = json.load(stream)
        if set(attrs) != set(cls.JSON_ATTRS):
            raise ValueError(f"{files['json_attrs']}: expected the keys {cls.JSON_ATTRS}, "
                             f"found {sorted(attrs)}")
        with open(files["unigrams"], encoding=unigram_encoding or "utf-8") as stream:
            unigrams = stream.read().splitlines()
        return cls(kenlm.Model(files["kenlm"]), unigrams, **attrs)


class BoostWords:
    """The listed words that need the BOOST class, with a fast prefix test."""

    def __init__(self, words: Iterable[str], language_model: LanguageModel) -> None:
        self.words = frozenset(w for w in words if not language_model.is_known(w))
        self._prefixes = _Prefixes(self.words)

    def __bool__(self) -> bool:
        return bool(self.words)

    def is_prefix(self, part: str) -> bool:
        return self._prefixes.starts(part)


class BoostedLanguageModel:
    """A :class:`LanguageModel` with the BOOST class for ``boost`` words (module docs).

    Args:
        base: the decoder's language model (alpha, beta and offsets are read from it).
        boost: words scored with the class.
        boost_logp: class log-probability in nats, used instead of ``<unk>`` + penalty.
    """

    def __init__(self, base: LanguageModel, boost: BoostWords, boost_logp: float) -> None:
        self._base = base
        self._boost = boost
        # KenLM scores are log10; the class score joins them before the base change.
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
        end_state = base.new_state()
        base.kenlm_model.BaseScore(prev_state, word, end_state)  # advances the context
        lm_score = self._boost_log10
        if is_last_word:
            lm_score += base.raw_end_score(end_state)
        return base.alpha * lm_score * LOG_BASE_CHANGE_FACTOR + base.beta, end_state
