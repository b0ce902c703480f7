"""The state store against real PostgreSQL: the last-writer-wins rule by example, replays, concurrent writers."""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from consumer.coalesce import (ChargePointRow, ConnectorRow, EvseConnectorRow, HistoryRow, PortRow,
                                coalesce)
from consumer.migrate import migrate
from consumer.queries import query
from consumer.store import apply_events, write_batch
from schemas.events import BootNotification, Heartbeat, Ignored, NotifyEvent, StateEvent, StatusNotification
from tests.oracle import PORT_PRECEDENCE, connector_uuid, expected_state, expected_tables, fetch_state, fetch_tables

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def common(cp: str, seconds: float, event_id: uuid.UUID | None = None, received: float | None = None) -> dict:
    return dict(
        event_id=event_id or uuid.uuid4(), charge_point_id=cp, ocpp_version="1.6",
        received_at=at(seconds if received is None else received), effective_at=at(seconds),
        clock_skew_corrected=False,
    )


def boot(cp: str, seconds: float, model: str = "Terra", firmware: str | None = "1.0", **kw) -> BootNotification:
    return BootNotification(**common(cp, seconds, **kw), vendor="ABB", model=model, firmware_version=firmware)


def status(cp: str, connector: int, seconds: float, value: str, error: str | None = None, **kw) -> StatusNotification:
    return StatusNotification(**common(cp, seconds, **kw), connector_id=connector, status=value, error_code=error)


def heartbeat(cp: str, seconds: float, received: float | None = None) -> Heartbeat:
    return Heartbeat(**common(cp, seconds, received=received))


def status_2x(cp: str, evse: int, connector: int, seconds: float, value: str, **kw) -> StatusNotification:
    """An OCPP 2.0.1 status of one physical connector of an EVSE (the port)."""
    return StatusNotification(**(common(cp, seconds, **kw) | {"ocpp_version": "2.0.1"}), connector_id=evse,
                              evse_connector_id=connector, status=value, error_code=None)


async def apply_one_by_one(conn: asyncpg.Connection, events: list[StateEvent]) -> None:
    for event in events:
        await apply_events(conn, [event])


async def test_placeholder_parent_for_early_connector_status(conn):
    """A connector status before any boot creates its charge point as a placeholder; nothing fails or waits."""
    await apply_events(conn, [status("CP-1", 1, 10, "CHARGING")])
    cps, connectors = await fetch_tables(conn)
    assert cps["CP-1"]["model"] is None and cps["CP-1"]["status"] is None
    assert cps["CP-1"]["last_updated"] == at(10)
    assert connectors[("CP-1", 1)]["status"] == "CHARGING"


async def test_values_win_independently(conn):
    """An old boot arriving late still fills the boot columns but leaves the newer status and last_updated alone."""
    await apply_one_by_one(conn, [status("CP-1", 0, 20, "AVAILABLE"), boot("CP-1", 5, model="Eve")])
    cp = (await fetch_tables(conn))[0]["CP-1"]
    assert (cp["model"], cp["status"], cp["last_updated"]) == ("Eve", "AVAILABLE", at(20))


async def test_older_events_never_overwrite_newer(conn):
    """Kafka Connect's failure mode: a newer row is not overwritten by an older event arriving later."""
    events = [
        boot("CP-1", 30, model="New"), boot("CP-1", 10, model="Old"),
        status("CP-1", 0, 30, "FAULTED"), status("CP-1", 0, 10, "AVAILABLE"),
        status("CP-1", 2, 30, "FAULTED", "GROUND_FAILURE"), status("CP-1", 2, 10, "AVAILABLE"),
        heartbeat("CP-1", 40), heartbeat("CP-1", 35),
    ]
    await apply_one_by_one(conn, events)
    cps, connectors = await fetch_tables(conn)
    assert (cps["CP-1"]["model"], cps["CP-1"]["status"]) == ("New", "FAULTED")
    assert cps["CP-1"]["last_heartbeat"] == at(40) and cps["CP-1"]["last_updated"] == at(40)
    assert connectors[("CP-1", 2)]["error_code"] == "GROUND_FAILURE"


