"""The internal, version-independent events that decoding produces and the state store consumes.

OCPP 1.6 and 2.0.1 say the same few things in different words; everything after decoding speaks only this.
Plain frozen dataclasses rather than models: they are built after validation, many thousands a second, and
must be hashable and cheap to compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Event:
    """What every valid event says.

    `effective_at` is the time the event's state holds from: the charger's own timestamp when it sent one and
    it is believable, else `received_at` (docs/contract.md, "Time rules"). `clock_skew_corrected` is true when
    the charger's time was too far ahead; `time_corrections` names every correction made to the event's times
    (charger_clock_ahead, charger_clock_reset, received_at_after_publish). Both datetimes are timezone-aware UTC.
    """

    action: ClassVar[str]

    event_id: UUID
    charge_point_id: str
    ocpp_version: str
    received_at: datetime
    effective_at: datetime
    clock_skew_corrected: bool
    time_corrections: tuple[str, ...] = field(default=(), kw_only=True)


@dataclass(frozen=True, slots=True)
class BootNotification(Event):
    action: ClassVar[str] = "BootNotification"

    vendor: str
    model: str
    firmware_version: str | None


@dataclass(frozen=True, slots=True)
class StatusNotification(Event):
    """`connector_id` 0 addresses the charge point itself (1.6 connectorId 0, 2.0.1 evseId 0)."""

    action: ClassVar[str] = "StatusNotification"

    connector_id: int
    status: str  # UPPER_SNAKE_CASE: AVAILABLE, SUSPENDED_EVSE, OCCUPIED, ...
    error_code: str | None  # UPPER_SNAKE_CASE; None for NoError and for 2.0.1, which has no error code here


@dataclass(frozen=True, slots=True)
class Heartbeat(Event):
    action: ClassVar[str] = "Heartbeat"


StateEvent = BootNotification | StatusNotification | Heartbeat


@dataclass(frozen=True, slots=True)
class Ignored:
    """A valid envelope whose action this service does not track: counted, never dead-lettered."""

    charge_point_id: str
    ocpp_version: str
    action: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record is invalid: `kind` for machines (a DLQ header, a metric label), `detail` for people."""

    kind: str  # not_utf8, not_json, envelope, payload, key_mismatch, too_large, ...
    detail: str
