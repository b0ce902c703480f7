"""The published JSON Schema (`ocpp-consumer schema`) is exactly as strict as the decoder, over the contract's
examples and the whole conformance corpus; where it cannot be, the difference is one of the rules it states in words.

JSON Schema cannot state three of the decoder's rules, so the schema's description names them: no NUL in any
string, date-times that are real calendar times (format date-time checks the shape and most ranges, not leap
seconds or years beyond 9999 once in UTC), and an integer written as one (JSON Schema's data model has no 1.0 apart
from 1: every validator must admit `"connectorId": 1.0`, which the decoder refuses). And the decoder's one
leniency, an offset-less date-time read as UTC, is one the schema's format does not share. Everything else must
agree, record by record.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from functools import cache
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.decode import decode
from schemas.envelope import envelope_json_schema
from schemas.events import Rejection
from schemas.types import RFC3339_PATTERN
from tests.test_contract_cli import doc_examples
from tests.test_contract_conformance import (
    BASE_PAYLOADS, LIBRARY_CALLS, SCHEMA_FILES, _from_schema, _strings, declared_values, generator_schema,
    library_payload, mutations, official_schema,
)
from tests.test_contract_decode import MALFORMED, envelope


@cache
def published() -> jsonschema.protocols.Validator:
    schema = envelope_json_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=jsonschema.FormatChecker())


def _offset_less(text: str) -> bool:
    return not text.upper().endswith("Z") and text[-6:-5] not in ("+", "-")


def _not_a_calendar_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text.upper().replace("Z", "+00:00")).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return True
    return False


def stated_in_words(document: Any) -> tuple[bool, bool]:
    """(breaks a rule the schema states only in its description, uses the decoder's offset-less leniency)."""
    if not isinstance(document, dict):
        return False, False
    breaks = any("\x00" in s for s in _strings(document))
    lenient = False
    times = [document.get("received_at")]
    pair = (document.get("ocpp_version"), document.get("action"))
    if all(isinstance(part, str) for part in pair) and pair in SCHEMA_FILES:
        schema = official_schema(pair)
        for _, prop, value in declared_values(schema, schema, document.get("payload")):
            if prop.get("type") == "integer" and isinstance(value, float) and value.is_integer():
                breaks = True  # an integer written with a fraction or an exponent
            if prop.get("format") == "date-time":
                times.append(value)
    for text in times:
        if isinstance(text, str) and re.match(RFC3339_PATTERN, text):
            breaks = breaks or _not_a_calendar_time(text)
            lenient = lenient or _offset_less(text)
    return breaks, lenient


def check_agreement(document: Any) -> None:
    """The schema accepts the record iff the decoder does, but for the rules it states in words."""
    decoded = decode(json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass"), None)
    decoder_accepts = not isinstance(decoded, Rejection)
    schema_accepts = published().is_valid(document)
    breaks, lenient = stated_in_words(document)
    if breaks:
        assert not decoder_accepts, (document, decoded)
    elif lenient:
        assert not schema_accepts or decoder_accepts, document
    else:
        assert schema_accepts == decoder_accepts, (document, decoded)


def test_the_schema_states_the_rules_it_cannot_enforce():
    """The three rules and the leniency are in the schema's own description."""
    description = envelope_json_schema()["description"]
    for words in ("NUL", "real calendar times", "1.0", "without an offset"):
        assert words in description


def test_an_integer_written_with_a_fraction_is_the_one_known_gap():
    """`connectorId: 1.0`: the decoder refuses it, JSON Schema cannot (the data model equates 1.0 and 1), so the
    schema says it in words; with 1 both accept."""
    example = doc_examples()[1]
    assert example["payload"]["connectorId"] == 1
    assert published().is_valid(example) and not isinstance(decode(json.dumps(example).encode(), None), Rejection)
    floated = {**example, "payload": {**example["payload"], "connectorId": 1.0}}
    assert published().is_valid(floated)
    assert isinstance(decode(json.dumps(floated).encode(), None), Rejection)
    assert stated_in_words(floated) == (True, False)


@pytest.mark.parametrize("document", doc_examples(), ids=lambda d: f"{d['ocpp_version']} {d['action']}")
def test_the_contract_examples(document):
    check_agreement(document)


@pytest.mark.parametrize(("pair", "request_"), LIBRARY_CALLS)
def test_payloads_built_by_the_ocpp_library(pair, request_):
    check_agreement(envelope(*pair, payload=json.loads(json.dumps(library_payload(request_)))))


@pytest.mark.parametrize("pair", list(SCHEMA_FILES), ids=[" ".join(p) for p in SCHEMA_FILES])
def test_every_one_place_mutation(pair):
    """The conformance corpus's mutations of each base payload, as records: schema and decoder agree."""
    schema = official_schema(pair)
    check_agreement(envelope(*pair, payload=BASE_PAYLOADS[pair]))
    for _, payload in mutations(schema, schema, BASE_PAYLOADS[pair]):
        check_agreement(envelope(*pair, payload=payload))


@pytest.mark.parametrize("pair", list(SCHEMA_FILES), ids=[" ".join(p) for p in SCHEMA_FILES])
def test_payloads_generated_from_the_official_schema(pair):
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_from_schema(generator_schema(pair)))
    def check(payload):
        check_agreement(envelope(*pair, payload=payload))

    check()


def test_the_malformed_records_of_the_decoder_tests():
    """Every malformed record of tests/test_contract_decode.py that is a JSON document and has no key: the schema
    refuses what the decoder refuses (NaN and lone surrogates are no JSON documents, a key is not in the value:
    those are left out)."""
    checked = 0
    for _, value, key, kind, kwargs in MALFORMED:
        if key is not None or kwargs or not value:
            continue
        try:
            document = json.loads(value, parse_constant=_refuse)
            json.dumps(document, ensure_ascii=False).encode()  # a lone surrogate is no Unicode text
        except (ValueError, RecursionError):
            continue
        check_agreement(document)
        checked += 1
    assert checked >= 60


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@pytest.mark.parametrize(("version", "action", "payload", "accepted"), [
    ("1.6", "NotifyEvent", {"anything": 1}, True),  # untracked in 1.6: ignored
    ("2.1", "MeterValues", {}, True),
    ("2.1", "NotifyEvent", {}, False),  # tracked in 2.1: its payload is checked
    ("2.0.1", "Heartbeat", {"x": 1}, False),
    ("2.2", "Heartbeat", {}, False),
])
def test_the_untracked_actions_are_per_version(version, action, payload, accepted):
    document = envelope(version, action, payload)
    assert published().is_valid(document) == accepted
    check_agreement(document)


@given(st.sampled_from(["1.6", "2.0.1", "2.1", "2.2"]),
       st.sampled_from(["BootNotification", "StatusNotification", "Heartbeat", "NotifyEvent", "MeterValues"]),
       st.sampled_from(list(BASE_PAYLOADS.values())),
       st.dictionaries(st.sampled_from(["event_id", "received_at", "charge_point_id", "extra"]),
                       st.sampled_from([None, 1, 1.0, "", "x", "2026-11-24T19:00:00Z", "2026-11-24T19:00:00",
                                        "0b9e5a4c-6f1d-4e2b-9a3c-5d7e8f901234", "CP\n1"]), max_size=2))
@settings(max_examples=400, deadline=None)
def test_envelopes_of_any_version_action_and_payload(version, action, payload, fields):
    """Every payload under every version and action, with envelope fields changed: the verdicts agree."""
    check_agreement(envelope(version, action, payload, **fields))


@pytest.mark.parametrize("text", ["2026-11-24 19:00:00Z", "2026-11-24T19:00Z", "yesterday", "1764010800",
                                  "2026-11-24T19:00:00+0100"])
def test_date_time_shapes_are_refused_even_where_format_is_only_an_annotation(text):
    """JSON Schema's default treats `format` as an annotation; the pattern still refuses what the decoder
    refuses for its shape."""
    schema = envelope_json_schema()
    annotating = jsonschema.validators.validator_for(schema)(schema)  # no format checker
    example = doc_examples()[1]
    assert annotating.is_valid(example)
    assert not annotating.is_valid({**example, "received_at": text})
    assert not annotating.is_valid({**example, "payload": {**example["payload"], "timestamp": text}})