async def test_boot_without_firmware_clears_it(conn):
    """A newer boot that reports no firmware version sets firmware_version to NULL, not 'keep the old one'."""
    await apply_one_by_one(conn, [boot("CP-1", 1, firmware="1.0"), boot("CP-1", 2, firmware=None)])
    assert (await fetch_tables(conn))[0]["CP-1"]["firmware_version"] is None


async def test_event_id_breaks_ties_in_uuid_byte_order(conn):
    """At equal effective times the greater event_id wins, compared as PostgreSQL does (bytewise, unsigned)."""
    low = uuid.UUID("7fffffff-ffff-ffff-ffff-ffffffffffff")
    high = uuid.UUID("80000000-0000-0000-0000-000000000000")
    events = [
        status("CP-1", 1, 5, "CHARGING", event_id=high), status("CP-1", 1, 5, "AVAILABLE", event_id=low),
        boot("CP-1", 5, model="High", event_id=uuid.UUID(int=high.int + 1)),
        boot("CP-1", 5, model="Low", event_id=uuid.UUID(int=low.int - 1)),
    ]
    for order in (events, events[::-1]):
        await conn.execute("TRUNCATE charge_point, connector, evse_connector")
        await apply_one_by_one(conn, order)
        cps, connectors = await fetch_tables(conn)
        assert connectors[("CP-1", 1)]["status"] == "CHARGING" and cps["CP-1"]["model"] == "High"
        assert (cps, connectors) == expected_tables(events)


async def test_heartbeat_uses_received_at(conn):
    """last_heartbeat is the gateway's received_at; last_updated is the event's effective time."""
    await apply_events(conn, [heartbeat("CP-1", 10, received=12)])
    cp = (await fetch_tables(conn))[0]["CP-1"]
    assert (cp["last_heartbeat"], cp["last_updated"]) == (at(12), at(10))


async def test_connector_id_is_a_function_of_the_key(conn):
    """connector.id is md5('<charge point>/<connector>')::uuid, identical after a rebuild from scratch."""
    events = [status("CP-ü/1", 2, 1, "AVAILABLE"), status("CP-2", 1, 1, "AVAILABLE")]
    await apply_events(conn, events)
    first = await conn.fetch("SELECT charge_point_id, connector_id, id FROM connector ORDER BY 1, 2")
    await conn.execute("TRUNCATE charge_point, connector, evse_connector RESTART IDENTITY")
    await apply_events(conn, events[::-1])
    assert await conn.fetch("SELECT charge_point_id, connector_id, id FROM connector ORDER BY 1, 2") == first
    assert all(row["id"] == connector_uuid(row["charge_point_id"], row["connector_id"]) for row in first)
    # The formula docs/tables.md gives analysts, in SQL, agrees.
    assert await conn.fetchval(
        "SELECT bool_and(id = md5(charge_point_id || '/' || connector_id)::uuid) FROM connector"
    )


async def test_no_database_clock_in_state(conn):
    """Nothing in the state columns depends on when it was written: rebuilding later gives equal rows."""
    events = random_events(random.Random(7), 200)
    await apply_events(conn, events)
    before = await fetch_state(conn)
    await asyncio.sleep(0.05)
    await conn.execute("TRUNCATE charge_point, connector, evse_connector")
    await apply_events(conn, events)
    assert await fetch_state(conn) == before == expected_state(events)


async def test_empty_batch_writes_nothing(conn):
    """An empty batch (all records rejected or ignored) is a no-op, not an SQL error."""
    await write_batch(conn, coalesce([]))
    assert await fetch_tables(conn) == ({}, {})


# --- replays ------------------------------------------------------------------------------------------------

