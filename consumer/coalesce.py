"""A batch of events becomes the few rows that matter: one per charge point, per port, per physical connector.

Kafka hands a replica thousands of events at once, most of them repeating the same few keys. Writing only each
key's winning values (with their versions) keeps the SQL to one statement per table, and means no key appears
twice in one statement, which `ON CONFLICT DO UPDATE` requires. The rule is the database's rule applied early:
last writer wins by the version order, (effective time, received_at, event_id, content digest), per value group;
heartbeats and `last_updated` keep the greatest time. So coalescing and then writing equals writing every event
alone, in any order. A 2.x port's status is not decided here: it is derived from its connectors' stored states
when the batch is written (sql/queries/state.sql), so the batch only names the ports to derive again.

Time is kept too: every status event becomes a `status_history` row (only duplicates of one event collapse, by the
same version order), and every event's `received_at` marks its charge point present for the presence window
after it; the batch merges a charge point's ranges and cuts them at UTC midnight, and the database unions them
into the stored day.

This runs on the hot path, so it is plain dict passes and tuple comparisons; which rows an event touches is its
action's fold (consumer/actions), looked up once per event. Every row is a plain tuple in its row type's field order
(the named tuples below say which field is where) and travels to PostgreSQL as a JSON array, read as jsonb by
position: PostgreSQL reads such a row in ~2 µs where json_to_recordset spent ~6 µs on the same row as an object,
and orjson writes tuples about five times faster than slotted dataclasses (measured side by side: BENCHMARKS.md,
"Ports (#11) and history and presence (#14)").
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import NamedTuple
from uuid import UUID

from consumer.actions import FOLDS
from consumer.settings import Settings
from schemas.events import BootNotification, Heartbeat, StateEvent, StatusNotification


class ChargePointRow(NamedTuple):
    """What a batch says about one charge point: `upsert_charge_points` reads the fields by position.

    A None version (boot_*, status_*) means the batch had no such event: the stored value stays.
    """

    serial_number: str
    model: str | None
    vendor: str | None
    firmware_version: str | None
    ocpp_version: str | None
    hardware_serial: str | None
    boot_reason: str | None
    iccid: str | None
    imsi: str | None
    boot_effective_at: datetime | None
    boot_received_at: datetime | None
    boot_event_id: UUID | None
    boot_digest: str | None  # content_digest's hex digits, cast to uuid by the statement
    status: str | None
    status_effective_at: datetime | None
    status_received_at: datetime | None
    status_event_id: UUID | None
    status_digest: str | None
    last_heartbeat: datetime | None
    last_updated: datetime
    last_seen_at: datetime


class ConnectorRow(NamedTuple):
    """The winning OCPP 1.6 status of one port (a 1.6 connector): `upsert_connectors` reads the fields by
    position."""

    id: str  # connector_uuid's hex digits
    charge_point_id: str
    connector_id: int
    status: str
    error_code: str | None
    error_info: str | None
    vendor_id: str | None
    vendor_error_code: str | None
    last_updated: datetime
    status_received_at: datetime
    status_event_id: UUID
    status_digest: str


class EvseConnectorRow(NamedTuple):
    """The winning status of one physical connector of an OCPP 2.x EVSE: `upsert_evse_connectors` reads the
    fields by position."""

    charge_point_id: str
    evse_id: int
    connector_id: int
    status: str
    last_updated: datetime
    status_received_at: datetime
    status_event_id: UUID
    status_digest: str


class HistoryRow(NamedTuple):
    """One status event as status_history keeps it: `insert_status_history` reads the fields by position."""

    charge_point_id: str
    connector_id: int
    evse_connector_id: int | None
    effective_at: datetime
    received_at: datetime
    event_id: UUID
    ocpp_version: str
    source_action: str
    status: str
    error_code: str | None
    error_info: str | None
    vendor_id: str | None
    vendor_error_code: str | None


class PortRow(NamedTuple):
    """A 2.x port (EVSE) whose connectors changed in the batch: `derive_evse_ports` derives its status again."""

    id: str  # connector_uuid's hex digits
    charge_point_id: str
    connector_id: int


@dataclass(frozen=True, slots=True)
class Batch:
    """Rows sorted by key, so every writer locks rows in the same order and concurrent batches cannot deadlock.

    Every port's and physical connector's charge point is in `charge_points` too (it is written first: the
    foreign key, and the lock that serializes writers of one charge point).
    """

    # Plain tuples, each in its row type's field order (Rows.batch says why)
    charge_points: list[tuple]  # ChargePointRow's
    connectors: list[tuple]  # ConnectorRow's
    evse_connectors: list[tuple]  # EvseConnectorRow's
    evse_ports: list[tuple]  # PortRow's
    history: list[tuple]  # HistoryRow's
    presence: list[tuple]  # upsert_presence's: (charge point, [[start, end], ...] within one UTC day)

    def __len__(self) -> int:
        return len(self.charge_points) + len(self.connectors) + len(self.evse_connectors) + len(self.evse_ports)


def connector_uuid(charge_point_id: str, connector_id: int) -> str:
    """connector.id: a function of the key, so every replay and rebuild gives the same id.

    Equal to `md5(charge_point_id || '/' || connector_id)::uuid` in SQL, which analysts can use to compute it.
    Kept as md5's 32 hex digits, which the statements cast to uuid as they read them: the rows only travel as JSON,
    and a `uuid.UUID` would cost ~0.6 µs more to build (BENCHMARKS.md, "the consumer's CPU per row").
    Not cached: hashing costs ~0.65 µs, an lru_cache hit ~0.12 and a miss ~1.1 (the eviction). A fleet whose
    ports outnumber any cache of a bounded size misses on nearly every port, and the cache of 32,768 entries it
    had held ~9 MB (BENCHMARKS.md, "Fewer objects per row and per event").
    """
    return hashlib.md5(f"{charge_point_id}/{connector_id}".encode()).hexdigest()


class Rows:
    """A batch's winning values so far, per key. Each action's fold (consumer/actions) offers its event here.

    The offers are per row group, not per action, so that a new action reporting a status or a boot needs no
    change here: it offers what it says to the group it says it about.
    """

    __slots__ = ("last_updated", "boots", "charge_point_statuses", "heartbeats", "connectors", "evse_connectors",
                 "seen", "history", "presence_window")

    def __init__(self, presence_window: timedelta) -> None:
        self.presence_window = presence_window
        self.last_updated: dict[str, datetime] = {}
        # Receipt times as lists, repeats and all: a set hashes every datetime (~0.4 µs an event, an aware
        # datetime's hash is computed on first use), and the presence ranges come out the same either way.
        self.seen: dict[str, list[datetime]] = {}
        self.history: dict[tuple, StatusNotification] = {}
        self.boots: dict[str, BootNotification] = {}
        self.charge_point_statuses: dict[str, StatusNotification] = {}
        self.heartbeats: dict[str, datetime] = {}
        self.connectors: dict[tuple[str, int], StatusNotification] = {}
        self.evse_connectors: dict[tuple[str, int, int], StatusNotification] = {}

    def touch(self, event: StateEvent) -> None:
        """Every event makes its charge point's row exist, moves its last_updated forward and shows it present."""
        cp, at = event.charge_point_id, event.effective_at
        latest = self.last_updated.get(cp)
        if latest is None or at > latest:
            self.last_updated[cp] = at
        received = self.seen.get(cp)
        if received is None:
            self.seen[cp] = received = []
        received.append(event.received_at)

    def keep_history(self, event: StatusNotification) -> None:
        """Every status event is history; only duplicates of one (its identity: what it is about, when, which
        event) collapse, to the greater (received_at, digest), as the table's ON CONFLICT keeps them."""
        key = (event.charge_point_id, event.connector_id, event.evse_connector_id, event.effective_at,
               event.event_id)
        kept = self.history.get(key)
        if kept is None or event.received_at > kept.received_at or (
                event.received_at == kept.received_at and _history_tie_break(event) > _history_tie_break(kept)):
            self.history[key] = event

    def offer_boot(self, event: BootNotification) -> None:
        _keep_newer(self.boots, event.charge_point_id, event, _boot_content)

    def offer_charge_point_status(self, event: StatusNotification) -> None:
        _keep_newer(self.charge_point_statuses, event.charge_point_id, event, _charge_point_status_content)

    def offer_connector_status(self, event: StatusNotification) -> None:
        """An OCPP 1.6 status of a port."""
        _keep_newer(self.connectors, (event.charge_point_id, event.connector_id), event, _connector_content)

    def offer_evse_connector_status(self, event: StatusNotification) -> None:
        """An OCPP 2.x status of one physical connector of a port (an EVSE)."""
        key = (event.charge_point_id, event.connector_id, event.evse_connector_id)
        _keep_newer(self.evse_connectors, key, event, _evse_connector_content)

    def offer_heartbeat(self, event: Heartbeat) -> None:
        """Heartbeats keep the greatest receipt time: they carry no state to version."""
        beat = self.heartbeats.get(event.charge_point_id)
        if beat is None or event.received_at > beat:
            self.heartbeats[event.charge_point_id] = event.received_at

    def batch(self) -> Batch:
        """The rows, sorted by key (the lock order): plain tuples, each in its row type's field order.

        A boot storm's batch is mostly new rows (~2.3 per event), and each costs where it is made and where it is
        written: a named tuple's `_make` is a Python call (~0.3 µs a row), keywords ~0.3 µs more, and orjson
        writes only a plain tuple itself, handing a named one to `default` (~0.2 µs a row). The row types stay
        as the field orders the statements read by position (the tests hold the two lists together)."""
        charge_points = []
        for cp in sorted(self.last_updated):
            boot = self.boots.get(cp)
            status = self.charge_point_statuses.get(cp)
            charge_points.append((
                cp,
                *(_boot_values(boot) if boot else _NO_BOOT),
                *(_charge_point_status_values(status) if status else _NO_STATUS),
                self.heartbeats.get(cp),
                self.last_updated[cp],
                max(self.seen[cp]),
            ))
        connectors = [
            (connector_uuid(cp, number), cp, number, e.status, e.error_code, e.error_info, e.vendor_id,
             e.vendor_error_code, e.effective_at, e.received_at, e.event_id, status_digest(*_connector_content(e)))
            for (cp, number), e in sorted(self.connectors.items())
        ]
        evse_connectors = [
            (cp, evse, number, e.status, e.effective_at, e.received_at, e.event_id,
             status_digest(*_evse_connector_content(e)))
            for (cp, evse, number), e in sorted(self.evse_connectors.items())
        ]
        evse_ports = [
            (connector_uuid(cp, evse), cp, evse)
            for cp, evse in sorted({(cp, evse) for cp, evse, _ in self.evse_connectors})
        ]
        history = [
            (e.charge_point_id, e.connector_id, e.evse_connector_id, e.effective_at, e.received_at, e.event_id,
             e.ocpp_version, e.source_action, e.status, e.error_code, e.error_info, e.vendor_id, e.vendor_error_code)
            for e in self.history.values()
        ]
        window = self.presence_window
        presence = [(cp, day) for cp in sorted(self.seen) for day in presence_by_day(self.seen[cp], window)]
        return Batch(charge_points, connectors, evse_connectors, evse_ports, history, presence)


