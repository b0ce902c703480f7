"""NotifyEvent (2.0.1 and 2.1) decoded: which items are availability, what each becomes, the time rules per item,
the tie-break within a record, and the rejections. Pure Python: no broker, no database."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.decode import decode
from schemas.events import NotifyEvent, Rejection, StatusNotification
from tests.test_contract_decode import record

RECEIVED = datetime(2026, 11, 24, 19, tzinfo=timezone.utc)


def item(value: str = "Occupied", *, component: str = "Connector", evse: dict | None = None,
         variable: str = "AvailabilityState", timestamp: str = "2026-11-24T18:59:50Z", **extra) -> dict:
    """One eventData entry; a Connector of EVSE 1 by default."""
    if evse is None and component.lower() == "connector":
        evse = {"id": 1, "connectorId": 1}
    return {"eventId": 1, "timestamp": timestamp, "trigger": "Delta", "actualValue": value,
            "eventNotificationType": "HardWiredNotification", "variable": {"name": variable},
            "component": {"name": component, **({"evse": evse} if evse is not None else {})}, **extra}


def notify(*items: dict, version: str = "2.0.1", generated_at: str = "2026-11-24T18:59:55Z", **fields):
    return decode(record(version, "NotifyEvent", {"generatedAt": generated_at, "seqNo": 0, "eventData": list(items),
                                                  **fields}), b"CP-1")


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
def test_connector_availability_is_a_status_of_that_connector(version):
    """Connector + AvailabilityState: the status of (evse.id, evse.connectorId), effective at the item's time."""
    event = notify(item("Occupied", evse={"id": 2, "connectorId": 1}), version=version)
    assert isinstance(event, NotifyEvent) and event.ignored_items == 0
    [status] = event.statuses
    assert isinstance(status, StatusNotification)
    assert (status.connector_id, status.evse_connector_id, status.status, status.error_code) == (2, 1, "OCCUPIED",
                                                                                               None)
    assert status.effective_at == datetime(2026, 11, 24, 18, 59, 50, tzinfo=timezone.utc)
    assert (status.event_id, status.received_at, status.ocpp_version) == (event.event_id, RECEIVED, version)
    assert event.effective_at == datetime(2026, 11, 24, 18, 59, 55, tzinfo=timezone.utc)


def test_charging_station_availability_is_the_charge_points_status():
    """ChargingStation + AvailabilityState: the charge point's own status (connector_id 0)."""
    [status] = notify(item("Unavailable", component="ChargingStation")).statuses
    assert (status.connector_id, status.evse_connector_id, status.status) == (0, None, "UNAVAILABLE")


def test_names_compare_case_insensitively():
    """OCPP component and variable names are case-insensitive."""
    event = notify(item("Faulted", component="CONNECTOR", variable="availabilitystate"),
                   item("Available", component="chargingStation", variable="AVAILABILITYSTATE"))
    assert [s.status for s in event.statuses] == ["FAULTED", "AVAILABLE"]


@pytest.mark.parametrize("other", [
    item("42", variable="Temperature"),
    item("Available", component="EVSE", evse={"id": 1}),  # an EVSE's own AvailabilityState
    item("Available", evse={"id": 1}),  # a Connector without its connectorId
    item("Available", evse={"id": 0, "connectorId": 1}),  # a Connector of EVSE 0 is no port
    item("Occupied", component="Controller"),
    item("Available", component="ChargingStation", variable="Available"),
])
def test_other_items_are_ignored_and_counted(other):
    """Anything but an AvailabilityState of a Connector or of the ChargingStation changes nothing, and is
    counted; the availability items of the same record still count."""
    event = notify(other, item("Reserved"))
    assert [s.status for s in event.statuses] == ["RESERVED"] and event.ignored_items == 1


def test_ignored_items_are_not_checked_for_a_status():
    """Only availability items must hold one of the five statuses; other variables hold anything."""
    event = notify(item("not a status", variable="Problem"))
    assert event.statuses == () and event.ignored_items == 1


def test_a_record_of_only_other_items_is_still_an_event_of_its_charge_point():
    """A NotifyEvent with nothing about availability is valid and tracked: it moves last_updated only."""
    event = notify(item("20.5", variable="Temperature"))
    assert isinstance(event, NotifyEvent) and event.statuses == ()


@pytest.mark.parametrize("value", ["Charging", "available", "Occupied ", "", "Preparing"])
def test_an_availability_that_is_no_connector_status_is_a_payload_rejection(value):
    """The five 2.x connector statuses, exactly; anything else rejects the record, naming the item."""
    result = notify(item("Available"), item(value))
    assert isinstance(result, Rejection) and result.kind == "payload"
    assert result.detail.startswith("payload.eventData.1.actualValue: Input should be 'Available'")


def test_each_item_gets_the_time_rules():
    """An item stamped too far ahead is corrected to received_at; a reset clock too; each correction counts."""
    event = notify(item("Occupied", timestamp="2026-11-24T21:00:00Z"),
                   item("Faulted", timestamp="1970-01-01T00:00:07Z", evse={"id": 1, "connectorId": 2}),
                   generated_at="2026-11-24T18:59:59Z")
    assert [s.effective_at for s in event.statuses] == [RECEIVED, RECEIVED]
    assert event.statuses[0].time_corrections == ("charger_clock_ahead",) and event.statuses[0].clock_skew_corrected
    assert event.statuses[1].time_corrections == ("charger_clock_reset",)
    assert event.time_corrections == ("charger_clock_ahead", "charger_clock_reset") and event.clock_skew_corrected


