"""Sentences in, text for the voices and the VoxPopuli transcript out.

Input lines are ``id<TAB>text<TAB>entity|entity...``; :func:`tts_text` spells digits and
symbols out so every voice says the same words, :func:`normalize_text` gives the
VoxPopuli-style ``normalized_text`` column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["SentenceRow", "missing_entities", "normalize_text", "number_words",
           "parse_sentences", "tts_text"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class SentenceRow:
    """One line of the input TSV."""

    utt_id: str  # file-name safe id, e.g. "e21_4320211_17"
    text: str  # the sentence, entities spelled as in the entity list
    entities: tuple[str, ...]  # entities said in the sentence, may be empty




def parse_sentences(lines: Iterable[str], source: str = "<input>") -> list[SentenceRow]:
    """Parse ``id<TAB>text[<TAB>entity|entity...]`` lines.

    Blank lines, ``#`` comments and a header line starting with ``id<TAB>`` are skipped.

    Raises:
        ValueError: a line without text, an id that is not file-name safe, or a repeated id;
            the message names the source and line.
    """
    rows: list[SentenceRow] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        if not line.strip() or line.startswith("#") or (number == 1 and line.startswith("id\t")):
            continue
        fields = line.split("\t")
        where = f"{source} line {number}"
        if len(fields) < 2 or not fields[1].strip():
            raise ValueError(f"{where}: expected id<TAB>text<TAB>entities, got {line!r}")
        utt_id, text = fields[0].strip(), " ".join(fields[1].split())
        if not _ID.match(utt_id):
            raise ValueError(f"{where}: id {utt_id!r} must be letters, digits, '_', '-', '.'")
        if utt_id in seen:
            raise ValueError(f"{where}: id {utt_id!r} appears twice")
        seen.add(utt_id)
        entities = tuple(e.strip() for e in fields[2].split("|") if e.strip()) \
            if len(fields) > 2 else ()
        rows.append(SentenceRow(utt_id, text, entities))
    return rows


def missing_entities(row: SentenceRow) -> list[str]:
    """Entities of ``row`` that its text does not contain (whole words, any case, a
    possessive "'s" allowed)."""
    said = normalize_text(row.text)
    return [e for e in row.entities
            if not re.search(rf"(?<!\S){re.escape(normalize_text(e))}(?:'s|')?(?!\S)", said)]


def normalize_text(text: str) -> str:
    """VoxPopuli-style normalized text: lower case, punctuation removed except apostrophes
    inside or closing a word, hyphens and slashes as spaces, digits kept (and a decimal
    point between digits).

    >>> normalize_text("Brett Ponton's e-commerce, U.S. and 'GE' at 3.5%!")
    "brett ponton's e commerce us and ge at 3.5"
    """
    text = text.lower().replace("’", "'").replace("‘", "'")
    text = re.sub(r"[\-/–—]", " ", text)
    text = re.sub(r"(?<=\d)[.,](?=\d)", lambda m: "." if m.group() == "." else "", text)
    text = re.sub(r"[^\w\s'.]|_", " ", text)
    text = re.sub(r"\.(?!\d)|(?<!\d)\.", "", text)
    words = []
    for word in text.split():
        word = word.lstrip("'")
        if word.endswith("'") and not word.endswith("s'"):
            word = word.rstrip("'")
        if word:
            words.append(word)
    return " ".join(words)


_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))
_ORDINAL_ENDS = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                 "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}


def number_words(n: int) -> str:
    """English words of a non-negative integer below 10**12; longer ones digit by digit.

    >>> number_words(2021)
    'two thousand twenty one'
    """
    if n < 0:
        raise ValueError(f"number_words takes n >= 0, got {n}")
    if n >= 10**12:
        return " ".join(_ONES[int(d)] for d in str(n))
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, word in _SCALES:
        if n >= size:
            rest = n % size
            return f"{number_words(n // size)} {word}" + (f" {number_words(rest)}" if rest else "")
    raise AssertionError(n)


def _ordinal_words(n: int) -> str:
    words = number_words(n).split()
    last = words[-1]
    if last in _ORDINAL_ENDS:
        words[-1] = _ORDINAL_ENDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _spell_number(match: re.Match[str]) -> str:
    digits, suffix = match.group(1).replace(",", ""), (match.group(2) or "").lower()
    if suffix in ("st", "nd", "rd", "th"):
        return f" {_ordinal_words(int(digits))} "
    whole, _, fraction = digits.partition(".")
    words = number_words(int(whole))
    if fraction:
        words += " point " + " ".join(_ONES[int(d)] for d in fraction)
    return f" {words} "


def tts_text(text: str) -> str:
    """Text as the voices should read it: digits and common symbols spelled out.

    Integers, decimals ("3.5"), thousands separators ("1,200") and ordinals ("4th") become
    words; "$5" becomes "five dollars"; "&", "%", "+", "@", "#" and "/" become "and",
    "percent", "plus", "at", "number" and "slash".

    >>> tts_text("Q4 sales rose 3.5% to $1,200 & more")
    'Q four sales rose three point five percent to one thousand two hundred dollars and more'
    """
    text = text.replace("’", "'")
    text = re.sub(r"\$\s?(\d[\d,]*(?:\.\d+)?)", r"\1 dollars", text)
    for symbol, word in (("&", "and"), ("%", "percent"), ("+", "plus"), ("@", "at"),
                         ("#", "number"), ("/", "slash")):
        text = text.replace(symbol, f" {word} ")
    text = re.sub(r"(\d(?:[\d,]*\d)?(?:\.\d+)?)(st|nd|rd|th|ST|ND|RD|TH)?\b", _spell_number,
                  text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    return " ".join(text.split())
