"""The state rules, written a second time as plainly as possible, to check the real store against.

Deliberately not like `consumer/coalesce.py`: this sorts every distinct event by the version order, (effective
time, received_at, event_id, content digest of the value group it writes), and replays them oldest first,
letting later ones overwrite — the rule read literally. Python compares UUIDs by their integer value, which is
PostgreSQL's bytewise uuid order, so ties break the same way on both sides. A NotifyEvent's availability items
are StatusNotifications of their own; an untracked action (Ignored) only makes its charge point exist and moves
its last_updated to its received_at. Ports are stated as the issue states them: a port shows the family of its
newest status event; a 2.x port the highest of its physical connectors' statuses by PORT_PRECEDENCE, since the
greatest of their times. Unlike the store, which derives a port when it is written, this derives it once, at the
end, from the winners.

Shared with the consumer-service tests: `expected_tables(events)` and `await fetch_tables(conn)` return the
same shape, so `assert await fetch_tables(conn) == expected_tables(events)` is the whole check
(`expected_state` / `fetch_state` add the evse_connector table); and `events_strategy()` draws event sets over a
key space small enough for collisions to matter.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
from hypothesis import strategies as st

from schemas.events import BootNotification, Heartbeat, Ignored, NotifyEvent, StateEvent, StatusNotification

CHARGE_POINT_COLUMNS = (
    "serial_number", "model", "vendor", "firmware_version", "ocpp_version", "hardware_serial", "boot_reason",
    "iccid", "imsi", "status", "last_heartbeat", "last_updated",
    "boot_effective_at", "boot_received_at", "boot_event_id", "boot_digest",
    "status_effective_at", "status_received_at", "status_event_id", "status_digest", "last_seen_at",
)  # every column but `id`, which depends on arrival order
CONNECTOR_COLUMNS = (
    "id", "charge_point_id", "connector_id", "status", "error_code", "error_info", "vendor_id", "vendor_error_code",
    "last_updated", "status_received_at", "status_event_id", "status_digest", "status_family",
    "ocpp16_status", "ocpp16_error_code", "ocpp16_error_info", "ocpp16_vendor_id", "ocpp16_vendor_error_code",
    "ocpp16_effective_at", "ocpp16_received_at", "ocpp16_event_id", "ocpp16_digest",
)
EVSE_CONNECTOR_COLUMNS = (
    "charge_point_id", "evse_id", "connector_id", "status", "last_updated", "status_received_at", "status_event_id",
    "status_digest",
)
# A port can serve a driver if any of its connectors can: highest first (docs/tables.md, "Ports").
PORT_PRECEDENCE = ("OCCUPIED", "RESERVED", "AVAILABLE", "FAULTED", "UNAVAILABLE")


def digest(*values: str | None) -> uuid.UUID:
    """The documented content digest: md5 of '<length>:<value>' per value ('null' for NULL), as a UUID."""
    return uuid.UUID(hashlib.md5("".join("null" if v is None else f"{len(v)}:{v}" for v in values).encode()).hexdigest())


def _is_16_port(event: StatusNotification) -> bool:
    """An OCPP 1.6 connector is itself the port; a 2.x status names a physical connector of its EVSE."""
    return event.evse_connector_id is None


def _written(event: StateEvent) -> tuple:
    """The values the event writes to its group, whose digest is its version's last element."""
    if isinstance(event, BootNotification):
        return (event.vendor, event.model, event.firmware_version, event.ocpp_version, event.hardware_serial,
                event.boot_reason, event.iccid, event.imsi)
    if isinstance(event, StatusNotification) and event.connector_id == 0:
        return (event.status,)
    if isinstance(event, StatusNotification) and _is_16_port(event):
        return event.status, event.error_code, event.error_info, event.vendor_id, event.vendor_error_code
    if isinstance(event, StatusNotification):
        return (event.status,)
    return ()


def version(event) -> tuple:
    """The version order: (effective time, received_at, event_id, content digest of the values written)."""
    return event.effective_at, event.received_at, event.event_id.int, digest(*_written(event)).int


def connector_uuid(charge_point_id: str, connector_id: int) -> uuid.UUID:
    """The documented connector.id: md5 of '<charge point>/<connector>' in UTF-8, read as a UUID."""
    return uuid.UUID(hashlib.md5(f"{charge_point_id}/{connector_id}".encode()).hexdigest())


