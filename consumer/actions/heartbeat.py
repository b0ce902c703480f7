"""Heartbeat (1.6, 2.0.1, 2.1): the charge point is alive; it changes only `charge_point.last_heartbeat`."""

from __future__ import annotations

from datetime import datetime

from consumer.clock import TimeRules
from schemas import envelope as env
from schemas.events import Heartbeat


def from_envelope(record: env.Heartbeat16Envelope | env.Heartbeat201Envelope | env.Heartbeat21Envelope,
                  received_at: datetime, rules: TimeRules) -> Heartbeat:
    """A heartbeat carries no charger time: the gateway's receipt is when the charge point was last seen."""
    return Heartbeat(record.event_id, record.charge_point_id, record.ocpp_version, received_at, received_at, False)


def fold(rows, event: Heartbeat) -> None:
    rows.offer_heartbeat(event)


CONVERTERS = {
    env.Heartbeat16Envelope: from_envelope,
    env.Heartbeat201Envelope: from_envelope,
    env.Heartbeat21Envelope: from_envelope,
}
FOLDS = {Heartbeat: fold}