def random_events(rng: random.Random, count: int, charge_points: int = 20, connectors: int = 3) -> list[StateEvent]:
    """Events over a small key space, with colliding effective times; not hypothesis, for the many-round tests.
    Ports are reported by 1.6 and by 2.x (two connectors per EVSE, StatusNotification and NotifyEvent) alike."""
    events: list[StateEvent] = []
    for _ in range(count):
        cp = f"CP-{rng.randrange(charge_points):03d}"
        seconds = rng.randrange(30)
        kind = rng.random()
        if kind < 0.1:
            events.append(boot(cp, seconds, model=rng.choice(["Terra", "Eve"]), firmware=rng.choice([None, "1.0"])))
        elif kind < 0.25:
            events.append(heartbeat(cp, seconds, received=seconds + rng.randrange(3)))
        elif kind < 0.3:
            events.append(Ignored(cp, "1.6", "MeterValues", uuid.uuid4(), at(seconds)))
        elif kind < 0.45:
            events.append(status_2x(cp, rng.randrange(connectors + 1), rng.randint(1, 2), seconds,
                                    rng.choice(PORT_PRECEDENCE)))
        elif kind < 0.5:
            parent = status_2x(cp, 0, 1, seconds, "AVAILABLE")
            items = tuple(replace(parent, connector_id=rng.randint(1, connectors), evse_connector_id=rng.randint(1, 2),
                                  status=rng.choice(PORT_PRECEDENCE), effective_at=at(rng.randrange(30)))
                          for _ in range(rng.randint(1, 3)))
            events.append(NotifyEvent(**(common(cp, seconds, event_id=parent.event_id) | {"ocpp_version": "2.0.1"}),
                                      statuses=items, ignored_items=0))
        else:
            events.append(
                status(cp, rng.randrange(connectors + 1), seconds, rng.choice(["AVAILABLE", "CHARGING", "FAULTED"]),
                       rng.choice([None, "OTHER_ERROR"]))
            )
    return events


def split(rng: random.Random, events: list[StateEvent], most: int) -> list[list[StateEvent]]:
    batches, i = [], 0
    while i < len(events):
        size = rng.randint(1, most)
        batches.append(events[i : i + size])
        i += size
    return batches


async def tuple_versions(conn: asyncpg.Connection) -> dict:
    """Each row's xmin and ctid: both change whenever PostgreSQL writes a new version of the row."""
    return {
        "charge_point": await conn.fetch("SELECT serial_number, xmin::text, ctid::text FROM charge_point ORDER BY 1"),
        "connector": await conn.fetch(
            "SELECT charge_point_id, connector_id, xmin::text, ctid::text FROM connector ORDER BY 1, 2"
        ),
        "evse_connector": await conn.fetch(
            "SELECT charge_point_id, evse_id, connector_id, xmin::text, ctid::text FROM evse_connector ORDER BY 1, 2, 3"
        ),
    }


async def test_replay_changes_nothing_and_writes_no_tuple(conn):
    """Replaying the whole stream, any batch of it, or old single events leaves every row as it was — same tuple."""
    rng = random.Random(1)
    events = random_events(rng, 500)
    batches = split(rng, events, 60)
    for batch in batches:
        await apply_events(conn, batch)
    tables, versions = await fetch_state(conn), await tuple_versions(conn)
    assert tables == expected_state(events)

    for batch in batches:
        await apply_events(conn, batch)
    await apply_events(conn, events)
    await apply_events(conn, rng.sample(events, 100))
    await apply_one_by_one(conn, rng.sample(events, 30))
    assert await fetch_state(conn) == tables
    assert await tuple_versions(conn) == versions


# --- concurrent writers -------------------------------------------------------------------------------------

async def test_concurrent_writers_agree_without_deadlock(database_url):
    """Two writers apply overlapping batches in different orders at once, many rounds: no deadlock, no lost update."""
    await migrate(database_url)
    rng = random.Random(42)
    a, b = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        for _ in range(25):
            await a.execute("TRUNCATE charge_point, connector, evse_connector")
            events = random_events(rng, 400, charge_points=15)
            # Each writer gets most events, in its own order and batching; together they cover all of them.
            share_a = [e for e in events if rng.random() < 0.8]
            taken = set(share_a)
            share_b = [e for e in events if e not in taken or rng.random() < 0.8]
            rng.shuffle(share_a)
            rng.shuffle(share_b)

            async def write_all(conn: asyncpg.Connection, share: list[StateEvent], seed: int) -> None:
                for batch in split(random.Random(seed), share, 80):
                    await apply_events(conn, batch)

            await asyncio.gather(write_all(a, share_a, rng.random()), write_all(b, share_b, rng.random()))
            assert await fetch_state(a) == expected_state(events)
    finally:
        await a.close()
        await b.close()