def presence_by_day(received: Collection[datetime], window: timedelta) -> list[list[list[datetime]]]:
    """The union of [t, t + window) over the receipt times, as disjoint [start, end) pairs grouped by UTC day
    (a pair that crosses midnight is cut there). Most charge points send a few events a batch, closer together
    than the window, so the common case is one pair, far from midnight: answered without sorting or walking
    (when the receipts span no more than the window, every range overlaps the first's, so the union is one)."""
    first, last = min(received), max(received)
    if last - first <= window:
        end = last + window
        if end.date() == first.date():
            return [[[first, end]]]
    merged: list[list[datetime]] = []
    for start in sorted(received):
        if merged and start <= merged[-1][1]:
            end = start + window
            if end > merged[-1][1]:
                merged[-1][1] = end
        else:
            merged.append([start, start + window])
    days: list[list[list[datetime]]] = []
    day_end = None
    for start, end in merged:
        while True:
            if day_end is None or start >= day_end:
                day_end = start.replace(hour=0, minute=0, second=0, microsecond=0) + _DAY
                days.append([])
            if end <= day_end:
                days[-1].append([start, end])
                break
            days[-1].append([start, day_end])
            start = day_end
    return days


def _keep_newer(winners: dict, key, event: StateEvent, content) -> None:
    """The version order of every versioned value group: (effective time, received_at, event_id), then the
    digest of the group's values (`content`), which only two events with one event_id can need."""
    best = winners.get(key)
    if best is None:
        winners[key] = event
        return
    new = (event.effective_at, event.received_at, event.event_id)
    old = (best.effective_at, best.received_at, best.event_id)
    if new > old or (new == old and content_digest(*content(event)) > content_digest(*content(best))):
        winners[key] = event


