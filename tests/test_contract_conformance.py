"""Conformance with the official OCPP JSON schemas, used as an outside oracle.

The schemas and call classes come from the `ocpp` package (1.6 JSON; 2.0.1 FINAL), validated with `jsonschema`
including format checking (`date-time` needs the rfc3339-validator package). Ours must accept what the official
schema accepts and reject what it rejects, except where docs/contract.md states an extra rule of ours
(`breaks_extra_rule` below is that list, written independently of the decoder) or the one leniency (an
offset-less timestamp is UTC), which the generated and mutated payloads below never contain.
"""

from __future__ import annotations

import copy
import json
import types
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jsonschema
import ocpp
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.v16 import call as call16
from ocpp.v16 import enums as enums16
from ocpp.v201 import call as call201
from ocpp.v201 import datatypes as types201
from ocpp.v201 import enums as enums201

from consumer.decode import decode
from schemas.events import BootNotification, Heartbeat, Rejection, StatusNotification
from schemas.types import PG_INT_MAX
from tests.test_contract_decode import record

SCHEMAS = Path(ocpp.__file__).parent
SCHEMA_FILES = {
    ("1.6", "BootNotification"): "v16/schemas/BootNotification.json",
    ("1.6", "StatusNotification"): "v16/schemas/StatusNotification.json",
    ("1.6", "Heartbeat"): "v16/schemas/Heartbeat.json",
    ("2.0.1", "BootNotification"): "v201/schemas/BootNotificationRequest.json",
    ("2.0.1", "StatusNotification"): "v201/schemas/StatusNotificationRequest.json",
    ("2.0.1", "Heartbeat"): "v201/schemas/HeartbeatRequest.json",
}
EVENT_CLASS = {"BootNotification": BootNotification, "StatusNotification": StatusNotification, "Heartbeat": Heartbeat}
# Our rule 2 (docs/contract.md): these integer ids are 0…PG_INT_MAX.
ID_FIELDS = {
    ("1.6", "StatusNotification"): ("connectorId",),
    ("2.0.1", "StatusNotification"): ("evseId", "connectorId"),
}


def official_schema(pair: tuple[str, str]) -> dict:
    return json.loads((SCHEMAS / SCHEMA_FILES[pair]).read_text())


def official_accepts(pair: tuple[str, str], payload: Any) -> bool:
    schema = official_schema(pair)
    validator = jsonschema.validators.validator_for(schema)(schema, format_checker=jsonschema.FormatChecker())
    return validator.is_valid(payload)


def ours_accepts(pair: tuple[str, str], payload: Any) -> bool:
    result = decode(record(*pair, payload=payload), b"CP-1")
    assert not (isinstance(result, Rejection) and result.kind not in ("payload",)), result
    return isinstance(result, EVENT_CLASS[pair[1]])


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def breaks_extra_rule(pair: tuple[str, str], payload: Any) -> bool:
    """Does the payload break one of the rules docs/contract.md adds to the official schema?"""
    if any("\x00" in s for s in _strings(payload)):
        return True  # rule 1: no NUL
    if not isinstance(payload, dict):
        return False
    for name in ID_FIELDS.get(pair, ()):
        value = payload.get(name)
        if isinstance(value, float) and value.is_integer():
            return True  # a number with a fraction part is not an integer for us
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= PG_INT_MAX:
            return True  # rule 2: ids within 0…2^31-1
    stamp = payload.get("timestamp")
    if isinstance(stamp, str):
        try:
            datetime.fromisoformat(stamp.upper().replace("Z", "+00:00")).astimezone(timezone.utc)
        except (ValueError, OverflowError):
            return True  # rule 3: a real calendar time within years 1…9999 in UTC
    return False


def library_payload(request: Any) -> dict:
    """The payload dict the `ocpp` library itself would send for a call object."""
    return remove_nones(snake_to_camel_case(serialize_as_dict(request)))


