"""The fields of ``POST /v1/audio/transcriptions``, checked: what a request asks for, or a
:class:`RequestError` naming the field, the value and what was expected.

Framework-free: the app hands over the form's text fields and the uploaded file's bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..entities import EntityList
from ..transcribe import Overrides
from .settings import Limits

RESPONSE_FORMATS = ("json", "text", "verbose_json")
# OpenAI's fields that a client library may send; accepted and not used (we serve one
# English model, decode deterministically, always return word times in verbose_json, and
# take names through ``entities``)
IGNORED_FIELDS = ("model", "language", "prompt", "temperature", "timestamp_granularities",
                  "chunking_strategy")
OUR_FIELDS = ("entities", "weight", "phonetic", "adapter", "merge_spots",
              "skip_unrepresentable")
# fields a client may repeat: ``name[]`` once per item, as OpenAI's SDK sends lists
# (``extra_body={"entities": [...]}`` becomes ``entities[]`` per entity)
LIST_FIELDS = ("entities[]", "timestamp_granularities[]", "include[]")
KNOWN_FIELDS = ("file", "response_format", "stream", *OUR_FIELDS, *IGNORED_FIELDS,
                *LIST_FIELDS)
_MAX_WEIGHT = 100.0  # a request's weight (0 turns biasing off, 1 is the default)

class RequestError(Exception):
    """A request the server refuses: an HTTP status, the field at fault and why."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str = "invalid_request") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """The JSON error body, shaped as OpenAI's."""
        return {"error": {"message": self.message, "type": "invalid_request_error",
                          "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class TranscriptionRequest:
    """One checked request: what to decode and how."""

    response_format: str  # json, text or verbose_json
    entities: EntityList  # the request's list (empty: none)
    overrides: Overrides  # the request's changes to the server's decoding settings
    stream: bool = False  # answer with OpenAI's transcription stream events (SSE)


def parse_fields(fields: Mapping[str, str] | Sequence[tuple[str, str]],
                 limits: Limits) -> TranscriptionRequest:
    """Check the text fields of a request (every field but ``file``): a mapping, or the
    form's (name, value) pairs in order, where the ``LIST_FIELDS`` may repeat."""
    pairs = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
    names = [name for name, _ in pairs]
    unknown = sorted(set(names) - set(KNOWN_FIELDS))
    if unknown:
        raise RequestError(400, f"unknown field(s) {', '.join(map(repr, unknown))}; known: "
                                f"{', '.join(KNOWN_FIELDS)}", unknown[0], "unknown_field")
    repeated = sorted({n for n in names if names.count(n) > 1} - set(LIST_FIELDS))
    if repeated:
        raise RequestError(400, f"field {repeated[0]!r} is given more than once (only "
                                f"{', '.join(LIST_FIELDS)} may repeat)", repeated[0])
    single = {name: value for name, value in pairs if name not in LIST_FIELDS}
    response_format = single.get("response_format", "json").strip() or "json"
    if response_format not in RESPONSE_FORMATS:
        raise RequestError(400, f"response_format {response_format!r} is not supported; "
                                f"expected one of {', '.join(RESPONSE_FORMATS)}",
                           "response_format", "unsupported_response_format")
    skip = _flag(single, "skip_unrepresentable") or False
    items = [value for name, value in pairs if name == "entities[]"]
    if items and "entities" in single:
        raise RequestError(400, "give the list as 'entities' or as repeated 'entities[]' "
                                "fields, not both", "entities")
    policy = "skip" if skip else "raise"
    entities = parse_entity_items(items, limits, policy) if items else \
        parse_entities(single.get("entities", ""), limits, policy)
    weight = None
    if single.get("weight", "").strip():
        text = single["weight"].strip()
        try:
            weight = float(text)
        except ValueError:
            weight = math.nan
        if not (math.isfinite(weight) and 0 <= weight <= _MAX_WEIGHT):
            raise RequestError(400, f"weight {text[:40]!r} is not a number from 0 to "
                                    f"{_MAX_WEIGHT:g} (0 turns biasing off, 1 is the "
                                    f"default)", "weight")
    return TranscriptionRequest(
        response_format, entities,
        Overrides(weight, _flag(single, "phonetic"), _flag(single, "adapter"),
                  _flag(single, "merge_spots")),
        stream=_flag(single, "stream") or False)


def parse_entity_items(items: Sequence[str], limits: Limits,
                       on_unrepresentable: Any = "raise") -> EntityList:
    """Repeated ``entities[]`` fields: one entry each, with an optional ``<TAB>weight``."""
    if len(items) > limits.entities:
        raise RequestError(413, f"entities[] holds {len(items):,} entries, more than this "
                                f"server's limit of {limits.entities:,}", "entities",
                           "list_too_large")
    entries: list[Any] = []
    for n, item in enumerate(items, 1):
        if "\n" in item.strip():
            raise RequestError(400, f"entities[] item {n} holds several lines; send one "
                                    f"entity per item", "entities")
        entries.extend(_line_entries(item))
    return _entity_list(entries, limits, on_unrepresentable)


def _flag(fields: dict[str, str], name: str) -> bool | None:
    """A true/false field; None when absent or empty."""
    text = fields.get(name, "").strip().lower()
    if not text:
        return None
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise RequestError(400, f"{name} {fields[name]!r} is not true or false", name)


def parse_entities(text: str, limits: Limits, on_unrepresentable: Any = "raise") -> EntityList:
    """The ``entities`` field: one entity per line with an optional ``<TAB>weight`` (blank
    lines and ``#`` comments skipped), or a JSON list of strings, ``[text, weight]`` pairs
    or ``{"text": ..., "weight": ...}`` objects."""
    if len(text) > limits.entities_bytes:
        raise RequestError(413, f"entities field holds {len(text):,} characters, more than "
                                f"{limits.entities_bytes:,} ({limits.entities:,} entries of "
                                f"at most {limits.entity_chars} characters)",
                           "entities", "list_too_large")
    stripped = text.strip()
    if stripped.startswith("["):
        entries = _json_entries(stripped)
    else:
        entries = _line_entries(text)
    if len(entries) > limits.entities:
        raise RequestError(413, f"entities holds {len(entries):,} entries, more than this "
                                f"server's limit of {limits.entities:,}", "entities",
                           "list_too_large")
    return _entity_list(entries, limits, on_unrepresentable)


def _entity_list(entries: list[Any], limits: Limits, on_unrepresentable: Any) -> EntityList:
    for n, entry in enumerate(entries, 1):
        name = entry[0] if isinstance(entry, tuple) else entry
        if len(name) > limits.entity_chars:
            raise RequestError(413, f"entities entry {n} is {len(name)} characters long "
                                    f"({name[:40]!r}...), more than {limits.entity_chars}",
                               "entities", "entity_too_long")
    try:
        return EntityList(entries, on_unrepresentable=on_unrepresentable)
    except (TypeError, ValueError, OverflowError) as err:
        raise RequestError(400, f"entities: {err}", "entities") from None


def _line_entries(text: str) -> list[str | tuple[str, float]]:
    entries: list[str | tuple[str, float]] = []
    for n, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip() or line.strip().startswith("#"):
            continue
        name, tab, weight_text = line.partition("\t")
        if not tab or not weight_text.strip():
            entries.append(name)
            continue
        try:
            entries.append((name, float(weight_text)))
        except ValueError:
            raise RequestError(400, f"entities line {n}: weight {weight_text.strip()[:40]!r} "
                                    f"of {name.strip()[:40]!r} is not a number (expected "
                                    f"'entity<TAB>weight')", "entities") from None
    return entries


def _json_entries(text: str) -> list[Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise RequestError(400, f"entities looks like JSON but is not valid JSON: {err.msg} "
                                f"(line {err.lineno}, column {err.colno})",
                           "entities") from None
    except RecursionError:
        raise RequestError(400, "entities JSON is nested too deeply; expected a flat list",
                           "entities") from None
    except ValueError as err:  # e.g. an integer of more than 4,300 digits
        raise RequestError(400, f"entities JSON holds a value Python cannot read: {err}",
                           "entities") from None
    if not isinstance(value, list):
        raise RequestError(400, "entities JSON must be a list", "entities")
    entries: list[Any] = []
    for n, item in enumerate(value, 1):
        if isinstance(item, str):
            entries.append(item)
        elif (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
              and isinstance(item[1], (int, float)) and not isinstance(item[1], bool)):
            entries.append((item[0], _json_weight(item[1], n)))
        elif isinstance(item, dict) and isinstance(item.get("text"), str) \
                and set(item) <= {"text", "weight"}:
            weight = item.get("weight", 1.0)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise RequestError(400, f"entities item {n}: weight {str(weight)[:40]!r} is "
                                        f"not a number", "entities")
            entries.append((item["text"], _json_weight(weight, n)))
        else:
            raise RequestError(400, f"entities item {n} is {_shown(item)}; expected "
                                    f"a string, [text, weight] or {{\"text\": ..., "
                                    f"\"weight\": ...}}", "entities")
    return entries


def _json_weight(weight: float, n: int) -> float:
    """A JSON weight as a float; a number too large for one is refused."""
    try:
        return float(weight)
    except OverflowError:
        raise RequestError(400, f"entities item {n}: weight {str(weight)[:20]}... "
                                f"({len(str(weight))} digits) is too large; expected a number "
                                f"> 0 (1 is the default)", "entities") from None


def _shown(item: Any) -> str:
    """The start of a JSON item for a message (never the whole of a huge or deep one)."""
    try:
        return json.dumps(item)[:60]
    except (RecursionError, ValueError):
        return f"a {type(item).__name__}"
