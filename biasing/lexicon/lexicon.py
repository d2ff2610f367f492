"""Entity pronunciations: the project's one source of them.

A :class:`Lexicon` answers "how is this entity said?" with user-supplied pronunciations
first, then every CMUdict pronunciation of each word, then g2p_en's neural prediction for
words outside CMUdict (:mod:`biasing.lexicon.g2p`). A multi-word entity's pronunciation is
one phone tuple per word (:data:`~biasing.lexicon.arpabet.Pronunciation`), so word
boundaries are kept; the alternatives of a multi-word entity are the cartesian product of
its words' alternatives, first pronunciations first, capped at ``max_pronunciations``.

User lexicon file (UTF-8, read by :meth:`Lexicon.load`, written by :meth:`Lexicon.save`)::

    # entity<TAB>pronunciation: ARPAbet phones separated by spaces, words by " | "
    Zelenskyy	Z EH0 L EH1 N S K IY0
    Zelenskyy	Z AH0 L EH1 N S K IY0
    New York	N UW1 | Y AO1 R K
    Windows 11	W IH1 N D OW0 Z | IH0 L EH1 V AH0 N

One pronunciation per line; repeat the entity for alternatives. Vowels may carry a stress
digit (0, 1, 2) or none. A multi-word entity needs one ``|``-separated group per word
(words are split at spaces and hyphens), and a single-word entry also serves that word
inside other entities. Blank lines and lines starting with ``#`` are ignored.

>>> lexicon = Lexicon([("Zelenskyy", "Z EH0 L EH1 N S K IY0")])
>>> lexicon.pronounce("Volodymyr Zelenskyy")          # doctest: +SKIP
[(('V', 'OW2', 'L', 'AH0', ...), ('Z', 'EH0', 'L', 'EH1', 'N', 'S', 'K', 'IY0'))]
"""

from __future__ import annotations

import hashlib
import itertools
import os
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ..paths import write_text_atomic
from . import g2p
from .arpabet import Phones, Pronunciation, format_pronunciation, parse_pronunciation

# spoken as a pause between words ("Jean-Luc", "AC/DC"), as in biasing.entities
_WORD_SEPARATORS = frozenset("-‐‑‒–—―/_")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'"})
_FILE_HEADER = ("# ctc-biasing lexicon: entity<TAB>ARPAbet phones, words separated by ' | ';\n"
                "# one pronunciation per line, repeat the entity for alternatives\n")


def entity_words(text: str) -> list[str]:
    """The words of an entity as the lexicon keys them: case-folded, without diacritics.

    Split at whitespace and hyphens/slashes; punctuation around a word is dropped
    ("Inc." -> "inc"), apostrophes inside it are kept ("O'Neil" -> "o'neil").

    >>> entity_words("Jean-Luc  Picard, Inc.")
    ['jean', 'luc', 'picard', 'inc']
    """
    folded = "".join(c for c in unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
                     if not unicodedata.combining(c)).casefold()
    spaced = "".join(" " if c in _WORD_SEPARATORS else c for c in folded)
    words = []
    for token in spaced.split():
        word = token.strip("".join(c for c in token
                                   if unicodedata.category(c).startswith("P")))
        if word:
            words.append(word)
    return words