def test_generated_at_gets_the_time_rules():
    """generatedAt is the record's own effective time, corrected like any charger time."""
    event = notify(item("Occupied"), generated_at="2026-11-25T19:00:00Z")
    assert event.effective_at == RECEIVED and event.time_corrections == ("charger_clock_ahead",)


@pytest.mark.parametrize(("where", "payload_change"), [
    ("payload.generatedAt", {"generatedAt": "2026-02-30T00:00:00Z"}),
    ("payload.eventData.0.timestamp", {"eventData": [item(timestamp="2026-02-30T00:00:00Z")]}),
])
def test_a_time_that_does_not_exist_is_a_payload_rejection(where, payload_change):
    payload = {"generatedAt": "2026-11-24T18:59:55Z", "seqNo": 0, "eventData": [item()], **payload_change}
    result = decode(record("2.1", "NotifyEvent", payload), None)
    assert isinstance(result, Rejection) and result.kind == "payload" and result.detail.startswith(where), result


def test_within_a_record_the_item_listed_last_wins_a_tie():
    """Two items for one connector at one instant: the one listed last is the record's statement."""
    event = notify(item("Occupied"), item("Available", component="ChargingStation"), item("Faulted"))
    assert [(s.connector_id, s.status) for s in event.statuses] == [(1, "FAULTED"), (0, "AVAILABLE")]


def test_items_at_different_instants_are_all_kept():
    """Items for one connector at different instants are each a status; the version order picks the newest."""
    event = notify(item("Occupied", timestamp="2026-11-24T18:59:40Z"), item("Available"))
    assert [s.status for s in event.statuses] == ["OCCUPIED", "AVAILABLE"]


@pytest.mark.parametrize(("version", "change", "accepted"), [
    ("2.0.1", {"seqNo": -1}, True),  # 2.0.1 says only "integer"
    ("2.1", {"seqNo": -1}, False),  # 2.1 says minimum 0
    ("2.1", {"eventData": [item(severity=0)]}, True),
    ("2.0.1", {"eventData": [item(severity=0)]}, False),  # severity is 2.1's
    ("2.0.1", {"eventData": []}, False),  # minItems 1
    ("2.0.1", {"eventData": [item(evse={"id": 2**31, "connectorId": 1})]}, False),  # our id range
    ("2.0.1", {"eventData": [item(evse={"id": 1, "connectorId": 1.0})]}, False),  # an integer written as one
    ("2.1", {"tbc": "yes"}, False),
])
def test_the_payload_is_as_strict_as_its_version(version, change, accepted):
    """Details of the two versions' official schemas (the conformance tests check them all)."""
    payload = {"generatedAt": "2026-11-24T18:59:55Z", "seqNo": 0, "eventData": [item()], **change}
    result = decode(record(version, "NotifyEvent", payload), None)
    assert isinstance(result, NotifyEvent) == accepted, result
    assert accepted or result.kind == "payload"


_components = st.sampled_from(["Connector", "connector", "ChargingStation", "EVSE", "Controller"])
_variables = st.sampled_from(["AvailabilityState", "availabilitystate", "Power", "Available"])
_values = st.sampled_from(["Available", "Occupied", "Reserved", "Unavailable", "Faulted"])
_evses = st.sampled_from([None, {"id": 0}, {"id": 1}, {"id": 1, "connectorId": 1}, {"id": 1, "connectorId": 2},
                          {"id": 2, "connectorId": 1}])
_stamps = st.sampled_from(["2026-11-24T18:59:50Z", "2026-11-24T18:59:51Z"])


@given(st.lists(st.tuples(_components, _variables, _values, _evses, _stamps), min_size=1, max_size=8))
@settings(max_examples=300, deadline=None)
def test_items_follow_the_rules_as_stated(entries):
    """The converter against the rules read literally: availability items of a Connector (EVSE ≥ 1, with a
    connectorId) or of the ChargingStation, names in any case; per (target, time) the item listed last."""
    items = [{"eventId": i, "timestamp": stamp, "trigger": "Alerting", "actualValue": value,
              "eventNotificationType": "CustomMonitor", "variable": {"name": variable},
              "component": {"name": component, **({"evse": evse} if evse else {})}}
             for i, (component, variable, value, evse, stamp) in enumerate(entries)]
    expected: dict = {}
    ignored = 0
    for component, variable, value, evse, stamp in entries:
        if variable.lower() != "availabilitystate":
            ignored += 1
        elif component.lower() == "chargingstation":
            expected[(0, None, stamp)] = value.upper()
        elif component.lower() == "connector" and evse and evse["id"] >= 1 and "connectorId" in evse:
            expected[(evse["id"], evse["connectorId"], stamp)] = value.upper()
        else:
            ignored += 1
    event = notify(*items)
    got = {(s.connector_id, s.evse_connector_id, s.effective_at.isoformat().replace("+00:00", "Z")): s.status
           for s in event.statuses}
    assert got == expected and len(event.statuses) == len(expected)
    assert event.ignored_items == ignored