def content_digest(*values: str | None) -> str:
    """The last tie-break of the version order: md5 of the values, each as '<length>:<value>' ('null' for None),
    as 32 hex digits; stored as a uuid. Equal to the SQL function ocpp_content_digest(...) (migration 0002), so
    analysts and the migration compute the same. Text rather than `uuid.UUID`: a storm's batch digests about one
    value group per event, and the statements cast the text as they read it; lowercase hex of one length orders
    as the uuid's bytes do, so comparing two digests here agrees with comparing them in SQL."""
    text = "".join("null" if value is None else f"{len(value)}:{value}" for value in values)
    return hashlib.md5(text.encode()).hexdigest()


# content_digest of a status value group: a status alone, or a 1.6 port's five values. Few distinct groups recur
# across a whole fleet (a status and "NoError", mostly), so they are cached; a boot's values are not, since they
# carry the charger's serial numbers. An entry holds at most five strings of the contract's lengths (≤ ~1 KB).
status_digest = lru_cache(maxsize=1 << 12)(content_digest)


def _boot_values(boot: BootNotification) -> tuple:
    """ChargePointRow's boot fields, model to boot_digest, in its order."""
    return (boot.model, boot.vendor, boot.firmware_version, boot.ocpp_version, boot.hardware_serial,
            boot.boot_reason, boot.iccid, boot.imsi, boot.effective_at, boot.received_at, boot.event_id,
            content_digest(*_boot_content(boot)))