LIBRARY_CALLS = [
    pytest.param(("1.6", "BootNotification"), call16.BootNotification(
        charge_point_model="Eve Single Pro", charge_point_vendor="Alfen BV", charge_box_serial_number="B1",
        charge_point_serial_number="S1", firmware_version="5.8.1", iccid="8931", imsi="2040", meter_serial_number="M1",
        meter_type="AC"), id="16-boot-all-fields"),
    pytest.param(("1.6", "BootNotification"), call16.BootNotification(charge_point_model="m", charge_point_vendor="v"),
                 id="16-boot-minimal"),
    *[pytest.param(("1.6", "StatusNotification"), call16.StatusNotification(
        connector_id=i % 3, error_code=code, status=status, timestamp="2026-11-24T18:59:00Z", info="i", vendor_id="x",
        vendor_error_code="E1"), id=f"16-status-{status.value}-{code.value}")
      for i, (status, code) in enumerate(zip(list(enums16.ChargePointStatus) * 2, list(enums16.ChargePointErrorCode)))],
    pytest.param(("1.6", "Heartbeat"), call16.Heartbeat(), id="16-heartbeat"),
    pytest.param(("2.0.1", "BootNotification"), call201.BootNotification(
        charging_station=types201.ChargingStationType(
            vendor_name="ABB", model="Terra AC", serial_number="T1", firmware_version="1.4.2",
            modem=types201.ModemType(iccid="8931", imsi="2040")),
        reason=enums201.BootReasonEnumType.power_up, custom_data={"vendor_id": "com.abb", "site": "A"}),
        id="201-boot-all-fields"),
    *[pytest.param(("2.0.1", "BootNotification"), call201.BootNotification(
        charging_station=types201.ChargingStationType(vendor_name="v", model="m"), reason=reason),
        id=f"201-boot-{reason.value}") for reason in enums201.BootReasonEnumType],
    *[pytest.param(("2.0.1", "StatusNotification"), call201.StatusNotification(
        timestamp="2026-11-24T18:59:00+01:00", connector_status=status, evse_id=i, connector_id=1,
        custom_data={"vendor_id": "x"}), id=f"201-status-{status.value}")
      for i, status in enumerate(enums201.ConnectorStatusEnumType)],
    pytest.param(("2.0.1", "Heartbeat"), call201.Heartbeat(), id="201-heartbeat"),
    pytest.param(("2.0.1", "Heartbeat"), call201.Heartbeat(custom_data={"vendor_id": "x"}), id="201-heartbeat-custom"),
]


@pytest.mark.parametrize(("pair", "request_"), LIBRARY_CALLS)
def test_payloads_built_by_the_ocpp_library_are_accepted(pair, request_):
    """Whatever the reference `ocpp` library sends for these calls, the official schema and ours both accept."""
    payload = json.loads(json.dumps(library_payload(request_)))  # enums → their string values
    assert official_accepts(pair, payload)
    assert ours_accepts(pair, payload)


# ------------------------------------------------------------------------ generated from the official schemas


