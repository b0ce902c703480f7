"""One place per action: every tracked (version, action) decodes, coalesces and writes, and an envelope or an
event type that nothing handles is an explicit error, never a silent fallthrough."""

from __future__ import annotations

import uuid

import asyncpg
import orjson
import pytest

import consumer.actions as actions
from consumer.coalesce import ChargePointRow, coalesce
from consumer.decode import decode
from consumer.migrate import migrate
from consumer.store import apply_events
from schemas.envelope import TRACKED_ENVELOPES, version_and_action
from schemas.events import BootNotification, Heartbeat, NotifyEvent, Rejection, StatusNotification

AT = "2026-11-24T12:00:00Z"
# One valid payload per tracked (version, action), and the internal event and row it must give. A new action or
# version fails test_every_tracked_action_has_an_example until it is added here.
EXAMPLES = {
    ("1.6", "BootNotification"): (
        {"chargePointVendor": "Alfen", "chargePointModel": "Eve", "firmwareVersion": "1.2"},
        BootNotification, ("charge_point", "vendor", "Alfen"),
    ),
    ("1.6", "StatusNotification"): (
        {"connectorId": 2, "errorCode": "GroundFailure", "status": "Faulted", "timestamp": AT},
        StatusNotification, ("connector", "status", "FAULTED"),
    ),
    ("1.6", "Heartbeat"): ({}, Heartbeat, ("charge_point", "last_heartbeat", AT)),
    ("2.0.1", "BootNotification"): (
        {"reason": "PowerUp", "chargingStation": {"vendorName": "ABB", "model": "Terra"}},
        BootNotification, ("charge_point", "model", "Terra"),
    ),
    ("2.0.1", "StatusNotification"): (
        {"timestamp": AT, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1},
        StatusNotification, ("connector", "status", "OCCUPIED"),
    ),
    ("2.0.1", "Heartbeat"): ({}, Heartbeat, ("charge_point", "last_heartbeat", AT)),
    ("2.0.1", "NotifyEvent"): (
        {"generatedAt": AT, "seqNo": 0, "eventData": [{
            "eventId": 7, "timestamp": AT, "trigger": "Delta", "actualValue": "Faulted",
            "eventNotificationType": "HardWiredNotification", "variable": {"name": "AvailabilityState"},
            "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}}}]},
        NotifyEvent, ("connector", "status", "FAULTED"),
    ),
    ("2.1", "BootNotification"): (
        {"reason": "FirmwareUpdate", "chargingStation": {"vendorName": "ABB", "model": "Terra", "serialNumber": "T1"}},
        BootNotification, ("charge_point", "boot_reason", "FIRMWARE_UPDATE"),
    ),
    ("2.1", "StatusNotification"): (
        {"timestamp": AT, "connectorStatus": "Reserved", "evseId": 1, "connectorId": 2},
        StatusNotification, ("evse_connector", "status", "RESERVED"),
    ),
    ("2.1", "Heartbeat"): ({}, Heartbeat, ("charge_point", "last_heartbeat", AT)),
    ("2.1", "NotifyEvent"): (
        {"generatedAt": AT, "seqNo": 0, "eventData": [{
            "eventId": 7, "timestamp": AT, "trigger": "Delta", "actualValue": "Unavailable", "severity": 3,
            "eventNotificationType": "HardWiredNotification", "variable": {"name": "AvailabilityState"},
            "component": {"name": "ChargingStation"}}]},
        NotifyEvent, ("charge_point", "status", "UNAVAILABLE"),
    ),
}


def _record(version: str, action: str, payload: dict) -> bytes:
    return orjson.dumps({"event_id": str(uuid.uuid4()), "charge_point_id": "CP-1", "ocpp_version": version,
                         "action": action, "received_at": AT, "payload": payload})


def test_every_tracked_action_has_an_example():
    """The table below covers exactly the tracked pairs, so that the end-to-end test covers every one."""
    assert set(EXAMPLES) == {version_and_action(e) for e in TRACKED_ENVELOPES}


@pytest.mark.postgres
@pytest.mark.parametrize("pair", sorted(EXAMPLES), ids=lambda p: f"{p[0]}-{p[1]}")
async def test_every_tracked_action_decodes_coalesces_and_writes(pair, database_url):
    """The action's record becomes its event, folds into a row, and the row lands in its table; a status lands
    in status_history too, under the action that reported it."""
    payload, event_type, (table, column, expected) = EXAMPLES[pair]
    event = decode(_record(*pair, payload), b"CP-1")
    assert type(event) is event_type
    batch = coalesce([event])
    assert [ChargePointRow._make(row).serial_number for row in batch.charge_points] == ["CP-1"]
    await migrate(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await apply_events(conn, [event])
        key = "serial_number" if table == "charge_point" else "charge_point_id"
        value = await conn.fetchval(f"SELECT {column} FROM {table} WHERE {key} = 'CP-1'")
        history = [tuple(row) for row in await conn.fetch(
            "SELECT source_action, ocpp_version, status FROM status_history")]
    finally:
        await conn.close()
    shown = value.isoformat().replace("+00:00", "Z") if hasattr(value, "isoformat") else value
    assert shown == expected
    if column == "status":
        assert history == [(pair[1], pair[0], expected)]
    else:
        assert history == []


def test_an_envelope_without_a_converter_fails_at_import(monkeypatch):
    """Declaring an envelope without saying how it becomes an event stops the service from loading."""
    missing = TRACKED_ENVELOPES[0]
    monkeypatch.setattr(actions, "CONVERTERS", {k: v for k, v in actions.CONVERTERS.items() if k is not missing})
    with pytest.raises(ImportError, match="without a converter"):
        actions._check_complete()


def test_a_converter_for_an_undeclared_envelope_fails_at_import(monkeypatch):
    """A converter whose envelope is not in TRACKED_ENVELOPES would never run: refused too."""
    monkeypatch.setattr(actions, "TRACKED_ENVELOPES", TRACKED_ENVELOPES[1:])
    with pytest.raises(ImportError, match="missing from TRACKED_ENVELOPES"):
        actions._check_complete()


def test_decode_refuses_an_envelope_nothing_converts(monkeypatch):
    """Were the import check bypassed, the record is dead-lettered as `internal`, not read as another action."""
    import consumer.decode as decode_module

    envelope = TRACKED_ENVELOPES[0]
    monkeypatch.setattr(decode_module, "CONVERTERS", {k: v for k, v in actions.CONVERTERS.items() if k is not envelope})
    version, action = version_and_action(envelope)
    result = decode(_record(version, action, EXAMPLES[version, action][0]), None)
    assert result == Rejection("internal", f"no converter for {envelope.__name__}")


def test_coalesce_refuses_an_event_type_nothing_folds():
    """An internal event without a fold is a programming error: coalesce raises instead of dropping it."""
    with pytest.raises(TypeError, match="not a state event"):
        coalesce([object()])