def _charge_point_status_values(status: StatusNotification) -> tuple:
    """ChargePointRow's status fields, status to status_digest, in its order."""
    return (status.status, status.effective_at, status.received_at, status.event_id,
            status_digest(*_charge_point_status_content(status)))


_NO_BOOT = (None,) * 12  # a None version: the batch had no boot, the stored values stay
_NO_STATUS = (None,) * 5


def _boot_content(event: BootNotification) -> tuple:
    return (event.vendor, event.model, event.firmware_version, event.ocpp_version, event.hardware_serial,
            event.boot_reason, event.iccid, event.imsi)


def _charge_point_status_content(event: StatusNotification) -> tuple:
    return (event.status,)


def _connector_content(event: StatusNotification) -> tuple:
    return event.status, event.error_code, event.error_info, event.vendor_id, event.vendor_error_code


def _evse_connector_content(event: StatusNotification) -> tuple:
    return (event.status,)


def _history_tie_break(event: StatusNotification) -> tuple:
    """After received_at, what decides between two records of one event id and key (insert_status_history's
    rule): the digest, then the source action and the OCPP version (compared as bytes, as COLLATE "C" does)."""
    return status_digest(*_history_content(event)), event.source_action, event.ocpp_version


def _history_content(event: StatusNotification) -> tuple:
    """What status_history.digest covers: a 1.6 port's five values, otherwise the status alone."""
    if event.connector_id > 0 and event.evse_connector_id is None:
        return _connector_content(event)
    return (event.status,)


_DAY = timedelta(days=1)
DEFAULT_PRESENCE_WINDOW = timedelta(seconds=Settings.model_fields["presence_window_seconds"].default)


def coalesce(events: Iterable[StateEvent], presence_window: timedelta = DEFAULT_PRESENCE_WINDOW) -> Batch:
    """The batch's winning values per charge point, port and physical connector, with their versions, sorted by
    key; its status events; its charge points' presence."""
    rows = Rows(presence_window)
    for event in events:
        fold = FOLDS.get(type(event))
        if fold is None:
            raise TypeError(f"not a state event: {event!r}")
        rows.touch(event)
        fold(rows, event)
    return rows.batch()