class Lexicon:
    """Pronunciations of entities: user entries, then CMUdict, then neural G2P.

    Args:
        entries: user pronunciations as ``(entity, pronunciation)`` pairs; a pronunciation
            is a string in the file format (``"N UW1 | Y AO1 R K"``) or per-word phone
            tuples. Bad phones or a word-count mismatch raise ``ValueError`` naming the entry.
        max_pronunciations: most pronunciations returned per entity (>= 1).
    """

    def __init__(self, entries: Iterable[tuple[str, str | Pronunciation]] = (),
                 max_pronunciations: int = 4) -> None:
        if isinstance(max_pronunciations, bool) or not isinstance(max_pronunciations, int) \
                or max_pronunciations < 1:
            raise ValueError(f"max_pronunciations must be an integer >= 1, "
                             f"got {max_pronunciations!r}")
        self.max_pronunciations = max_pronunciations
        self._user: dict[str, list[Pronunciation]] = {}
        self._texts: dict[str, str] = {}  # key -> entity text as first given
        for number, (text, pronunciation) in enumerate(entries, start=1):
            self._add(text, pronunciation, f"lexicon entry #{number}")
        digest = hashlib.sha1(f"max={max_pronunciations}\n".encode())
        for key, prons in self._user.items():
            for pron in prons:
                digest.update(f"{key}\t{format_pronunciation(pron)}\n".encode())
        self._key = digest.hexdigest()

    @classmethod
    def load(cls, path: str | os.PathLike[str], max_pronunciations: int = 4) -> Lexicon:
        """Read a user lexicon file (format in the module docstring).

        Errors name the file, line and entry.
        """
        from ..readers import read_text

        path = Path(path)
        text = read_text(path, "lexicon file")
        entries: list[tuple[str, str | Pronunciation]] = []
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            entity, tab, pron = line.partition("\t")
            if not tab or not entity.strip() or not pron.strip():
                raise ValueError(f"{path}:{line_no}: expected 'entity<TAB>ARPAbet phones', "
                                 f"got {line.strip()[:80]!r}")
            entries.append((entity.strip(), parse_pronunciation(
                pron, f"{path}:{line_no}: entity {entity.strip()!r}")))
        try:
            return cls(entries, max_pronunciations=max_pronunciations)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the user entries in the file format :meth:`load` reads."""
        lines = [f"{self._texts[key]}\t{format_pronunciation(pron)}\n"
                 for key, prons in self._user.items() for pron in prons]
        write_text_atomic(path, _FILE_HEADER + "".join(lines))

    @property
    def key(self) -> str:
        """Content hash of the user entries (part of the G2G cache key)."""
        return self._key

    def __len__(self) -> int:
        return sum(len(prons) for prons in self._user.values())

    def __iter__(self) -> Iterator[tuple[str, Pronunciation]]:
        """The user entries, ``(entity, pronunciation)``, in the order given."""
        for key, prons in self._user.items():
            for pron in prons:
                yield self._texts[key], pron

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and " ".join(entity_words(text)) in self._user

    def __repr__(self) -> str:
        return f"Lexicon({len(self)} user pronunciations, max_pronunciations=" \
               f"{self.max_pronunciations})"

    def pronounce(self, text: str) -> list[Pronunciation]:
        """Pronunciations of one entity (at most ``max_pronunciations``).

        Raises ``ValueError`` when a word cannot be pronounced (digits, symbols) and the
        entity has no user entry; the message names the word.
        """
        return self.pronounce_batch([text])[0]

    def pronounce_batch(self, texts: Sequence[str]) -> list[list[Pronunciation]]:
        """:meth:`pronounce` for many entities, with one batched G2P call."""
        out: list[list[Pronunciation]] = []
        for text, per_word in zip(texts, self.word_pronunciations_batch(texts)):
            user = self._user.get(" ".join(entity_words(text)))
            if user:
                out.append(user[: self.max_pronunciations])
                continue
            for word, prons in zip(entity_words(text), per_word):
                if not prons:
                    raise ValueError(
                        f"cannot pronounce {word!r} in entity {text!r} (digits or symbols): "
                        f"give it a user pronunciation ('{text}<TAB>ARPAbet phones')")
            combos = itertools.islice(itertools.product(*per_word), self.max_pronunciations)
            out.append([tuple(combo) for combo in combos])
        return out

    def word_pronunciations(self, text: str) -> list[list[Phones]]:
        """Per word of the entity (:func:`entity_words`), its alternative pronunciations.

        A word that cannot be pronounced (digits, symbols) gets an empty list; an entity
        without words raises ``ValueError``.
        """
        return self.word_pronunciations_batch([text])[0]

    def word_pronunciations_batch(self, texts: Sequence[str]) -> list[list[list[Phones]]]:
        """:meth:`word_pronunciations` for many entities, with one batched G2P call."""
        if isinstance(texts, str):
            raise TypeError(f"texts must be a sequence of strings, not the string "
                            f"{texts[:40]!r}")
        split = []
        for text in texts:
            words = entity_words(text)
            if not words:
                raise ValueError(f"entity {text!r} has no words to pronounce")
            split.append(words)
        needed = {w for words in split for w in words
                  if w not in self._user and g2p.pronounceable(w)}
        ordered = sorted(needed)
        predicted = dict(zip(ordered, g2p.pronounce_batch(ordered)))
        out: list[list[list[Phones]]] = []
        for words in split:
            user = self._user.get(" ".join(words))
            if user and len(words) > 1:
                out.append([list(dict.fromkeys(pron[i] for pron in user))
                            for i in range(len(words))])
                continue
            per_word = []
            for word in words:
                if word in self._user:
                    per_word.append([pron[0] for pron in self._user[word]])
                else:
                    per_word.append(predicted.get(word, []))
            out.append(per_word)
        return out

    def _add(self, text: str, pronunciation: str | Pronunciation, where: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"{where}: entity must be a string, got {text!r}")
        words = entity_words(text)
        if not words:
            raise ValueError(f"{where}: entity {text!r} has no words")
        if isinstance(pronunciation, str):
            pron = parse_pronunciation(pronunciation, f"{where} ({text!r})")
        else:
            pron = tuple(parse_pronunciation(" ".join(word), f"{where} ({text!r})")[0]
                         for word in pronunciation)
        if len(pron) != len(words):
            raise ValueError(
                f"{where}: entity {text!r} has {len(words)} words ({' '.join(words)}) but its "
                f"pronunciation {format_pronunciation(pron)!r} has {len(pron)}; separate the "
                "words' phones with ' | '")
        key = " ".join(words)
        self._texts.setdefault(key, " ".join(text.split()))
        prons = self._user.setdefault(key, [])
        if pron not in prons:
            prons.append(pron)

