"""The internal, version-independent events that decoding produces and the state store consumes.

OCPP 1.6, 2.0.1 and 2.1 say the same few things in different words; everything after decoding speaks only this.
Plain slotted dataclasses rather than models: they are built after validation, many thousands a second, and
must be hashable and cheap to compare. Equal and hashed by value (`unsafe_hash`), but not `frozen`: a frozen
dataclass sets every field through object.__setattr__, which cost about 1 µs of the decoder's 7 µs per record.
They are immutable by convention: a converter builds each once, and nothing assigns to one afterwards
(`dataclasses.replace` makes a changed copy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar
from uuid import UUID


@dataclass(slots=True, unsafe_hash=True)
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


@dataclass(slots=True, unsafe_hash=True)
class BootNotification(Event):
    """Who the charge point is. The keyword fields are the details kept with it (None: not reported)."""

    action: ClassVar[str] = "BootNotification"

    vendor: str
    model: str
    firmware_version: str | None
    hardware_serial: str | None = field(default=None, kw_only=True)  # 1.6 chargePointSerialNumber, 2.x serialNumber
    boot_reason: str | None = field(default=None, kw_only=True)  # 2.x reason, UPPER_SNAKE_CASE
    iccid: str | None = field(default=None, kw_only=True)
    imsi: str | None = field(default=None, kw_only=True)


@dataclass(slots=True, unsafe_hash=True)
class StatusNotification(Event):
    """The status of a port, of one physical connector of a port, or of the charge point itself.

    `connector_id` is the port: OCPP 1.6 connectorId, OCPP 2.x evseId; 0 addresses the charge point itself.
    `evse_connector_id` is, for OCPP 2.x, the physical connector within the EVSE (its connectorId); None for 1.6,
    whose connector is the port. The fault details (`error_info`, `vendor_id`, `vendor_error_code`) are 1.6's.
    `source_action` is the OCPP action that reported it (a NotifyEvent's availability items say NotifyEvent):
    status_history keeps it, and the writer sends the event itself as the history row.
    """

    action: ClassVar[str] = "StatusNotification"

    connector_id: int
    status: str  # UPPER_SNAKE_CASE: AVAILABLE, SUSPENDED_EVSE, OCCUPIED, ...
    error_code: str | None  # UPPER_SNAKE_CASE; None for NoError and for 2.x, which has no error code here
    # Positional with defaults, not keyword-only: the converters pass them by position (cheaper, per record).
    evse_connector_id: int | None = None
    error_info: str | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None
    source_action: str = field(default="StatusNotification", kw_only=True)


@dataclass(slots=True, unsafe_hash=True)
class Heartbeat(Event):
    action: ClassVar[str] = "Heartbeat"


@dataclass(slots=True, unsafe_hash=True)
class NotifyEvent(Event):
    """An OCPP 2.x NotifyEvent. Its availability items are `statuses`, each the StatusNotification it equals
    (same event id and receipt, its own effective time); `effective_at` is that of `generatedAt`.
    `ignored_items` counts the other items (other variables, other components), which change nothing."""

    action: ClassVar[str] = "NotifyEvent"

    statuses: tuple[StatusNotification, ...]
    ignored_items: int


@dataclass(slots=True, unsafe_hash=True)
class Ignored:
    """A valid envelope whose action this service does not track: counted, never dead-lettered.

    Its payload is not read, but it is an event of its charge point: the charge point's row exists and its
    last_updated reaches `received_at` (the gateway's receipt time, bounded like every other event's).
    """

    charge_point_id: str
    ocpp_version: str
    action: str
    event_id: UUID
    received_at: datetime
    time_corrections: tuple[str, ...] = ()

    @property
    def effective_at(self) -> datetime:
        return self.received_at

    @property
    def clock_skew_corrected(self) -> bool:
        return False


StateEvent = BootNotification | StatusNotification | Heartbeat | NotifyEvent | Ignored


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record is invalid: `kind` for machines (a DLQ header, a metric label), `detail` for people."""

    kind: str  # not_utf8, not_json, envelope, payload, key_mismatch, too_large, ...
    detail: str
