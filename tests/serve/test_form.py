"""The request fields of POST /v1/audio/transcriptions, checked without a server."""

from __future__ import annotations

import pytest

from biasing.serve.form import RequestError, parse_entities, parse_fields
from biasing.serve.settings import Limits, ServerConfig
from biasing.transcribe import Overrides

LIMITS = Limits(entities=5, entity_chars=20)


def test_lines_with_weights_comments_and_blank_lines() -> None:
    entities = parse_entities("Kaiyo\n# a comment\n\nPrzybylski\t2.5\r\nKAIYO\n", LIMITS)
    assert [(e.text, e.weight) for e in entities] == [("Kaiyo", 1.0), ("Przybylski", 2.5)]


def test_json_lists_of_strings_pairs_and_objects() -> None:
    entities = parse_entities('["Kaiyo", ["Zermatt", 2], {"text": "Reykjavik", "weight": 3}]',
                              LIMITS)
    assert [(e.text, e.weight) for e in entities] == [("Kaiyo", 1.0), ("Zermatt", 2.0),
                                                      ("Reykjavik", 3.0)]


@pytest.mark.parametrize(("text", "status", "says"), [
    ("a\nb\nc\nd\ne\nf", 413, "6 entries, more than this server's limit of 5"),
    ("x" * 21, 413, "21 characters long"),
    ("Kaiyo\tlots", 400, "weight 'lots' of 'Kaiyo' is not a number"),
    ("Kaiyo\t-1", 400, "expected a number > 0 and at most 1000"),
    ('["Kaiyo", 3]', 400, "entities item 2 is 3"),
    ('["Kaiyo"', 400, "not valid JSON"),
    ('[{"text": "a", "weight": "x"}]', 400, "weight 'x' is not a number"),
    ("a\x00b", 400, "NUL"),
])
def test_bad_lists_are_refused_with_the_value_named(text: str, status: int, says: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_entities(text, LIMITS)
    assert caught.value.status == status
    assert caught.value.param == "entities"
    assert says in caught.value.message


@pytest.mark.parametrize(("fields", "param", "says"), [
    ({"entites": "x"}, "entites", "unknown field(s) 'entites'"),
    ({"response_format": "srt"}, "response_format", "'srt' is not supported"),
    ({"weight": "strong"}, "weight", "'strong' is not a number from 0 to 100"),
    ({"weight": "nan"}, "weight", "not a number from 0 to 100"),
    ({"weight": "-1"}, "weight", "not a number from 0 to 100"),
    ({"phonetic": "maybe"}, "phonetic", "'maybe' is not true or false"),
])
def test_bad_fields_are_refused_with_the_field_named(fields: dict[str, str], param: str,
                                                     says: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_fields(fields, LIMITS)
    assert (caught.value.status, caught.value.param) == (400, param)
    assert says in caught.value.message
    assert caught.value.body()["error"]["param"] == param


def test_openai_fields_are_accepted_and_ours_parsed() -> None:
    parsed = parse_fields({"model": "whisper-1", "language": "en", "temperature": "0",
                           "entities": "Kaiyo", "weight": "2", "adapter": "false",
                           "merge_spots": "true", "response_format": "verbose_json"}, LIMITS)
    assert parsed.response_format == "verbose_json"
    assert [e.text for e in parsed.entities] == ["Kaiyo"]
    assert parsed.overrides == Overrides(weight=2.0, phonetic=None, adapter=False,
                                         merge_spots=True)


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="workers must be an integer >= 0"):
        ServerConfig(workers=-1)
    with pytest.raises(ValueError, match="api_key is empty"):
        ServerConfig(api_key=" ")
    with pytest.raises(ValueError, match="adapter_default=True needs an adapter"):
        ServerConfig(adapter_default=True)
    with pytest.raises(ValueError, match="limit audio_s must be a positive number"):
        Limits(audio_s=0)
