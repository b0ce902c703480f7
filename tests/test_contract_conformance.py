"""Conformance with the official OCPP JSON schemas, used as an outside oracle.

The schemas and call classes come from the `ocpp` package (1.6 JSON; 2.0.1 FINAL; 2.1 Edition 1, shipped since
`ocpp` 2.1.0), validated with `jsonschema`
including format checking (`date-time` needs the rfc3339-validator package). Ours must accept what the official
schema accepts and reject what it rejects, except where docs/contract.md states an extra rule of ours
(`breaks_extra_rule` below is that list, written independently of the decoder) or the one leniency (an
offset-less timestamp is UTC), which the generated and mutated payloads below never contain.
"""

from __future__ import annotations

import copy
import importlib.metadata
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
from ocpp.v21 import call as call21
from ocpp.v21 import datatypes as types21
from ocpp.v21 import enums as enums21

from consumer.decode import decode
from schemas.envelope import TRACKED_ENVELOPES, version_and_action
from schemas.events import BootNotification, Heartbeat, NotifyEvent, Rejection, StatusNotification
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
    ("2.0.1", "NotifyEvent"): "v201/schemas/NotifyEventRequest.json",
    ("2.1", "BootNotification"): "v21/schemas/BootNotificationRequest.json",
    ("2.1", "StatusNotification"): "v21/schemas/StatusNotificationRequest.json",
    ("2.1", "Heartbeat"): "v21/schemas/HeartbeatRequest.json",
    ("2.1", "NotifyEvent"): "v21/schemas/NotifyEventRequest.json",
}
EVENT_CLASS = {"BootNotification": BootNotification, "StatusNotification": StatusNotification, "Heartbeat": Heartbeat,
               "NotifyEvent": NotifyEvent}
# Our rule 2 (docs/contract.md): integer properties of these names are ids, 0…PG_INT_MAX (1.6 connectorId, 2.x
# evseId and connectorId, and a component's evse.id and evse.connectorId).
ID_NAMES = ("connectorId", "evseId", "id")
# What a NotifyEvent availability item may report (docs/contract.md, NotifyEvent).
CONNECTOR_STATUSES = {"Available", "Occupied", "Reserved", "Unavailable", "Faulted"}


def test_every_tracked_pair_has_its_official_schema():
    """Every (version, action) the service tracks is checked here against its official schema."""
    assert set(SCHEMA_FILES) == {version_and_action(e) for e in TRACKED_ENVELOPES}


def test_the_ocpp_package_ships_the_2_1_schemas():
    """The oracle for 2.1 exists: ocpp >= 2.1.0 (pyproject.toml's test extra pins it)."""
    installed = importlib.metadata.version("ocpp")
    assert tuple(int(part) for part in installed.split(".")[:2]) >= (2, 1), installed
    assert all((SCHEMAS / path).is_file() for path in SCHEMA_FILES.values())


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


def declared_values(schema: dict, node: dict, value: Any, path: tuple = ()) -> Iterator[tuple[tuple, dict, Any]]:
    """(path, resolved property schema, value) for every property of `value` that the (sub)schema declares,
    through objects and arrays: how the extra rules find every integer and date-time, however deep."""
    node = _resolve(schema, node)
    if isinstance(value, dict):
        for key, prop in node.get("properties", {}).items():
            if key in value:
                prop = _resolve(schema, prop)
                yield path + (key,), prop, value[key]
                yield from declared_values(schema, prop, value[key], path + (key,))
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for i, item in enumerate(value):
            yield from declared_values(schema, node["items"], item, path + (i,))


def _is_availability_of_a_port_or_station(item: Any) -> bool:
    """A NotifyEvent item the service reads as a status (docs/contract.md), written independently of the code."""
    try:
        if item["variable"]["name"].lower() != "availabilitystate":
            return False
        component = item["component"]
        if component["name"].lower() == "chargingstation":
            return True
        evse = component.get("evse") or {}
        return component["name"].lower() == "connector" and evse.get("id", 0) >= 1 and "connectorId" in evse
    except (AttributeError, KeyError, TypeError):
        return False


