"""The fields of ``POST /v1/audio/transcriptions``, checked: what a request asks for, or a
:class:`RequestError` naming the field, the value and what was expected.

Framework-free: the app hands over the form's text fields and the uploaded file's bytes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ..entities import EntityList
from .settings import Limits

RESPONSE_FORMATS = ("json", "text", "verbose_json")
# OpenAI's fields that a client library may send; accepted and not used (we serve one
# English model, decode deterministically, and take names through ``entities``)
IGNORED_FIELDS = ("model", "language", "prompt", "temperature", "timestamp_granularities[]",
                  "timestamp_granularities", "stream")
OUR_FIELDS = ("entities", "weight", "phonetic", "adapter", "merge_spots",
              "skip_unrepresentable")
KNOWN_FIELDS = ("file", "response_format", *OUR_FIELDS, *IGNORED_FIELDS)


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

    response_format: str
    entities: EntityList
    weight: float | None  # None: the server's
    phonetic: bool | None
    adapter: bool | None
    merge_spots: bool | None


def parse_fields(fields: dict[str, str], limits: Limits) -> TranscriptionRequest:
    """Check the text fields of a request (every field but ``file``)."""
    unknown = sorted(set(fields) - set(KNOWN_FIELDS))
    if unknown:
        raise RequestError(400, f"unknown field(s) {', '.join(map(repr, unknown))}; known: "
                                f"{', '.join(KNOWN_FIELDS)}", unknown[0], "unknown_field")
    response_format = fields.get("response_format", "json").strip() or "json"
    if response_format not in RESPONSE_FORMATS:
        raise RequestError(400, f"response_format {response_format!r} is not supported; "
                                f"expected one of {', '.join(RESPONSE_FORMATS)}",
                           "response_format", "unsupported_response_format")
    skip = _flag(fields, "skip_unrepresentable") or False
    entities = parse_entities(fields.get("entities", ""), limits,
                              "skip" if skip else "raise")
    weight = None
    if fields.get("weight", "").strip():
        text = fields["weight"].strip()
        try:
            weight = float(text)
        except ValueError:
            weight = math.nan
        if not (math.isfinite(weight) and 0 <= weight <= 100):
            raise RequestError(400, f"weight {text!r} is not a number from 0 to 100 (0 turns "
                                    f"biasing off, 1 is the default)", "weight")
    return TranscriptionRequest(response_format, entities, weight, _flag(fields, "phonetic"),
                                _flag(fields, "adapter"), _flag(fields, "merge_spots"))


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
    for n, entry in enumerate(entries, 1):
        name = entry[0] if isinstance(entry, tuple) else entry
        if len(name) > limits.entity_chars:
            raise RequestError(413, f"entities entry {n} is {len(name)} characters long "
                                    f"({name[:40]!r}...), more than {limits.entity_chars}",
                               "entities", "entity_too_long")
    try:
        return EntityList(entries, on_unrepresentable=on_unrepresentable)
    except (TypeError, ValueError) as err:
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
            raise RequestError(400, f"entities line {n}: weight {weight_text.strip()!r} of "
                                    f"{name.strip()!r} is not a number (expected "
                                    f"'entity<TAB>weight')", "entities") from None
    return entries


def _json_entries(text: str) -> list[Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise RequestError(400, f"entities looks like JSON but is not valid JSON: {err.msg} "
                                f"(line {err.lineno}, column {err.colno})",
                           "entities") from None
    if not isinstance(value, list):
        raise RequestError(400, "entities JSON must be a list", "entities")
    entries: list[Any] = []
    for n, item in enumerate(value, 1):
        if isinstance(item, str):
            entries.append(item)
        elif (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
              and isinstance(item[1], (int, float)) and not isinstance(item[1], bool)):
            entries.append((item[0], float(item[1])))
        elif isinstance(item, dict) and isinstance(item.get("text"), str) \
                and set(item) <= {"text", "weight"}:
            weight = item.get("weight", 1.0)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise RequestError(400, f"entities item {n}: weight {weight!r} is not a "
                                        f"number", "entities")
            entries.append((item["text"], float(weight)))
        else:
            raise RequestError(400, f"entities item {n} is {json.dumps(item)[:60]}; expected "
                                    f"a string, [text, weight] or {{\"text\": ..., "
                                    f"\"weight\": ...}}", "entities")
    return entries
