"""StatusNotification: a port's status (1.6 connectorId), a physical connector's (2.x evseId + connectorId), or
the charge point's (id 0)."""

from __future__ import annotations

from datetime import datetime

from consumer.clock import CHARGER_CLOCK_AHEAD, TimeRules, utc
from consumer.normalize import ERROR_CODE, STATUS
from schemas import envelope as env
from schemas.events import Rejection, StatusNotification


def status_event(record, received_at: datetime, rules: TimeRules, timestamp: str | None, where: str,
                 connector_id: int, status: str, error_code: str | None = None, evse_connector_id: int | None = None,
                 error_info: str | None = None, vendor_id: str | None = None,
                 vendor_error_code: str | None = None,
                 source_action: str = "StatusNotification") -> StatusNotification | Rejection:
    """The status holds from the charger's timestamp (the field at `where`) when it is believable
    (consumer.clock), else from receipt. Also how a NotifyEvent's AvailabilityState item becomes the
    StatusNotification it equals (notify_event)."""
    if timestamp is None:
        return StatusNotification(
            record.event_id, record.charge_point_id, record.ocpp_version, received_at, received_at, False,
            connector_id, status, error_code, evse_connector_id, error_info, vendor_id, vendor_error_code,
            source_action=source_action,
        )
    charger_time = utc(timestamp)  # consumer.actions.base.effective_time, inlined: this runs for most records
    if type(charger_time) is str:
        return Rejection("payload", f"{where}: {charger_time} (got {timestamp!r})")
    effective_at, correction = rules.effective(charger_time, received_at)
    return StatusNotification(
        record.event_id, record.charge_point_id, record.ocpp_version, received_at, effective_at,
        correction == CHARGER_CLOCK_AHEAD, connector_id, status, error_code, evse_connector_id, error_info,
        vendor_id, vendor_error_code, time_corrections=(correction,) if correction else (),
        source_action=source_action,
    )


def from_16(record: env.StatusNotification16Envelope, received_at: datetime,
            rules: TimeRules) -> StatusNotification | Rejection:
    """1.6: the connector is the port; the timestamp is optional; errorCode NoError means no error; the vendor's
    own fault details ride along."""
    p = record.payload
    return status_event(record, received_at, rules, p.timestamp, "payload.timestamp", p.connectorId,
                        STATUS[p.status], ERROR_CODE[p.errorCode], None, p.info, p.vendorId, p.vendorErrorCode)


def from_2x(record: env.StatusNotification201Envelope | env.StatusNotification21Envelope, received_at: datetime,
            rules: TimeRules) -> StatusNotification | Rejection:
    """2.0.1 and 2.1: the EVSE is the port, and its connector one physical connector of it; no error code."""
    p = record.payload
    return status_event(record, received_at, rules, p.timestamp, "payload.timestamp", p.evseId,
                        STATUS[p.connectorStatus], None, p.connectorId)


def fold(rows, event: StatusNotification) -> None:
    """The status is history, and state: see `offer`."""
    rows.keep_history(event)
    offer(rows, event)


def offer(rows, event: StatusNotification) -> None:
    """Id 0 is the charge point itself; a 1.6 connector is a port; a 2.x connector is one connector of a port
    (the port's status is derived from its connectors' when written: sql/queries/state.sql)."""
    if event.connector_id == 0:
        rows.offer_charge_point_status(event)
    elif event.evse_connector_id is None:
        rows.offer_connector_status(event)
    else:
        rows.offer_evse_connector_status(event)


CONVERTERS = {
    env.StatusNotification16Envelope: from_16,
    env.StatusNotification201Envelope: from_2x,
    env.StatusNotification21Envelope: from_2x,
}
FOLDS = {StatusNotification: fold}