def breaks_extra_rule(pair: tuple[str, str], payload: Any) -> bool:
    """Does the payload break one of the rules docs/contract.md adds to the official schema?"""
    if any("\x00" in s for s in _strings(payload)):
        return True  # rule 1: no NUL
    schema = official_schema(pair)
    for path, prop, value in declared_values(schema, schema, payload):
        if prop.get("type") == "integer":
            if isinstance(value, float) and value.is_integer():
                return True  # a number with a fraction part is not an integer for us
            if (path[-1] in ID_NAMES and isinstance(value, int) and not isinstance(value, bool)
                    and not 0 <= value <= PG_INT_MAX):
                return True  # rule 2: ids within 0…2^31-1
        if prop.get("format") == "date-time" and isinstance(value, str):
            try:
                datetime.fromisoformat(value.upper().replace("Z", "+00:00")).astimezone(timezone.utc)
            except (ValueError, OverflowError):
                return True  # rule 3: a real calendar time within years 1…9999 in UTC
    if pair[1] == "NotifyEvent" and isinstance(payload, dict) and isinstance(payload.get("eventData"), list):
        for item in payload["eventData"]:
            if _is_availability_of_a_port_or_station(item) and item.get("actualValue") not in CONNECTOR_STATUSES:
                return True  # an availability must be one of the five connector statuses
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
    pytest.param(("2.0.1", "NotifyEvent"), call201.NotifyEvent(
        generated_at="2026-11-24T18:59:00Z", seq_no=0, tbc=False, custom_data={"vendor_id": "x"}, event_data=[
            types201.EventDataType(
                event_id=1, timestamp="2026-11-24T18:58:59Z", trigger=enums201.EventTriggerEnumType.delta,
                actual_value="Occupied", event_notification_type=enums201.EventNotificationEnumType.hard_wired_notification,
                component=types201.ComponentType(name="Connector", evse=types201.EVSEType(id=1, connector_id=2)),
                variable=types201.VariableType(name="AvailabilityState"), cause=0, tech_code="T", tech_info="i",
                cleared=False, transaction_id="tx-1", variable_monitoring_id=3),
            types201.EventDataType(
                event_id=2, timestamp="2026-11-24T18:58:59Z", trigger=enums201.EventTriggerEnumType.periodic,
                actual_value="41.5", event_notification_type=enums201.EventNotificationEnumType.custom_monitor,
                component=types201.ComponentType(name="ChargingStation", instance="main"),
                variable=types201.VariableType(name="Temperature", instance="inlet"))]),
        id="201-notify-event"),
    *[pytest.param(("2.1", "BootNotification"), call21.BootNotification(
        charging_station=types21.ChargingStationType(
            vendor_name="ABB", model="Terra AC", serial_number="T1", firmware_version="1.4.2",
            modem=types21.ModemType(iccid="8931", imsi="2040")),
        reason=reason, custom_data=types21.CustomDataType(vendor_id="com.abb")),
        id=f"21-boot-{reason.value}") for reason in enums21.BootReasonEnumType],
    *[pytest.param(("2.1", "StatusNotification"), call21.StatusNotification(
        timestamp="2026-11-24T18:59:00-03:30", connector_status=status, evse_id=i, connector_id=2),
        id=f"21-status-{status.value}") for i, status in enumerate(enums21.ConnectorStatusEnumType)],
    pytest.param(("2.1", "Heartbeat"), call21.Heartbeat(), id="21-heartbeat"),
    *[pytest.param(("2.1", "NotifyEvent"), call21.NotifyEvent(
        generated_at="2026-11-24T18:59:00Z", seq_no=4, event_data=[types21.EventDataType(
            event_id=9, timestamp="2026-11-24T18:58:59.5Z", trigger=enums21.EventTriggerEnumType.alerting,
            actual_value=status.value, event_notification_type=enums21.EventNotificationEnumType.preconfigured_monitor,
            component=types21.ComponentType(name="Connector", evse=types21.EVSEType(id=2, connector_id=1)),
            variable=types21.VariableType(name="AvailabilityState"), severity=5)]),
        id=f"21-notify-event-{status.value}") for status in enums21.ConnectorStatusEnumType],
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
    schema.pop("$id", None)  # 2.1's urn:OCPP:… base defeats hypothesis-jsonschema's resolution of "#/definitions/…"
    for node in [schema, *schema.get("definitions", {}).values()]:
        for name, prop in node.get("properties", {}).items():
            if name in ID_NAMES and prop.get("type") == "integer":
                prop.update(minimum=0, maximum=PG_INT_MAX)
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
        if prop.get("type") == "array" and payload.get(key) and isinstance(payload[key][0], dict):
            # Into the first element of an array of objects (NotifyEvent's eventData), and an empty array.
            yield f"{path + (key,)} = []", changed(key, [])
            for description, inner in mutations(schema, prop["items"], payload[key][0], path + (key, 0)):
                yield description, changed(key, [inner, *payload[key][1:]])


