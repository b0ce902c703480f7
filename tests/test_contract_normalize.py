"""Normalization: every enum value of OCPP 1.6 status/errorCode, 2.x connectorStatus (StatusNotification and
NotifyEvent AvailabilityState) and 2.x boot reason, end to end.

The expected names are written out here by hand, independently of consumer/normalize.py, and the lists of
values come from the official schemas shipped by the `ocpp` package, so a value missing from either side fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import ocpp
import pytest

from consumer.decode import decode
from schemas.events import StatusNotification
from tests.test_contract_decode import record, sn16, sn201

SCHEMAS = Path(ocpp.__file__).parent


def official_enum(path: str, *where: str) -> list[str]:
    node = json.loads((SCHEMAS / path).read_text())
    for step in where:
        node = node[step]
    return node["enum"]


STATUS_16 = {
    "Available": "AVAILABLE", "Preparing": "PREPARING", "Charging": "CHARGING", "SuspendedEVSE": "SUSPENDED_EVSE",
    "SuspendedEV": "SUSPENDED_EV", "Finishing": "FINISHING", "Reserved": "RESERVED", "Unavailable": "UNAVAILABLE",
    "Faulted": "FAULTED",
}
ERROR_16 = {
    "ConnectorLockFailure": "CONNECTOR_LOCK_FAILURE", "EVCommunicationError": "EV_COMMUNICATION_ERROR",
    "GroundFailure": "GROUND_FAILURE", "HighTemperature": "HIGH_TEMPERATURE", "InternalError": "INTERNAL_ERROR",
    "LocalListConflict": "LOCAL_LIST_CONFLICT", "NoError": None, "OtherError": "OTHER_ERROR",
    "OverCurrentFailure": "OVER_CURRENT_FAILURE", "PowerMeterFailure": "POWER_METER_FAILURE",
    "PowerSwitchFailure": "POWER_SWITCH_FAILURE", "ReaderFailure": "READER_FAILURE", "ResetFailure": "RESET_FAILURE",
    "UnderVoltage": "UNDER_VOLTAGE", "OverVoltage": "OVER_VOLTAGE", "WeakSignal": "WEAK_SIGNAL",
}
STATUS_201 = {
    "Available": "AVAILABLE", "Occupied": "OCCUPIED", "Reserved": "RESERVED", "Unavailable": "UNAVAILABLE",
    "Faulted": "FAULTED",
}
BOOT_REASON_2X = {
    "ApplicationReset": "APPLICATION_RESET", "FirmwareUpdate": "FIRMWARE_UPDATE", "LocalReset": "LOCAL_RESET",
    "PowerUp": "POWER_UP", "RemoteReset": "REMOTE_RESET", "ScheduledReset": "SCHEDULED_RESET",
    "Triggered": "TRIGGERED", "Unknown": "UNKNOWN", "Watchdog": "WATCHDOG",
}


def test_expected_tables_cover_exactly_the_official_enums():
    """The hand-written tables name every official value and no other."""
    assert set(STATUS_16) == set(official_enum("v16/schemas/StatusNotification.json", "properties", "status"))
    assert set(ERROR_16) == set(official_enum("v16/schemas/StatusNotification.json", "properties", "errorCode"))
    for version in ("v201", "v21"):
        assert set(STATUS_201) == set(
            official_enum(f"{version}/schemas/StatusNotificationRequest.json", "definitions", "ConnectorStatusEnumType")
        )
        assert set(BOOT_REASON_2X) == set(
            official_enum(f"{version}/schemas/BootNotificationRequest.json", "definitions", "BootReasonEnumType")
        )


@pytest.mark.parametrize(("value", "expected"), STATUS_16.items())
def test_status_16(value, expected):
    """Each 1.6 status becomes its UPPER_SNAKE_CASE name (EVSE and EV kept whole)."""
    event = decode(sn16(status=value), None)
    assert isinstance(event, StatusNotification) and event.status == expected


@pytest.mark.parametrize(("value", "expected"), ERROR_16.items())
def test_error_code_16(value, expected):
    """Each 1.6 error code becomes its UPPER_SNAKE_CASE name; NoError means no error (None)."""
    event = decode(sn16(status="Faulted", errorCode=value), None)
    assert isinstance(event, StatusNotification) and event.error_code == expected


@pytest.mark.parametrize(("value", "expected"), STATUS_201.items())
def test_connector_status_201(value, expected):
    """Each 2.0.1 connectorStatus becomes its UPPER_SNAKE_CASE name, with no error code."""
    event = decode(sn201(connectorStatus=value), None)
    assert isinstance(event, StatusNotification) and (event.status, event.error_code) == (expected, None)


@pytest.mark.parametrize(("value", "expected"), STATUS_201.items())
@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_availability_state(version, value, expected):
    """Each connector status a NotifyEvent AvailabilityState reports becomes the same status."""
    item = {"eventId": 1, "timestamp": "2026-11-24T18:59:00Z", "trigger": "Delta", "actualValue": value,
            "eventNotificationType": "HardWiredNotification", "variable": {"name": "AvailabilityState"},
            "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}}}
    event = decode(record(version, "NotifyEvent", {"generatedAt": "2026-11-24T18:59:00Z", "seqNo": 0,
                                                   "eventData": [item]}), None)
    assert [(s.status, s.error_code) for s in event.statuses] == [(expected, None)]


@pytest.mark.parametrize(("value", "expected"), BOOT_REASON_2X.items())
@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_boot_reason(version, value, expected):
    """Each 2.x boot reason becomes its UPPER_SNAKE_CASE name."""
    event = decode(record(version, "BootNotification", {"reason": value, "chargingStation": {
        "vendorName": "v", "model": "m"}}), None)
    assert event.boot_reason == expected