def expected_state(
    events: list[StateEvent],
) -> tuple[dict[str, dict], dict[tuple[str, int], dict], dict[tuple[str, int, int], dict]]:
    """(charge points by serial number, ports by (charge point, connector id), physical 2.x connectors by
    (charge point, evse id, connector id)) that these events must give."""
    facts = set()
    for event in set(events):
        facts.add(event)
        if isinstance(event, NotifyEvent):
            facts.update(event.statuses)  # each availability item is the StatusNotification it stands for
    charge_points: dict[str, dict] = {}
    ocpp16: dict[tuple[str, int], StatusNotification] = {}
    physical: dict[tuple[str, int, int], StatusNotification] = {}
    port_statuses: dict[tuple[str, int], list[StatusNotification]] = {}
    for event in sorted(facts, key=version):
        cp = charge_points.setdefault(
            event.charge_point_id, dict.fromkeys(CHARGE_POINT_COLUMNS) | {"serial_number": event.charge_point_id}
        )
        # Events arrive here oldest first, so "the latest so far" is simply "this one"; every event counts, an
        # untracked action with its received_at (its effective_at).
        cp["last_updated"] = event.effective_at
        if cp["last_seen_at"] is None or event.received_at > cp["last_seen_at"]:
            cp["last_seen_at"] = event.received_at
        if isinstance(event, BootNotification):
            cp.update(
                model=event.model, vendor=event.vendor, firmware_version=event.firmware_version,
                ocpp_version=event.ocpp_version, hardware_serial=event.hardware_serial, boot_reason=event.boot_reason,
                iccid=event.iccid, imsi=event.imsi, boot_effective_at=event.effective_at,
                boot_received_at=event.received_at, boot_event_id=event.event_id, boot_digest=digest(*_written(event)),
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
            port = (event.charge_point_id, event.connector_id)
            port_statuses.setdefault(port, []).append(event)
            if _is_16_port(event):
                ocpp16[port] = event
            else:
                physical[(*port, event.evse_connector_id)] = event
        elif not isinstance(event, (NotifyEvent, Ignored)):
            raise TypeError(f"not a state event: {event!r}")

    evse_connectors = {
        key: {"charge_point_id": key[0], "evse_id": key[1], "connector_id": key[2], "status": e.status,
              "last_updated": e.effective_at, "status_received_at": e.received_at, "status_event_id": e.event_id,
              "status_digest": digest(*_written(e))}
        for key, e in physical.items()
    }
    connectors = {}
    for (cp, number), statuses in port_statuses.items():
        newest = statuses[-1]  # sorted oldest first: the port's newest status event, of either family
        kept = ocpp16.get((cp, number))
        row = {"id": connector_uuid(cp, number), "charge_point_id": cp, "connector_id": number,
               "status_received_at": newest.received_at, "status_event_id": newest.event_id,
               "status_digest": digest(*_written(newest)), "last_updated": newest.effective_at}
        if _is_16_port(newest):
            row.update(status=newest.status, error_code=newest.error_code, error_info=newest.error_info,
                       vendor_id=newest.vendor_id, vendor_error_code=newest.vendor_error_code, status_family="1.6")
        else:
            mine = [e for (c, evse, _), e in physical.items() if (c, evse) == (cp, number)]
            row.update(status=min((e.status for e in mine), key=PORT_PRECEDENCE.index), error_code=None,
                       error_info=None, vendor_id=None, vendor_error_code=None, status_family="2.x")
        row.update(
            ocpp16_status=kept and kept.status, ocpp16_error_code=kept and kept.error_code,
            ocpp16_error_info=kept and kept.error_info, ocpp16_vendor_id=kept and kept.vendor_id,
            ocpp16_vendor_error_code=kept and kept.vendor_error_code, ocpp16_effective_at=kept and kept.effective_at,
            ocpp16_received_at=kept and kept.received_at, ocpp16_event_id=kept and kept.event_id,
            ocpp16_digest=kept and digest(*_written(kept)),
        )
        connectors[(cp, number)] = row
    return charge_points, connectors, evse_connectors


HISTORY_COLUMNS = (
    "charge_point_id", "connector_id", "evse_connector_id", "effective_at", "received_at", "event_id",
    "ocpp_version", "source_action", "status", "error_code", "error_info", "vendor_id", "vendor_error_code", "digest",
)


def expected_history(events: list[StateEvent]) -> set[tuple]:
    """status_history's rows (HISTORY_COLUMNS) for these events: one per status event, a NotifyEvent's items
    each; of one identity (charge point, port, physical connector, effective time, event id) only the greatest by
    (received_at, digest, source action, OCPP version) — a gateway's reused event id is the only way to get two."""
    reported = set()
    for event in set(events):
        if isinstance(event, StatusNotification):
            reported.add((event, "StatusNotification"))
        elif isinstance(event, NotifyEvent):
            assert all(item.source_action == "NotifyEvent" for item in event.statuses), "as decode makes them"
            reported.update((item, "NotifyEvent") for item in event.statuses)
    kept: dict[tuple, tuple] = {}
    for e, source in reported:
        key = (e.charge_point_id, e.connector_id, e.evse_connector_id, e.effective_at, e.event_id)
        row = (*key[:4], e.received_at, e.event_id, e.ocpp_version, source, e.status, e.error_code, e.error_info,
               e.vendor_id, e.vendor_error_code, digest(*_written(e)))
        rank = (e.received_at, row[-1].int, source, e.ocpp_version)
        if key not in kept or rank > kept[key][0]:
            kept[key] = (rank, row)
    return {row for _, row in kept.values()}


async def fetch_history(conn: asyncpg.Connection) -> set[tuple]:
    return {tuple(row) for row in await conn.fetch(f"SELECT {', '.join(HISTORY_COLUMNS)} FROM status_history")}


def expected_presence(events: list[StateEvent], window: timedelta = timedelta(seconds=600)) -> dict:
    """charge_point_presence as {(charge point, UTC day): [(lower, upper), ...]}: per charge point, the minutes
    covered by some [received_at, received_at + window), walked a second at a time — deliberately not a merge of
    intervals, which is what the store does."""
    seconds: dict[str, set[datetime]] = {}
    for event in set(events):
        start = event.received_at.replace(microsecond=0)
        assert start == event.received_at, "the presence oracle walks whole seconds"
        covered = seconds.setdefault(event.charge_point_id, set())
        covered.update(start + timedelta(seconds=n) for n in range(int(window.total_seconds())))
    presence: dict[tuple, list] = {}
    for cp, covered in seconds.items():
        for second in sorted(covered):
            ranges = presence.setdefault((cp, second.date()), [])
            if ranges and ranges[-1][1] == second and second.time() != datetime.min.time():
                ranges[-1][1] = second + timedelta(seconds=1)
            else:
                ranges.append([second, second + timedelta(seconds=1)])
    return {key: [tuple(r) for r in ranges] for key, ranges in presence.items()}


async def fetch_presence(conn: asyncpg.Connection) -> dict:
    presence: dict[tuple, list] = {}
    for row in await conn.fetch("SELECT charge_point_id, day, lower(r), upper(r) FROM charge_point_presence, "
                                "unnest(present) AS r ORDER BY 1, 2, 3"):
        presence.setdefault((row[0], row[1]), []).append((row[2], row[3]))
    return presence


def expected_tables(events: list[StateEvent]) -> tuple[dict[str, dict], dict[tuple[str, int], dict]]:
    """(charge points by serial number, ports by (charge point, connector id)) that these events must give."""
    return expected_state(events)[:2]


async def fetch_state(
    conn: asyncpg.Connection,
) -> tuple[dict[str, dict], dict[tuple[str, int], dict], dict[tuple[str, int, int], dict]]:
    """The database's tables in the shape of `expected_state` (charge_point.id left out)."""
    charge_points, connectors = await fetch_tables(conn)
    evse_connectors = {
        (row["charge_point_id"], row["evse_id"], row["connector_id"]): dict(row)
        for row in await conn.fetch(f"SELECT {', '.join(EVSE_CONNECTOR_COLUMNS)} FROM evse_connector")
    }
    return charge_points, connectors, evse_connectors


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
_VERSIONS = ("1.6", "2.0.1", "2.1")
_SHARED_IDS = [uuid.UUID(int=n) for n in (1, 2)]
_STATUSES_16 = st.sampled_from(["AVAILABLE", "PREPARING", "CHARGING", "FAULTED", "UNAVAILABLE"])
_STATUSES_2X = st.sampled_from(list(PORT_PRECEDENCE))
_maybe = lambda *values: st.sampled_from([None, *values])  # noqa: E731


@st.composite
def _common(draw, charge_points: tuple[str, ...], versions: tuple[str, ...] = _VERSIONS) -> dict:
    effective_at = draw(_instants)
    corrected = draw(st.booleans())
    received_at = effective_at if corrected else draw(_instants)
    return dict(
        # Now and then one of a few ids, so that different events share an event_id, as a buggy gateway's do.
        event_id=draw(st.one_of(st.uuids(), st.sampled_from(_SHARED_IDS))),
        charge_point_id=draw(st.sampled_from(charge_points)),
        ocpp_version=draw(st.sampled_from(versions)),
        received_at=received_at,
        effective_at=effective_at,
        clock_skew_corrected=corrected,
    )


def _boots(cps: tuple[str, ...]) -> st.SearchStrategy[BootNotification]:
    return st.builds(
        lambda common, vendor, model, firmware, serial, reason, iccid: BootNotification(
            **common, vendor=vendor, model=model, firmware_version=firmware, hardware_serial=serial,
            boot_reason=reason if common["ocpp_version"] != "1.6" else None, iccid=iccid, imsi=iccid and "2040",
        ),
        _common(cps), st.sampled_from(["ABB", "Alfen"]), st.sampled_from(["Terra", "Eve"]),
        _maybe("1.0", "1.1"), _maybe("S1", "S2"), _maybe("POWER_UP", "WATCHDOG"), _maybe("8931"),
    )


def _statuses_16(cps: tuple[str, ...], ports: tuple[int, ...]) -> st.SearchStrategy[StatusNotification]:
    """A 1.6 connector (the port), or the charge point itself, with fault details now and then."""
    return st.builds(
        lambda common, connector, status, error, info, vendor: StatusNotification(
            **common, connector_id=connector, status=status, error_code=error, error_info=info, vendor_id=vendor,
            vendor_error_code=vendor and "E-17",
        ),
        _common(cps, ("1.6",)), st.sampled_from(ports), _STATUSES_16, _maybe("GROUND_FAILURE", "OTHER_ERROR"),
        _maybe("RCD"), _maybe("com.alfen"),
    )


def _statuses_2x(cps: tuple[str, ...], ports: tuple[int, ...]) -> st.SearchStrategy[StatusNotification]:
    """A physical connector (1 or 2) of an EVSE, or the charge point itself (EVSE 0)."""
    return st.builds(
        lambda common, evse, connector, status: StatusNotification(
            **common, connector_id=evse, evse_connector_id=connector, status=status, error_code=None,
        ),
        _common(cps, _VERSIONS[1:]), st.sampled_from(ports), st.integers(1, 2), _STATUSES_2X,
    )


@st.composite
def _notify_events(draw, cps: tuple[str, ...], ports: tuple[int, ...]) -> NotifyEvent:
    """A NotifyEvent whose availability items address connectors of the EVSEs or the station, each at its own
    instant; items of one record share its event id and receipt."""
    common = draw(_common(cps, _VERSIONS[1:]))
    shared = {k: common[k] for k in ("event_id", "charge_point_id", "ocpp_version", "received_at")}
    items = []
    for _ in range(draw(st.integers(0, 3))):
        evse = draw(st.sampled_from(ports))
        items.append(StatusNotification(
            **shared, effective_at=draw(_instants), clock_skew_corrected=False, connector_id=evse,
            evse_connector_id=draw(st.integers(1, 2)) if evse else None, status=draw(_STATUSES_2X), error_code=None,
            source_action="NotifyEvent",
        ))
    return NotifyEvent(**common, statuses=tuple(items), ignored_items=draw(st.integers(0, 2)))


def _heartbeats(cps: tuple[str, ...]) -> st.SearchStrategy[Heartbeat]:
    return st.builds(lambda common: Heartbeat(**common), _common(cps))


def _ignored(cps: tuple[str, ...]) -> st.SearchStrategy[Ignored]:
    return st.builds(
        lambda common: Ignored(common["charge_point_id"], common["ocpp_version"], "MeterValues", common["event_id"],
                               common["received_at"]),
        _common(cps),
    )


@st.composite
def events_strategy(draw, max_size: int = 40, *, charge_points: tuple[str, ...] = ("CP-1", "CP-2", "CP-3"),
                    ports: tuple[int, ...] = (0, 1, 2)) -> list[StateEvent]:
    """A list of valid state events over `charge_points` × `ports` (0 the charge point itself; 1.6 connectors and
    2.x EVSEs of two connectors on the same ports) × 6 instants, with some duplicates; every version, NotifyEvents
    and untracked actions included. A narrow space (one charge point, one port) makes the port rules meet."""
    cps = charge_points
    kinds = st.one_of(_boots(cps), _statuses_16(cps, ports), _statuses_2x(cps, ports), _notify_events(cps, ports),
                      _heartbeats(cps), _ignored(cps))
    events = draw(st.lists(kinds, max_size=max_size))
    if events:
        events += draw(st.lists(st.sampled_from(events), max_size=len(events)))
    return events