class _CompatMany:
    """hypothesis-jsonschema 0.23.1 drives hypothesis' `many` with the removed `more()` method; this adapts it.

    Installed on hypothesis_jsonschema's own reference to the utils module only, never on hypothesis itself.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from hypothesis.internal.conjecture.utils import many

        self._many = many(*args, **kwargs)
        self._iterator: Iterator[None] | None = None

    def more(self) -> bool:
        if self._iterator is None:
            self._many.__enter__()
            self._iterator = iter(self._many)
        if next(self._iterator, False) is None:
            return True
        self._many.__exit__(None)
        return False

    def reject(self, why: str | None = None) -> None:
        self._many.reject(why)


def _from_schema(schema: dict):
    import hypothesis_jsonschema._from_schema as implementation
    from hypothesis.internal.conjecture import utils

    if not hasattr(utils.many, "more"):
        implementation.cu = types.SimpleNamespace(many=_CompatMany)
    from hypothesis_jsonschema import from_schema

    return from_schema(schema)


def generator_schema(pair: tuple[str, str]) -> dict:
    """The official schema, with our id range (rule 2) added so that the generator does not waste examples."""
    schema = copy.deepcopy(official_schema(pair))
    for name in ID_FIELDS.get(pair, ()):
        schema["properties"][name].update(minimum=0, maximum=PG_INT_MAX)
    return schema


@pytest.mark.parametrize("pair", list(SCHEMA_FILES), ids=[" ".join(p) for p in SCHEMA_FILES])
def test_payloads_generated_from_the_official_schema_are_accepted(pair):
    """Random payloads valid per the official schema are accepted, unless they break a documented extra rule."""
    # hypothesis-jsonschema draws `date-time` strings in RFC 3339 form (with Z or an offset), so no offset-less
    # timestamps occur here; NUL strings and out-of-range times are filtered as our documented extra rules.

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_from_schema(generator_schema(pair)))
    def check(payload):
        assume(not breaks_extra_rule(pair, payload))
        assert official_accepts(pair, payload)
        assert ours_accepts(pair, payload), (payload, decode(record(*pair, payload=payload), None))

    check()


# ------------------------------------------------------------------------------------------- mutations

WRONG_VALUES = [None, True, False, 0, 1, -1, 1.0, 1.5, 2**31, "", "x", "a\x00b", [], {}, ["x"], {"vendorId": "v"}]
TIMESTAMPS = ["2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-24T19:00:00+0100", "2026-11-24T19:00Z",
              "2026-11-24 19:00:00Z", "1764010800", "2016-12-31T23:59:60Z", "0001-01-01T00:00:00+01:00",
              "2026-11-24T19:00:00.5-03:30", "2026-11-24t19:00:00z"]


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def mutations(schema: dict, node: dict, payload: dict, path: tuple = ()) -> Iterator[tuple[str, dict]]:
    """(description, payload changed in one place) for every property the (sub)schema defines."""
    node = _resolve(schema, node)

    def changed(key: str, value: Any) -> dict:
        out = copy.deepcopy(payload)
        if value is _DELETE:
            del out[key]
        else:
            out[key] = value
        return out

    yield f"{path}: extra property", changed("unexpectedProperty", 1)
    for key in node.get("required", []):
        if key in payload:
            yield f"{path + (key,)}: deleted", changed(key, _DELETE)
    for key, prop in node.get("properties", {}).items():
        prop = _resolve(schema, prop)
        values = list(WRONG_VALUES)
        if "maxLength" in prop:
            values += ["a" * prop["maxLength"], "a" * (prop["maxLength"] + 1), "é" * prop["maxLength"]]
        if "enum" in prop:
            values += [v.lower() for v in prop["enum"]] + [v.upper() for v in prop["enum"]] + prop["enum"]
        if prop.get("format") == "date-time":
            values += TIMESTAMPS
        for value in values:
            yield f"{path + (key,)} = {value!r:.40}", changed(key, value)
        if prop.get("type") == "object" and isinstance(payload.get(key), dict):
            for description, inner in mutations(schema, prop, payload[key], path + (key,)):
                yield description, changed(key, inner)


_DELETE = object()

BASE_PAYLOADS = {
    ("1.6", "BootNotification"): {"chargePointVendor": "Alfen BV", "chargePointModel": "Eve", "firmwareVersion": "5"},
    ("1.6", "StatusNotification"): {"connectorId": 1, "errorCode": "NoError", "status": "Charging",
                                    "timestamp": "2026-11-24T18:00:00Z"},
    ("1.6", "Heartbeat"): {},
    ("2.0.1", "BootNotification"): {"reason": "PowerUp", "customData": {"vendorId": "v"}, "chargingStation": {
        "vendorName": "ABB", "model": "Terra", "modem": {"iccid": "1", "customData": {"vendorId": "v"}}}},
    ("2.0.1", "StatusNotification"): {"timestamp": "2026-11-24T18:00:00Z", "connectorStatus": "Occupied",
                                      "evseId": 1, "connectorId": 1, "customData": {"vendorId": "v", "x": 1}},
    ("2.0.1", "Heartbeat"): {"customData": {"vendorId": "v"}},
}


@pytest.mark.parametrize("pair", list(SCHEMA_FILES), ids=[" ".join(p) for p in SCHEMA_FILES])
def test_mutations_agree_with_the_official_schema(pair):
    """One-place mutations: we accept exactly what the official schema accepts, minus our documented extra rules."""
    # official rejects ⇒ ours rejects; ours rejects ⇒ official rejects or a documented extra rule is broken.
    schema = official_schema(pair)
    base = BASE_PAYLOADS[pair]
    assert official_accepts(pair, base) and ours_accepts(pair, base)
    disagreements, count = [], 0
    for description, payload in mutations(schema, schema, base):
        count += 1
        official, ours = official_accepts(pair, payload), ours_accepts(pair, payload)
        if official != ours and not (official and breaks_extra_rule(pair, payload)):
            disagreements.append((description, official, ours))
    assert count >= (1 if pair[1] == "Heartbeat" and pair[0] == "1.6" else 30)
    assert not disagreements, disagreements


def test_offset_less_timestamp_is_our_one_leniency():
    """The official schema (format date-time) refuses an offset-less timestamp; we read it as UTC, as documented."""
    pair = ("2.0.1", "StatusNotification")
    payload = {**BASE_PAYLOADS[pair], "timestamp": "2026-11-24T18:00:00"}
    assert not official_accepts(pair, payload)
    assert ours_accepts(pair, payload)


def test_date_time_format_is_actually_checked_by_the_oracle():
    """Without rfc3339-validator, jsonschema silently skips `format: date-time`: make sure the oracle has teeth."""
    assert "date-time" in jsonschema.FormatChecker().checkers
    assert not official_accepts(("1.6", "StatusNotification"), {**BASE_PAYLOADS["1.6", "StatusNotification"],
                                                                 "timestamp": "yesterday"})


@given(st.sampled_from(list(SCHEMA_FILES)), st.dictionaries(st.sampled_from(
    ["connectorId", "errorCode", "status", "timestamp", "evseId", "connectorStatus", "reason", "chargingStation",
     "chargePointVendor", "chargePointModel", "info", "customData", "other"]),
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(
        ["Available", "NoError", "Occupied", "PowerUp", "2026-11-24T18:00:00Z", "x", "a\x00"]),
        st.fixed_dictionaries({"vendorName": st.just("v"), "model": st.just("m")}),
        st.fixed_dictionaries({"vendorId": st.just("v")})), max_size=5))
@settings(max_examples=300, deadline=None)
def test_random_payloads_agree_with_the_official_schema(pair, payload):
    """Random near-miss payloads: we accept iff the official schema accepts and no documented extra rule is broken."""
    expected = official_accepts(pair, payload) and not breaks_extra_rule(pair, payload)
    assert ours_accepts(pair, payload) == expected, payload
