"""NotifyEvent (2.0.1, 2.1): availability reported through the device model, which 2.1 prefers to
StatusNotification.

An item whose variable is `AvailabilityState` is the StatusNotification it stands for: with component
`Connector` (and `evse.id` ≥ 1, `evse.connectorId`) the status of that physical connector, with component
`ChargingStation` the charge point's own. Its effective time is the item's `timestamp`, under the same time rules.
Every other item (other variables, other components, an EVSE's own AvailabilityState) changes nothing and is
counted in `ignored_items`. Names compare case-insensitively, as OCPP defines them.

Tie-break within one record: items for the same connector (or the station) with the same effective time are one
instant reported twice; the item listed last in `eventData` wins, so the state is a function of the record.
Between records, the version order decides as for every event (consumer/coalesce.py).
"""

from __future__ import annotations

from datetime import datetime

from consumer.actions import status_notification
from consumer.actions.base import effective_time
from consumer.clock import CHARGER_CLOCK_AHEAD, TimeRules
from consumer.normalize import CONNECTOR_STATUS_2X
from schemas import envelope as env
from schemas.events import NotifyEvent, Rejection, StatusNotification

_AVAILABILITY_STATE = "availabilitystate"
_CONNECTOR = "connector"
_CHARGING_STATION = "chargingstation"
_EXPECTED_STATUS = "Input should be 'Available', 'Occupied', 'Reserved', 'Unavailable' or 'Faulted'"


def from_2x(record: env.NotifyEvent201Envelope | env.NotifyEvent21Envelope, received_at: datetime,
            rules: TimeRules) -> NotifyEvent | Rejection:
    """The record's availability items as StatusNotifications; its own effective time is `generatedAt`'s."""
    payload = record.payload
    generated = effective_time(payload.generatedAt, received_at, rules, "payload.generatedAt")
    if type(generated) is Rejection:
        return generated
    effective_at, correction = generated
    corrections = [correction] if correction else []
    statuses: dict[tuple, StatusNotification] = {}
    ignored = 0
    for index, item in enumerate(payload.eventData):
        target = _target(item)
        if target is None:
            ignored += 1
            continue
        status = CONNECTOR_STATUS_2X.get(item.actualValue)
        if status is None:
            shown = repr(item.actualValue)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            return Rejection("payload", f"payload.eventData.{index}.actualValue: {_EXPECTED_STATUS} (got {shown})")
        event = status_notification.status_event(
            record, received_at, rules, item.timestamp, f"payload.eventData.{index}.timestamp", target[0], status,
            None, target[1], source_action="NotifyEvent",
        )
        if type(event) is Rejection:
            return event
        corrections += event.time_corrections
        statuses[target, event.effective_at] = event  # the tie-break above: a later item replaces an earlier one
    return NotifyEvent(
        record.event_id, record.charge_point_id, record.ocpp_version, received_at, effective_at,
        CHARGER_CLOCK_AHEAD in corrections, time_corrections=tuple(corrections),
        statuses=tuple(statuses.values()), ignored_items=ignored,
    )


def _target(item) -> tuple[int, int | None] | None:
    """(port, physical connector) an item's AvailabilityState is about: (evse id, connector id) for a Connector,
    (0, None) for the ChargingStation; None for an item that is not an availability of either."""
    if item.variable.name.lower() != _AVAILABILITY_STATE:
        return None
    component = item.component
    name = component.name.lower()
    if name == _CHARGING_STATION:
        return 0, None
    if name == _CONNECTOR:
        evse = component.evse
        if evse is not None and evse.id > 0 and evse.connectorId is not None:
            return evse.id, evse.connectorId
    return None


def fold(rows, event: NotifyEvent) -> None:
    """Each item is offered exactly as its StatusNotification would be, and is an event of the charge point."""
    for status in event.statuses:
        rows.touch(status)
        rows.keep_history(status)
        status_notification.offer(rows, status)


CONVERTERS = {env.NotifyEvent201Envelope: from_2x, env.NotifyEvent21Envelope: from_2x}
FOLDS = {NotifyEvent: fold}
