"""The state rules, written a second time as plainly as possible, to check the real store against.

Deliberately not like `consumer/coalesce.py`: this sorts every distinct event by the version order, (effective
time, received_at, event_id, content digest of the value group it writes), and replays them oldest first,
letting later ones overwrite — the rule read literally. Python compares UUIDs by their integer value, which is
PostgreSQL's bytewise uuid order, so ties break the same way on both sides.

Shared with the consumer-service tests: `expected_tables(events)` and `await fetch_tables(conn)` return the
same shape, so `assert await fetch_tables(conn) == expected_tables(events)` is the whole check; and
`events_strategy()` draws event sets over a key space small enough for collisions to matter.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
from hypothesis import strategies as st

from schemas.events import BootNotification, Heartbeat, StateEvent, StatusNotification

CHARGE_POINT_COLUMNS = (
    "serial_number", "model", "vendor", "firmware_version", "status", "last_heartbeat", "last_updated",
    "boot_effective_at", "boot_received_at", "boot_event_id", "boot_digest",
    "status_effective_at", "status_received_at", "status_event_id", "status_digest",
)  # every column but `id`, which depends on arrival order
CONNECTOR_COLUMNS = (
    "id", "charge_point_id", "connector_id", "status", "error_code", "last_updated", "status_received_at",
    "status_event_id", "status_digest",
)


def digest(*values: str | None) -> uuid.UUID:
    """The documented content digest: md5 of '<length>:<value>' per value ('null' for NULL), as a UUID."""
    return uuid.UUID(hashlib.md5("".join("null" if v is None else f"{len(v)}:{v}" for v in values).encode()).hexdigest())


def _written(event: StateEvent) -> tuple:
    """The values the event writes to its group, whose digest is its version's last element."""
    if isinstance(event, BootNotification):
        return event.vendor, event.model, event.firmware_version
    if isinstance(event, StatusNotification) and event.connector_id == 0:
        return (event.status,)
    if isinstance(event, StatusNotification):
        return event.status, event.error_code
    return ()


def connector_uuid(charge_point_id: str, connector_id: int) -> uuid.UUID:
    """The documented connector.id: md5 of '<charge point>/<connector>' in UTF-8, read as a UUID."""
    return uuid.UUID(hashlib.md5(f"{charge_point_id}/{connector_id}".encode()).hexdigest())


def expected_tables(
    events: list[StateEvent],
) -> tuple[dict[str, dict], dict[tuple[str, int], dict]]:
    """(charge points by serial number, connectors by (charge point, connector id)) that these events must give."""
    distinct = set(events)
    charge_points: dict[str, dict] = {}
    connectors: dict[tuple[str, int], dict] = {}
    version = lambda e: (e.effective_at, e.received_at, e.event_id.int, digest(*_written(e)).int)  # noqa: E731
    for event in sorted(distinct, key=version):
        cp = charge_points.setdefault(
            event.charge_point_id, dict.fromkeys(CHARGE_POINT_COLUMNS) | {"serial_number": event.charge_point_id}
        )
        # Events arrive here oldest first, so "the latest so far" is simply "this one".
        cp["last_updated"] = event.effective_at
        if isinstance(event, BootNotification):
            cp.update(
                model=event.model, vendor=event.vendor, firmware_version=event.firmware_version,
                boot_effective_at=event.effective_at, boot_received_at=event.received_at,
                boot_event_id=event.event_id, boot_digest=digest(*_written(event)),
            )
        elif isinstance(event, Heartbeat):
            # received_at is not the sort key, so this one is a maximum, not an overwrite.
            if cp["last_heartbeat"] is None or event.received_at > cp["last_heartbeat"]:
                cp["last_heartbeat"] = event.received_at
        elif isinstance(event, StatusNotification) and event.connector_id == 0:
            cp.update(status=event.status, status_effective_at=event.effective_at,
                      status_received_at=event.received_at, status_event_id=event.event_id,
                      status_digest=digest(*_written(event)))
        elif isinstance(event, StatusNotification):
            connectors[(event.charge_point_id, event.connector_id)] = {
                "id": connector_uuid(event.charge_point_id, event.connector_id),
                "charge_point_id": event.charge_point_id,
                "connector_id": event.connector_id,
                "status": event.status,
                "error_code": event.error_code,
                "last_updated": event.effective_at,
                "status_received_at": event.received_at,
                "status_event_id": event.event_id,
                "status_digest": digest(*_written(event)),
            }
        else:
            raise TypeError(f"not a state event: {event!r}")
    return charge_points, connectors


async def fetch_tables(
    conn: asyncpg.Connection,
) -> tuple[dict[str, dict], dict[tuple[str, int], dict]]:
    """The database's tables in the shape of `expected_tables` (charge_point.id left out)."""
    charge_points = {
        row["serial_number"]: dict(row)
        for row in await conn.fetch(f"SELECT {', '.join(CHARGE_POINT_COLUMNS)} FROM charge_point")
    }
    connectors = {
        (row["charge_point_id"], row["connector_id"]): dict(row)
        for row in await conn.fetch(f"SELECT {', '.join(CONNECTOR_COLUMNS)} FROM connector")
    }
    return charge_points, connectors


# --- event sets for property tests -------------------------------------------------------------------------

_BASE = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
# Few distinct instants, so that many events share an effective time and event_id must break the tie.
_instants = st.integers(0, 5).map(lambda s: _BASE + timedelta(seconds=s))
_charge_points = st.sampled_from(["CP-1", "CP-2", "CP-3"])
_versions = st.sampled_from(["1.6", "2.0.1"])
_SHARED_IDS = [uuid.UUID(int=n) for n in (1, 2)]


@st.composite
def _common(draw) -> dict:
    effective_at = draw(_instants)
    corrected = draw(st.booleans())
    received_at = effective_at if corrected else draw(_instants)
    return dict(
        # Now and then one of a few ids, so that different events share an event_id, as a buggy gateway's do.
        event_id=draw(st.one_of(st.uuids(), st.sampled_from(_SHARED_IDS))),
        charge_point_id=draw(_charge_points),
        ocpp_version=draw(_versions),
        received_at=received_at,
        effective_at=effective_at,
        clock_skew_corrected=corrected,
    )


def _boots() -> st.SearchStrategy[BootNotification]:
    return st.builds(
        lambda common, vendor, model, firmware: BootNotification(
            **common, vendor=vendor, model=model, firmware_version=firmware
        ),
        _common(), st.sampled_from(["ABB", "Alfen"]), st.sampled_from(["Terra", "Eve"]),
        st.sampled_from([None, "1.0", "1.1"]),
    )


def _statuses() -> st.SearchStrategy[StatusNotification]:
    return st.builds(
        lambda common, connector, status, error: StatusNotification(
            **common, connector_id=connector, status=status, error_code=error
        ),
        _common(), st.integers(0, 2), st.sampled_from(["AVAILABLE", "CHARGING", "FAULTED", "UNAVAILABLE"]),
        st.sampled_from([None, "GROUND_FAILURE", "OTHER_ERROR"]),
    )


def _heartbeats() -> st.SearchStrategy[Heartbeat]:
    return st.builds(lambda common: Heartbeat(**common), _common())


@st.composite
def events_strategy(draw, max_size: int = 40) -> list[StateEvent]:
    """A list of valid state events over 3 charge points × connectors 0–2 × 6 instants, with some duplicates."""
    events = draw(st.lists(st.one_of(_boots(), _statuses(), _heartbeats()), max_size=max_size))
    if events:
        events += draw(st.lists(st.sampled_from(events), max_size=len(events)))
    return events
