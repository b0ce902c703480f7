"""decode(): every kind of malformed record is rejected with the right kind, and the edge cases that are valid
are decoded as docs/contract.md says. Pure Python: no broker, no database.

The `envelope`/`record` helpers here are shared by the other test_contract_* modules.
"""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import UUID

import json

import pytest

from consumer.decode import MAX_DETAIL, decode
from schemas.events import BootNotification, Heartbeat, Ignored, Rejection, StatusNotification

EVENT_ID = "0b9e5a4c-6f1d-4e2b-9a3c-5d7e8f901234"
RECEIVED = "2026-11-24T19:00:00Z"
UTC = timezone.utc

PAYLOADS = {
    ("1.6", "BootNotification"): {"chargePointVendor": "Alfen BV", "chargePointModel": "Eve", "firmwareVersion": "5.8"},
    ("1.6", "StatusNotification"): {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
    ("1.6", "Heartbeat"): {},
    ("2.0.1", "BootNotification"): {"reason": "PowerUp", "chargingStation": {"vendorName": "ABB", "model": "Terra"}},
    ("2.0.1", "StatusNotification"): {
        "timestamp": "2026-11-24T18:59:59Z", "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1,
    },
    ("2.0.1", "Heartbeat"): {},
}


def envelope(version: str = "1.6", action: str = "StatusNotification", payload: object = None, **fields) -> dict:
    """A valid envelope, with `payload` and any top-level field replaced (a value of DROP removes the field)."""
    out = {
        "event_id": EVENT_ID, "charge_point_id": "CP-1", "ocpp_version": version, "action": action,
        "received_at": RECEIVED, "payload": PAYLOADS.get((version, action), {}) if payload is None else payload,
    }
    out.update(fields)
    return {k: v for k, v in out.items() if v is not DROP}


DROP = object()


def record(version: str = "1.6", action: str = "StatusNotification", payload: object = None, **fields) -> bytes:
    """The envelope as compact UTF-8 JSON (the json module, not orjson: it also writes integers beyond 64 bits)."""
    return json.dumps(envelope(version, action, payload, **fields), ensure_ascii=False, separators=(",", ":")).encode()


def sn16(**changes) -> bytes:
    """A 1.6 StatusNotification record with payload fields changed (DROP removes one)."""
    payload = {**PAYLOADS["1.6", "StatusNotification"], **changes}
    return record(payload={k: v for k, v in payload.items() if v is not DROP})


def sn201(**changes) -> bytes:
    payload = {**PAYLOADS["2.0.1", "StatusNotification"], **changes}
    return record("2.0.1", payload={k: v for k, v in payload.items() if v is not DROP})


def boot201(**station_changes) -> bytes:
    station = {**PAYLOADS["2.0.1", "BootNotification"]["chargingStation"], **station_changes}
    return record("2.0.1", "BootNotification", {"reason": "PowerUp", "chargingStation": station})


GOOD = record()

# (id, value, key, expected kind, extra decode() arguments)
MALFORMED = [
    # -- the bytes
    ("missing value", None, None, "empty", {}),
    ("empty value", b"", None, "empty", {}),
    ("over max_record_bytes", GOOD, None, "too_large", {"max_record_bytes": len(GOOD) - 1}),
    ("huge value over the default limit", record(payload={**PAYLOADS["1.6", "StatusNotification"],
                                                          "info": "x" * 1_100_000}), None, "too_large", {}),
    ("invalid start byte", b"\xff\xfe{}", None, "not_utf8", {}),
    ("latin-1 inside a string", GOOD.replace(b"CP-1", b"CP-\xe9"), None, "not_utf8", {}),
    ("UTF-16 encoded", GOOD.decode().encode("utf-16"), None, "not_utf8", {}),
    ("UTF-8-encoded surrogate", GOOD.replace(b"CP-1", b"CP-\xed\xa0\x80"), None, "not_utf8", {}),
    ("truncated JSON", GOOD[:-7], None, "not_json", {}),
    ("trailing garbage", GOOD + b"}", None, "not_json", {}),
    ("two objects", GOOD + b"\n" + GOOD, None, "not_json", {}),
    ("single quotes", GOOD.replace(b'"', b"'"), None, "not_json", {}),
    ("trailing comma", GOOD[:-1] + b",}", None, "not_json", {}),
    ("whitespace only", b"  \n ", None, "not_json", {}),
    ("raw newline inside a string", GOOD.replace(b"CP-1", b"CP-\n1"), None, "not_json", {}),
    ("raw NUL byte inside a string", GOOD.replace(b"CP-1", b"CP-\x001"), None, "not_json", {}),
    ("lone surrogate escape", GOOD.replace(b"CP-1", b"CP-\\ud800"), None, "not_json", {}),
    ("NaN in an ignored payload", record(action="MeterValues", payload={"x": 1}).replace(b'"x":1', b'"x":NaN'),
     None, "not_json", {}),
    ("-Infinity in an unknown envelope field", GOOD[:-1] + b',"extra":-Infinity}', None, "not_json", {}),
    ("nesting beyond the parser limit", record(action="DataTransfer", payload={}).replace(
        b'"payload":{}', b'"payload":{"a":' + b"[" * 5000 + b"]" * 5000 + b"}"), None, "not_json", {}),
    # -- the envelope
    ("JSON array", b"[" + GOOD + b"]", None, "envelope", {}),
    ("JSON string", b'"hello"', None, "envelope", {}),
    ("JSON null", b"null", None, "envelope", {}),
    ("JSON number", b"42", None, "envelope", {}),
    ("missing event_id", record(event_id=DROP), None, "envelope", {}),
    ("bad UUID", record(event_id="0b9e5a4c-6f1d-4e2b-9a3c-5d7e8f90123"), None, "envelope", {}),
    ("UUID as urn", record(event_id="urn:uuid:" + EVENT_ID), None, "envelope", {}),
    ("UUID as number", record(event_id=12345), None, "envelope", {}),
    ("missing charge_point_id", record(charge_point_id=DROP), None, "envelope", {}),
    ("empty charge_point_id", record(charge_point_id=""), None, "envelope", {}),
    ("charge_point_id of 256 characters", record(charge_point_id="C" * 256), None, "envelope", {}),
    ("charge_point_id with a newline", record(charge_point_id="CP\n1"), None, "envelope", {}),
    ("charge_point_id with a C1 control", record(charge_point_id="CP\x851"), None, "envelope", {}),
    ("charge_point_id with NUL", record(charge_point_id="CP\x001"), None, "envelope", {}),
    ("charge_point_id as number", record(charge_point_id=1), None, "envelope", {}),
    ("unknown version", record(ocpp_version="1.5"), None, "envelope", {}),
    ("version 2.2 not supported", record(ocpp_version="2.2"), None, "envelope", {}),
    ("version 2.1.0 is not 2.1", record("2.1", "Heartbeat", ocpp_version="2.1.0"), None, "envelope", {}),
    ("version as number", record(ocpp_version=1.6), None, "envelope", {}),
    ("missing version", record(ocpp_version=DROP), None, "envelope", {}),
    ("missing action", record(action=DROP), None, "envelope", {}),
    ("empty action", record(action=""), None, "envelope", {}),
    ("action as list", record(payload={}, action=["Heartbeat"]), None, "envelope", {}),
    ("missing received_at", record(received_at=DROP), None, "envelope", {}),
    ("received_at as epoch string", record(received_at="1764010800"), None, "envelope", {}),
    ("received_at as epoch number", record(received_at=1764010800), None, "envelope", {}),
    ("received_at with a space separator", record(received_at="2026-11-24 19:00:00Z"), None, "envelope", {}),
    ("received_at offset without colon", record(received_at="2026-11-24T19:00:00+0100"), None, "envelope", {}),
    ("received_at without seconds", record(received_at="2026-11-24T19:00Z"), None, "envelope", {}),
    ("received_at date only", record(received_at="2026-11-24"), None, "envelope", {}),
    ("received_at February 30", record(received_at="2026-02-30T19:00:00Z"), None, "envelope", {}),
    ("received_at leap second", record(received_at="2016-12-31T23:59:60Z"), None, "envelope", {}),
    ("received_at February 30 on an ignored action", record(action="MeterValues", payload={},
                                                             received_at="2026-02-30T19:00:00Z"), None, "envelope", {}),
    ("received_at before year 1 in UTC", record(received_at="0001-01-01T00:00:00+01:00"), None, "envelope", {}),
    ("received_at with an Arabic-Indic digit", record(received_at="2026-11-24T19:00:0\u0660Z"), None, "envelope", {}),
    ("missing payload", record(payload=DROP), None, "envelope", {}),
    ("payload of an ignored action not an object", record(action="Authorize", payload=[1]), None, "payload", {}),
    ("NUL in an unknown envelope field", GOOD[:-1] + b',"note":"a\\u0000"}', None, "envelope", {}),
    # -- the payload
    ("payload is a list", record(payload=[]), None, "payload", {}),
    ("wrong enum case", sn16(status="available"), None, "payload", {}),
    ("unknown error code", sn16(errorCode="NoProblem"), None, "payload", {}),
    ("2.0.1 status in 1.6", sn16(status="Occupied"), None, "payload", {}),
    ("1.6 status in 2.0.1", sn201(connectorStatus="Charging"), None, "payload", {}),
    ("1.6 status in 2.1", record("2.1", payload={**PAYLOADS["2.0.1", "StatusNotification"],
                                                 "connectorStatus": "Charging"}), None, "payload", {}),
    ("1.6 payload in 2.1", record("2.1", payload=PAYLOADS["1.6", "StatusNotification"]), None, "payload", {}),
    ("2.1 evseId as float", record("2.1", payload={**PAYLOADS["2.0.1", "StatusNotification"], "evseId": 1.0}),
     None, "payload", {}),
    ("negative connectorId", sn16(connectorId=-1), None, "payload", {}),
    ("connectorId beyond PostgreSQL integer", sn16(connectorId=2**31), None, "payload", {}),
    ("connectorId beyond 64 bits", sn16(connectorId=10**30), None, "payload", {}),
    ("connectorId as string", sn16(connectorId="1"), None, "payload", {}),
    ("connectorId as float", sn16(connectorId=1.0), None, "payload", {}),
    ("connectorId as boolean", sn16(connectorId=True), None, "payload", {}),
    ("missing errorCode", sn16(errorCode=DROP), None, "payload", {}),
    ("missing connectorId", sn16(connectorId=DROP), None, "payload", {}),
    ("extra property in 1.6 StatusNotification", sn16(power=11), None, "payload", {}),
    ("extra property in 1.6 Heartbeat", record(action="Heartbeat", payload={"x": 1}), None, "payload", {}),
    ("extra property in 2.0.1 Heartbeat", record("2.0.1", "Heartbeat", {"x": 1}), None, "payload", {}),
    ("null for an optional field", sn16(info=None), None, "payload", {}),
    ("info over maxLength", sn16(info="i" * 51), None, "payload", {}),
    ("vendor over maxLength", record(action="BootNotification", payload={
        "chargePointVendor": "v" * 21, "chargePointModel": "m"}), None, "payload", {}),
    ("1.6 timestamp offset without colon", sn16(timestamp="2026-11-24T19:00:00+0100"), None, "payload", {}),
    ("1.6 timestamp month 13", sn16(timestamp="2026-13-24T19:00:00Z"), None, "payload", {}),
    ("1.6 timestamp as number", sn16(timestamp=1764010800), None, "payload", {}),
    ("NUL in 1.6 info", sn16(info="a\x00b"), None, "payload", {}),
    ("2.0.1 missing timestamp", sn201(timestamp=DROP), None, "payload", {}),
    ("2.0.1 negative evseId", sn201(evseId=-2), None, "payload", {}),
    ("2.0.1 negative connectorId", sn201(connectorId=-1), None, "payload", {}),
    ("2.0.1 customData without vendorId", sn201(customData={"x": 1}), None, "payload", {}),
    ("2.0.1 customData vendorId over 255", sn201(customData={"vendorId": "v" * 256}), None, "payload", {}),
    ("2.0.1 NUL deep in customData", sn201(customData={"vendorId": "v", "a": [{"b": "\x00"}]}), None, "payload", {}),
    ("2.0.1 NUL in a customData key", sn201(customData={"vendorId": "v", "k\x00": 1}), None, "payload", {}),
    ("2.0.1 boot missing reason", record("2.0.1", "BootNotification", {
        "chargingStation": {"vendorName": "v", "model": "m"}}), None, "payload", {}),
    ("2.0.1 boot unknown reason", record("2.0.1", "BootNotification", {
        "reason": "Reboot", "chargingStation": {"vendorName": "v", "model": "m"}}), None, "payload", {}),
    ("2.0.1 boot extra station property", boot201(color="red"), None, "payload", {}),
    ("2.0.1 boot modem iccid over maxLength", boot201(modem={"iccid": "1" * 21}), None, "payload", {}),
    ("2.0.1 boot 1.6 field names", record("2.0.1", "BootNotification", PAYLOADS["1.6", "BootNotification"]),
     None, "payload", {}),
    ("NUL in an ignored action's payload", record(action="DataTransfer", payload={"data": "\x00"}), None, "payload",
     {}),
    # -- the key
    ("key differs", GOOD, b"CP-2", "key_mismatch", {}),
    ("empty key", GOOD, b"", "key_mismatch", {}),
    ("key with different case", GOOD, b"cp-1", "key_mismatch", {}),
    ("key not UTF-8", GOOD, b"CP-\xff", "key_mismatch", {}),
    ("key mismatch on an ignored action", record(action="Authorize", payload={}), b"CP-9", "key_mismatch", {}),
]


@pytest.mark.parametrize(("value", "key", "kind", "kwargs"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_record_is_rejected_with_its_kind(value, key, kind, kwargs):
    """Each malformed input becomes a Rejection of the documented kind, with a bounded, non-empty detail."""
    result = decode(value, key, **kwargs)
    assert isinstance(result, Rejection), result
    assert result.kind == kind, result
    assert 0 < len(result.detail) <= MAX_DETAIL


def test_the_table_is_large_and_distinct():
    """The malformed table keeps at least 40 distinct inputs (guards against copy-paste duplicates)."""
    inputs = {(c[1], c[2], tuple(sorted(c[4].items()))) for c in MALFORMED}
    assert len(inputs) == len(MALFORMED) >= 40


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (sn16(connectorId=-1), "payload.connectorId: Input should be greater than or equal to 0"),
        (sn16(status="available"), "payload.status: Input should be 'Available'"),
        (record(event_id=DROP), "event_id: Field required"),
        (record(ocpp_version="1.5"), "ocpp_version: Input should be '1.6', '2.0.1' or '2.1'"),
        (sn201(customData={"vendorId": "v", "a": [{"b": "\x00"}]}), "payload.customData.a.0.b: NUL"),
        (boot201(color="red"), "payload.chargingStation.color: Extra inputs are not permitted"),
        (record(received_at="2026-02-30T19:00:00Z"), "received_at: Input should be a valid date-time"),
        (b"[1]", "envelope: Input should be an object"),
    ],
)
def test_detail_names_the_offending_field(value, needle):
    """The detail says which field is wrong, with the dotted path a gateway developer can find."""
    result = decode(value, None)
    assert isinstance(result, Rejection) and needle in result.detail, result


def test_detail_is_bounded_for_huge_inputs():
    """A detail quoting a huge value, or listing many errors, stays within the Kafka-header budget."""
    many = record(payload={f"extra{i}": "y" * 500 for i in range(50)})
    huge = record(charge_point_id="C" * 100_000)
    for value in (many, huge):
        result = decode(value, None)
        assert isinstance(result, Rejection) and len(result.detail) <= MAX_DETAIL


# ---------------------------------------------------------------------------------------------- accepted


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_status_notification_16_is_normalized():
    """A 1.6 StatusNotification becomes the internal event with UPPER_SNAKE_CASE status and error code."""
    event = decode(sn16(status="SuspendedEVSE", errorCode="EVCommunicationError", connectorId=2), b"CP-1")
    assert event == StatusNotification(
        UUID(EVENT_ID), "CP-1", "1.6", at(RECEIVED), at(RECEIVED), False, 2, "SUSPENDED_EVSE", "EV_COMMUNICATION_ERROR"
    )


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_status_notification_2x_is_a_physical_connector_of_a_port(version):
    """2.x: connector_id is the evseId (the port), evse_connector_id the connectorId within it; no error code."""
    payload = {**PAYLOADS["2.0.1", "StatusNotification"], "evseId": 3, "connectorId": 2}
    event = decode(record(version, payload=payload), None)
    assert isinstance(event, StatusNotification) and event.ocpp_version == version
    assert (event.connector_id, event.evse_connector_id, event.status, event.error_code) == (3, 2, "OCCUPIED", None)
    assert (event.error_info, event.vendor_id, event.vendor_error_code) == (None, None, None)
    assert event.effective_at == at("2026-11-24T18:59:59Z") and not event.clock_skew_corrected


def test_status_notification_16_keeps_the_vendor_fault_details():
    """1.6 info, vendorId and vendorErrorCode ride along; a 1.6 connector is the port (no evse_connector_id)."""
    event = decode(sn16(status="Faulted", errorCode="OtherError", info="RCD tripped", vendorId="com.alfen",
                        vendorErrorCode="E-4017"), None)
    assert (event.status, event.error_code, event.evse_connector_id) == ("FAULTED", "OTHER_ERROR", None)
    assert (event.error_info, event.vendor_id, event.vendor_error_code) == ("RCD tripped", "com.alfen", "E-4017")


@pytest.mark.parametrize("value", [sn16(connectorId=0), sn201(evseId=0, connectorId=0)])
def test_id_zero_addresses_the_charge_point(value):
    """1.6 connectorId 0 and 2.0.1 evseId 0 both become connector_id 0."""
    assert decode(value, None).connector_id == 0


def test_boot_notifications_of_every_version():
    """BootNotification maps vendor/model/firmware from the version's own field names; absent firmware → None."""
    b16 = decode(record(action="BootNotification"), None)
    b201 = decode(record("2.0.1", "BootNotification"), None)
    b21 = decode(record("2.1", "BootNotification", PAYLOADS["2.0.1", "BootNotification"]), None)
    assert isinstance(b16, BootNotification) and isinstance(b201, BootNotification)
    assert (b16.vendor, b16.model, b16.firmware_version) == ("Alfen BV", "Eve", "5.8")
    assert (b201.vendor, b201.model, b201.firmware_version) == ("ABB", "Terra", None)
    assert (b21.vendor, b21.model, b21.ocpp_version) == ("ABB", "Terra", "2.1")
    assert b16.effective_at == b16.received_at == at(RECEIVED)
    assert (b16.hardware_serial, b16.boot_reason, b16.iccid, b16.imsi) == (None, None, None, None)
    assert (b201.boot_reason, b21.boot_reason) == ("POWER_UP", "POWER_UP")


def test_boot_notifications_keep_the_hardware_details():
    """Serial number, modem ICCID/IMSI (1.6 top-level fields, 2.x chargingStation) and the 2.x boot reason."""
    b16 = decode(record(action="BootNotification", payload={
        **PAYLOADS["1.6", "BootNotification"], "chargePointSerialNumber": "ACE0123456", "chargeBoxSerialNumber": "B",
        "iccid": "8931440400012345678", "imsi": "204043123456789"}), None)
    assert (b16.hardware_serial, b16.iccid, b16.imsi) == ("ACE0123456", "8931440400012345678", "204043123456789")
    b21 = decode(record("2.1", "BootNotification", {"reason": "FirmwareUpdate", "chargingStation": {
        "vendorName": "ABB", "model": "Terra", "serialNumber": "T-1", "modem": {"imsi": "2040"}}}), None)
    assert (b21.hardware_serial, b21.boot_reason, b21.iccid, b21.imsi) == ("T-1", "FIRMWARE_UPDATE", None, "2040")


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
def test_heartbeat(version):
    """A Heartbeat of either version is a Heartbeat effective at received_at."""
    event = decode(record(version, "Heartbeat"), b"CP-1")
    assert event == Heartbeat(UUID(EVENT_ID), "CP-1", version, at(RECEIVED), at(RECEIVED), False)


def test_naive_timestamps_are_utc():
    """Timestamps without an offset (received_at and payload.timestamp) are read as UTC."""
    event = decode(record(received_at="2026-11-24T19:00:00", payload={
        **PAYLOADS["1.6", "StatusNotification"], "timestamp": "2026-11-24T18:00:00.5"}), None)
    assert event.received_at == datetime(2026, 11, 24, 19, tzinfo=UTC)
    assert event.effective_at == datetime(2026, 11, 24, 18, 0, 0, 500000, tzinfo=UTC)
    assert event.received_at.tzinfo is UTC and event.effective_at.tzinfo is UTC


def test_offsets_are_converted_to_utc():
    """An offset is applied and the result is in UTC, including across midnight."""
    event = decode(record(received_at="2026-11-25T00:30:00+05:30", payload={
        **PAYLOADS["1.6", "StatusNotification"], "timestamp": "2026-11-24T13:00:00-06:00"}), None)
    assert event.received_at == datetime(2026, 11, 24, 19, 0, tzinfo=UTC) and event.received_at.tzinfo is UTC
    assert event.effective_at == datetime(2026, 11, 24, 19, 0, tzinfo=UTC) and event.effective_at.tzinfo is UTC


def test_lower_case_t_and_z_and_long_fractions_are_rfc3339():
    """RFC 3339 allows 't' and 'z'; fraction digits beyond microseconds are accepted and dropped."""
    event = decode(record(received_at="2026-11-24t19:00:00.123456789z"), None)
    assert event.received_at == datetime(2026, 11, 24, 19, 0, 0, 123456, tzinfo=UTC)


def test_future_timestamp_is_corrected():
    """A charger timestamp more than max_clock_skew_seconds after received_at is replaced by received_at."""
    event = decode(sn16(timestamp="2026-11-24T19:05:00.001Z"), None)
    assert event.effective_at == at(RECEIVED) and event.clock_skew_corrected


def test_timestamp_within_skew_is_kept():
    """Exactly max_clock_skew_seconds ahead is still believed; the limit is configurable."""
    value = sn16(timestamp="2026-11-24T19:05:00Z")
    kept = decode(value, None)
    assert kept.effective_at == at("2026-11-24T19:05:00Z") and not kept.clock_skew_corrected
    strict = decode(value, None, max_clock_skew_seconds=0)
    assert strict.effective_at == at(RECEIVED) and strict.clock_skew_corrected


def test_past_timestamp_is_believed():
    """A timestamp long before received_at (late delivery) is the effective time, uncorrected."""
    event = decode(sn16(timestamp="2026-11-20T00:00:00Z"), None)
    assert event.effective_at == at("2026-11-20T00:00:00Z") and not event.clock_skew_corrected


def test_1_6_status_without_timestamp_is_effective_at_received_at():
    """No payload.timestamp: the event holds from received_at."""
    assert decode(sn16(), None).effective_at == at(RECEIVED)


@pytest.mark.parametrize("action", ["MeterValues", "Authorize", "heartbeat", "Vendor.Specific/Thing"])
@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
def test_unknown_action_is_ignored(version, action):
    """Any other action is Ignored (not rejected), whatever its payload object holds; the event carries its
    receipt time, which is all it contributes (its charge point's row and last_updated)."""
    result = decode(record(version, action, {"anything": [1, {"goes": None}], "connectorId": -5}), b"CP-1")
    assert result == Ignored("CP-1", version, action, UUID(EVENT_ID), at(RECEIVED))
    assert result.effective_at == at(RECEIVED) and not result.clock_skew_corrected


def test_notify_event_in_1_6_is_an_untracked_action():
    """1.6 has no NotifyEvent: such a record is ignored like any action 1.6 does not track."""
    assert isinstance(decode(record("1.6", "NotifyEvent", {"eventData": "whatever"}), None), Ignored)


def test_an_ignored_record_gets_the_time_rules_too():
    """received_at after the Kafka record's publishing time is bounded for an ignored action as for any event."""
    published_ms = int(at("2026-11-24T18:00:00Z").timestamp() * 1000)
    result = decode(record(action="MeterValues", payload={}), None, record_timestamp_ms=published_ms)
    assert result.received_at == at("2026-11-24T18:00:00Z")
    assert result.time_corrections == ("received_at_after_publish",)


@pytest.mark.parametrize("key", [None, b"CP-1"])
def test_key_absent_or_equal_is_fine(key):
    """No key, or a key equal to charge_point_id, is accepted."""
    assert isinstance(decode(GOOD, key), StatusNotification)


def test_non_ascii_charge_point_id_matches_its_utf8_key():
    """The key is compared as UTF-8 bytes, so a non-ASCII id matches its UTF-8 encoding."""
    assert decode(record(charge_point_id="CP-Zürich-1"), "CP-Zürich-1".encode()).charge_point_id == "CP-Zürich-1"


def test_unknown_envelope_fields_are_ignored():
    """Extra top-level fields (a gateway upgrade) do not make a record invalid."""
    value = record(gateway="gw-7", schema_version=3, trace={"id": [1, 2]})
    assert isinstance(decode(value, None), StatusNotification)


def test_escaped_backslash_before_u0000_is_not_nul():
    """'\\\\u0000' in JSON is a backslash and the text u0000, not NUL: the cheap byte check must not reject it."""
    value = sn16(info="C:\\u0000")
    assert b"\\\\u0000" in value
    assert decode(value, None).status == "AVAILABLE"


def test_nan_inside_a_string_is_fine():
    """The text NaN or Infinity inside a string is not the non-JSON literal."""
    assert isinstance(decode(sn16(info="NaN Infinity"), None), StatusNotification)


def test_custom_data_with_vendor_properties_is_accepted():
    """2.0.1 customData carries any extra properties next to its vendorId, at every level that allows it."""
    custom = {"vendorId": "com.example", "n": 1.5, "deep": {"list": [True, None]}}
    value = record("2.0.1", "BootNotification", {"customData": custom, "reason": "Watchdog", "chargingStation": {
        "customData": custom, "vendorName": "v", "model": "m", "modem": {"customData": custom, "iccid": "1"}}})
    assert isinstance(decode(value, None), BootNotification)


def test_record_of_exactly_max_record_bytes_is_accepted():
    """The size limit is inclusive."""
    assert isinstance(decode(GOOD, None, max_record_bytes=len(GOOD)), StatusNotification)


def test_bytearray_value_decodes():
    """A client may hand over a bytearray; decode treats it like bytes."""
    assert isinstance(decode(bytearray(GOOD), bytearray(b"CP-1")), StatusNotification)