@pytest.mark.postgres
async def test_same_second_statuses_follow_the_gateways_receipt_order(conn):
    """A charger stamping whole seconds: Preparing then Charging in one second. The gateway received them 200 ms
    apart, in order; Charging wins whatever their event ids and whatever order they are written in."""
    for _ in range(20):
        await conn.execute("TRUNCATE charge_point, connector, evse_connector")
        preparing = status("CP-S", 1, 5, "PREPARING", received=5.1)
        charging = status("CP-S", 1, 5, "CHARGING", received=5.3)
        first, second = random.sample([preparing, charging], 2)
        await apply_events(conn, [first])
        await apply_events(conn, [second])
        assert await conn.fetchval("SELECT status FROM connector WHERE charge_point_id = 'CP-S'") == "CHARGING"
        assert ConnectorRow._make(coalesce([second, first]).connectors[0]).status == "CHARGING"


@pytest.mark.postgres
async def test_colliding_event_ids_give_one_winner_in_any_order(conn):
    """Two different events with one event_id, effective time and received_at: the content digest decides, the
    same in coalesce and in SQL, whichever is written first."""
    shared = uuid.uuid4()
    a = status("CP-C", 1, 5, "AVAILABLE", event_id=shared)
    b = status("CP-C", 1, 5, "FAULTED", "GROUND_FAILURE", event_id=shared)
    c = boot("CP-C", 5, model="Eve", event_id=shared)
    d = boot("CP-C", 5, model="Terra", event_id=shared)
    results = []
    for order in ([a, b, c, d], [b, a, d, c]):
        await conn.execute("TRUNCATE charge_point, connector, evse_connector")
        for event in order:
            await apply_events(conn, [event])
        results.append(await fetch_tables(conn))
    assert results[0] == results[1] == expected_tables([a, b, c, d])
    assert results[0] == await _coalesced_tables(conn, [b, a, d, c])


async def _coalesced_tables(conn, events):
    await conn.execute("TRUNCATE charge_point, connector, evse_connector")
    await apply_events(conn, events)
    return await fetch_tables(conn)


@pytest.mark.postgres
async def test_content_digest_is_the_same_in_python_and_sql(conn):
    """ocpp_content_digest (migration 0002) and coalesce.content_digest agree, NULLs and lengths included. The
    batch carries the digest as the uuid's own lowercase hex digits, which order as its bytes do, so a tie that
    coalescing decides is decided as the table's ON CONFLICT decides it (the colliding event ids' test above)."""
    from consumer.coalesce import content_digest

    for values in [("AVAILABLE", None), ("", None), (None, ""), ("a:b", "c"), ("a", ":bc"), ("Ünïcødé ⚡", "x" * 300)]:
        digest = await conn.fetchval("SELECT ocpp_content_digest($1::text, $2::text)", *values)
        assert content_digest(*values) == digest.hex


@pytest.mark.parametrize("name, row", [
    ("upsert_charge_points", ChargePointRow), ("upsert_connectors", ConnectorRow),
    ("upsert_evse_connectors", EvseConnectorRow), ("derive_evse_ports", PortRow),
    ("insert_status_history", HistoryRow),
])
def test_each_statement_reads_its_rows_fields_in_order(name, row):
    """Rows travel as JSON arrays and the statements read them by position: a field added, moved or renamed on
    one side only would write values into the wrong columns, so the two lists must agree, name for name."""
    read = re.findall(r"\(?a->>(\d+)\)?(?:::\w+)? AS (\w+)", query(name))
    assert [int(position) for position, _ in read] == list(range(len(row._fields)))
    assert [column for _, column in read] == list(row._fields)