_DELETE = object()
BASE_EVENT_DATA = {"eventId": 1, "timestamp": "2026-11-24T17:59:59Z", "trigger": "Delta", "actualValue": "Occupied",
                   "eventNotificationType": "HardWiredNotification", "variable": {"name": "AvailabilityState"},
                   "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}}}

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
    ("2.0.1", "NotifyEvent"): {"generatedAt": "2026-11-24T18:00:00Z", "seqNo": 0, "tbc": False, "eventData": [{
        "eventId": 1, "timestamp": "2026-11-24T17:59:59Z", "trigger": "Delta", "actualValue": "Occupied",
        "eventNotificationType": "HardWiredNotification", "cause": 0, "cleared": False, "variableMonitoringId": 2,
        "techCode": "t", "techInfo": "i", "transactionId": "x", "customData": {"vendorId": "v"},
        "variable": {"name": "AvailabilityState", "instance": "i"},
        "component": {"name": "Connector", "instance": "i", "evse": {"id": 1, "connectorId": 2}}}]},
    ("2.1", "BootNotification"): {"reason": "FirmwareUpdate", "chargingStation": {
        "vendorName": "ABB", "model": "Terra", "serialNumber": "T1", "modem": {"imsi": "1"}}},
    ("2.1", "StatusNotification"): {"timestamp": "2026-11-24T18:00:00Z", "connectorStatus": "Reserved",
                                    "evseId": 2, "connectorId": 1},
    ("2.1", "Heartbeat"): {},
    ("2.1", "NotifyEvent"): {"generatedAt": "2026-11-24T18:00:00Z", "seqNo": 1, "eventData": [{
        "eventId": 1, "timestamp": "2026-11-24T17:59:59Z", "trigger": "Periodic", "actualValue": "Unavailable",
        "eventNotificationType": "CustomMonitor", "severity": 2, "cause": 1,
        "variable": {"name": "AvailabilityState"}, "component": {"name": "ChargingStation"}}]},
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
    assert count >= (1 if pair[1] == "Heartbeat" and pair[0] != "2.0.1" else 30)
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
     "chargePointVendor", "chargePointModel", "info", "customData", "generatedAt", "seqNo", "eventData", "other"]),
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(
        ["Available", "NoError", "Occupied", "PowerUp", "2026-11-24T18:00:00Z", "x", "a\x00"]),
        st.fixed_dictionaries({"vendorName": st.just("v"), "model": st.just("m")}),
        st.fixed_dictionaries({"vendorId": st.just("v")}),
        st.lists(st.sampled_from([BASE_EVENT_DATA, {**BASE_EVENT_DATA, "actualValue": "x"}, {"eventId": 1}]),
                 max_size=2)), max_size=5))
@settings(max_examples=300, deadline=None)
def test_random_payloads_agree_with_the_official_schema(pair, payload):
    """Random near-miss payloads: we accept iff the official schema accepts and no documented extra rule is broken."""
    expected = official_accepts(pair, payload) and not breaks_extra_rule(pair, payload)
    assert ours_accepts(pair, payload) == expected, payload
