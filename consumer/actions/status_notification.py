"""StatusNotification: a connector's status (1.6 connectorId, 2.0.1 evseId), or the charge point's (id 0)."""

from __future__ import annotations

from datetime import datetime

from consumer.clock import CHARGER_CLOCK_AHEAD, TimeRules, utc
from consumer.normalize import ERROR_CODE, STATUS
from schemas import envelope as env
from schemas.events import Rejection, StatusNotification


def _event(record, received_at: datetime, rules: TimeRules, timestamp: str | None, **status) -> StatusNotification | Rejection:
    """The status holds from the charger's timestamp when it is believable (consumer.clock), else from receipt."""
    effective_at, correction = received_at, None
    if timestamp is not None:
        charger_time = utc(timestamp)
        if type(charger_time) is str:
            return Rejection("payload", f"payload.timestamp: {charger_time} (got {timestamp!r})")
        effective_at, correction = rules.effective(charger_time, received_at)
    return StatusNotification(
        record.event_id, record.charge_point_id, record.ocpp_version, received_at, effective_at,
        correction == CHARGER_CLOCK_AHEAD, time_corrections=(correction,) if correction else (), **status,
    )


def from_16(record: env.StatusNotification16Envelope, received_at: datetime,
            rules: TimeRules) -> StatusNotification | Rejection:
    """1.6: the timestamp is optional; errorCode NoError means no error."""
    payload = record.payload
    return _event(record, received_at, rules, payload.timestamp, connector_id=payload.connectorId,
                  status=STATUS[payload.status], error_code=ERROR_CODE[payload.errorCode])


def from_201(record: env.StatusNotification201Envelope, received_at: datetime,
             rules: TimeRules) -> StatusNotification | Rejection:
    """2.0.1: state is kept per EVSE (the port); it reports no error code in this message."""
    payload = record.payload
    return _event(record, received_at, rules, payload.timestamp, connector_id=payload.evseId,
                  status=STATUS[payload.connectorStatus], error_code=None)


def fold(rows, event: StatusNotification) -> None:
    """Connector 0 is the charge point itself; any other number is one of its connectors."""
    if event.connector_id == 0:
        rows.offer_charge_point_status(event)
    else:
        rows.offer_connector_status(event)


CONVERTERS = {env.StatusNotification16Envelope: from_16, env.StatusNotification201Envelope: from_201}
FOLDS = {StatusNotification: fold}
