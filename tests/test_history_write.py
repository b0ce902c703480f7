"""Writing time: status_history and charge_point_presence as the write path fills them — presence across UTC
midnight in any batching, partitions made for any month, the retention horizon (a pruned month's late event still
updates the state, adds no history, and is counted), and migration 0005 on a populated database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.coalesce import content_digest, presence_by_day
from consumer.migrate import migrate, read_migrations
from consumer.store import Written, apply_events, write_events
from schemas.events import Heartbeat, Ignored, StatusNotification
from tests.oracle import expected_presence, fetch_presence
from tests.test_store import at, common, status, status_2x

pytestmark = pytest.mark.postgres

MIDNIGHT = datetime(2026, 12, 1, tzinfo=timezone.utc)
MINUS_INFINITY = datetime.min  # asyncpg reads '-infinity' as this


def _event_at(cp: str, received: datetime, kind: int):
    ids = dict(event_id=uuid.uuid4(), charge_point_id=cp, ocpp_version="1.6", received_at=received)
    if kind == 0:
        return Heartbeat(**ids, effective_at=received, clock_skew_corrected=False)
    if kind == 1:
        return Ignored(cp, "1.6", "MeterValues", ids["event_id"], received)
    return StatusNotification(**ids, effective_at=received - timedelta(hours=1), clock_skew_corrected=False,
                              connector_id=1, status="AVAILABLE", error_code=None)


def test_presence_across_midnight_in_any_batching(database_url):
    """Events of every kind a few minutes either side of UTC midnight, and a window of five minutes: whatever the
    order and batches, each day's row holds exactly its part of the union, second for second."""
    asyncio.run(migrate(database_url))
    window = timedelta(minutes=5)
    received = st.integers(-900, 900).map(lambda s: MIDNIGHT + timedelta(seconds=s))

    @given(st.lists(st.tuples(st.sampled_from(["CP-1", "CP-2"]), received, st.integers(0, 2)), max_size=25),
           st.data())
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def check(drawn, data):
        events = [_event_at(*args) for args in drawn]
        run = data.draw(st.permutations(events + events[: len(events) // 3]))
        cuts = sorted(data.draw(st.lists(st.integers(0, len(run)), max_size=5)))
        bounds = [0, *cuts, len(run)]
        assert asyncio.run(_write(database_url, [run[i:j] for i, j in zip(bounds, bounds[1:])], window)) == (
            expected_presence(events, window))

    check()


@given(st.sets(st.integers(-1200, 1200), min_size=1, max_size=8), st.integers(1, 600))
@settings(max_examples=300)
def test_a_batch_merges_its_ranges_exactly(seconds, window_seconds):
    """One batch's receipts of one charge point, spread over less and more than the window and across midnight:
    the ranges the batch hands the database are the union, cut at midnight, second for second. (The database
    unions them again, so a range too wide here would be stored as presence that never was.)"""
    window = timedelta(seconds=window_seconds)
    received = {MIDNIGHT + timedelta(seconds=s) for s in seconds}
    events = [_event_at("CP-1", t, 0) for t in received]
    expected = {day: ranges for (_, day), ranges in expected_presence(events, window).items()}
    got = {pairs[0][0].date(): [tuple(pair) for pair in pairs] for pairs in presence_by_day(received, window)}
    assert got == expected


async def _write(dsn: str, batches: list[list], window: timedelta) -> dict:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("TRUNCATE charge_point, connector, evse_connector, status_history, charge_point_presence")
        for batch in batches:
            await apply_events(conn, batch, window)
        return await fetch_presence(conn)
    finally:
        await conn.close()


async def test_last_seen_at_is_the_latest_receipt_of_any_event(db):
    conn = await asyncpg.connect(db)
    try:
        late_status = status("CP-1", 1, 100, "AVAILABLE", received=400)  # received long after its effective time
        await apply_events(conn, [late_status, Ignored("CP-1", "1.6", "Authorize", uuid.uuid4(), at(300))])
        await apply_events(conn, [Heartbeat(**common("CP-1", 200))])
        assert await conn.fetchval("SELECT last_seen_at FROM charge_point") == at(400)
    finally:
        await conn.close()


async def test_every_status_event_is_kept_once_with_its_source(db):
    """1.6 ports, 2.x connectors and the charge point's own statuses, older ones too; a replay adds nothing."""
    conn = await asyncpg.connect(db)
    try:
        events = [status("CP-1", 1, 10, "CHARGING"), status("CP-1", 1, 5, "FAULTED", "GROUND_FAILURE"),
                  status("CP-1", 0, 7, "AVAILABLE"), status_2x("CP-2", 1, 2, 3, "OCCUPIED")]
        await apply_events(conn, events)
        await apply_events(conn, events[::-1])
        rows = await conn.fetch("SELECT charge_point_id, connector_id, evse_connector_id, status, error_code, "
                                "source_action, ocpp_version FROM status_history ORDER BY effective_at")
        assert [tuple(r) for r in rows] == [
            ("CP-2", 1, 2, "OCCUPIED", None, "StatusNotification", "2.0.1"),
            ("CP-1", 1, None, "FAULTED", "GROUND_FAILURE", "StatusNotification", "1.6"),
            ("CP-1", 0, None, "AVAILABLE", None, "StatusNotification", "1.6"),
            ("CP-1", 1, None, "CHARGING", None, "StatusNotification", "1.6"),
        ]
    finally:
        await conn.close()


async def test_partitions_are_made_for_any_month(db):
    conn = await asyncpg.connect(db)
    try:
        far = [on(1, moment, "AVAILABLE")
               for moment in (datetime(1999, 12, 31, 23, 59, tzinfo=timezone.utc),
                              datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2077, 2, 28, tzinfo=timezone.utc))]
        await apply_events(conn, far)
        placed = await conn.fetch("SELECT tableoid::regclass::text AS part, effective_at FROM status_history "
                                  "ORDER BY effective_at")
        assert [row["part"] for row in placed] == [
            "status_history_1999_12", "status_history_2000_01", "status_history_2077_02"]
    finally:
        await conn.close()


def on(port: int, day: datetime, value: str) -> StatusNotification:
    """CP-1's 1.6 status of `port` at `day`, received then: the prune tests' events, whose month is what counts."""
    return StatusNotification(**(common("CP-1", 0) | dict(effective_at=day, received_at=day)),
                              connector_id=port, status=value, error_code=None)


async def test_a_pruned_month_still_updates_the_state_and_is_counted(db):
    """After pruning whole months before March, a late February status changes the port (it is the newest), is
    not added to history (February is gone, and stays gone), and the write reports it; March keeps its rows."""
    conn = await asyncpg.connect(db)
    pool = await asyncpg.create_pool(db, min_size=1, max_size=1)
    try:
        feb, march = datetime(2026, 2, 10, tzinfo=timezone.utc), datetime(2026, 3, 2, tzinfo=timezone.utc)
        await apply_events(conn, [on(1, feb, "AVAILABLE"), on(1, march, "CHARGING")])
        dropped = await conn.fetch("SELECT * FROM ocpp_prune_status_history('2026-03-15')")
        assert [row["dropped"] for row in dropped] == ["status_history_2026_02"]
        late = on(1, datetime(2026, 2, 20, tzinfo=timezone.utc), "FAULTED")
        later = on(1, datetime(2026, 3, 20, tzinfo=timezone.utc), "FINISHING")

        async def attempt(write):
            await write()

        written = await write_events(pool, [(None, late)], attempt=attempt)
        assert written == Written(refused=[], history_pruned=1)
        assert await conn.fetchval("SELECT status FROM connector") == "CHARGING"  # March's is newer
        written = await write_events(pool, [(None, on(1, datetime(2026, 2, 21, tzinfo=timezone.utc), "X")), (None, later)],
                                     attempt=attempt)
        assert written.history_pruned == 1
        assert await conn.fetchval("SELECT status FROM connector") == "FINISHING"
        assert [row[0] for row in await conn.fetch("SELECT status FROM status_history ORDER BY effective_at")] == [
            "AVAILABLE", "CHARGING", "FINISHING"]  # February's, as in force at the horizon, then March's
        assert await conn.fetchval("SELECT to_regclass('status_history_2026_02')") is None
    finally:
        await pool.close()
        await conn.close()


async def test_prune_keeps_what_was_in_force_at_the_horizon(db):
    """Pruning February forgets its events but not their outcome: each series' winning row before March is kept
    (in the default partition), so a port silent since February is still faulted in March's report, with its
    outage's own start; pruning again, further, keeps the winners at the new horizon only."""
    conn = await asyncpg.connect(db)
    try:
        feb = datetime(2026, 2, 10, tzinfo=timezone.utc)
        events = [on(1, feb, "AVAILABLE"), on(1, feb + timedelta(days=1), "CHARGING"), on(2, feb, "FAULTED"),
                  on(1, datetime(2026, 3, 2, tzinfo=timezone.utc), "AVAILABLE")]
        await apply_events(conn, events)
        await conn.execute("SELECT * FROM ocpp_prune_status_history('2026-03-15')")
        kept = await conn.fetch("SELECT tableoid::regclass::text AS part, connector_id, status FROM status_history "
                                "ORDER BY effective_at, connector_id")
        assert [tuple(row) for row in kept] == [
            ("status_history_before_horizon", 2, "FAULTED"), ("status_history_before_horizon", 1, "CHARGING"),
            ("status_history_2026_03", 1, "AVAILABLE")]
        outages = await conn.fetch("SELECT connector_id, start, cause FROM port_outages('2026-03-01', '2026-04-01', "
                                   "'2026-04-01') WHERE connector_id = 2")
        assert [tuple(row) for row in outages] == [(2, feb, "FAULTED")]
        await conn.execute("SELECT * FROM ocpp_prune_status_history('2026-04-01')")
        kept = await conn.fetch("SELECT tableoid::regclass::text AS part, connector_id, status FROM status_history "
                                "ORDER BY effective_at, connector_id")
        assert [tuple(row) for row in kept] == [
            ("status_history_before_horizon", 2, "FAULTED"), ("status_history_before_horizon", 1, "AVAILABLE")]
        with pytest.raises(asyncpg.InvalidParameterValueError, match="in the future"):
            await conn.execute("SELECT * FROM ocpp_prune_status_history(now() + interval '1 day')")
    finally:
        await conn.close()


async def test_0005_seeds_history_from_a_populated_0004_database(database_url):
    """Every current status becomes the history row its event would have written, so a replay of that event
    adds no row (it fills in what the seed could not know); last_seen_at is what the row recorded; nothing else
    changes."""
    conn = await asyncpg.connect(database_url)
    try:
        migrations = read_migrations()
        assert migrations[4].name == "0005_status_history_and_presence"
        for migration in migrations[:4]:
            await conn.execute(migration.sql)
        await conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, checksum TEXT NOT NULL, "
                           "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        await conn.executemany("INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                               [(m.name, m.checksum) for m in migrations[:4]])
        port, physical, station = (status("CP-1", 1, 10, "FAULTED", "GROUND_FAILURE"),
                                   status_2x("CP-2", 1, 2, 20, "OCCUPIED"), status("CP-1", 0, 5, "AVAILABLE", received=6))
        old_port = uuid.UUID(int=7)
        # The rows as the 0004 consumer wrote them: CP-1 with its own status, a 1.6 port; CP-2 a 2.x connector
        # and a heartbeat; CP-OLD a port from before 0003 (no family, no ocpp16_* columns, received -infinity).
        await conn.execute(
            "INSERT INTO charge_point (serial_number, status, status_effective_at, status_received_at, "
            "status_event_id, status_digest, last_heartbeat, last_updated) VALUES "
            "('CP-1', 'AVAILABLE', $1, $2, $3, ocpp_content_digest('AVAILABLE'), NULL, $4), "
            "('CP-2', NULL, NULL, NULL, NULL, NULL, $5, $6), ('CP-OLD', NULL, NULL, NULL, NULL, NULL, NULL, $7)",
            at(5), at(6), station.event_id, at(10), at(31), at(30), at(1))
        await conn.execute(
            "INSERT INTO connector (id, charge_point_id, connector_id, status, error_code, last_updated, "
            "status_received_at, status_event_id, status_digest, status_family, ocpp16_status, ocpp16_error_code, "
            "ocpp16_effective_at, ocpp16_received_at, ocpp16_event_id, ocpp16_digest) VALUES "
            "(gen_random_uuid(), 'CP-1', 1, 'FAULTED', 'GROUND_FAILURE', $1, $1, $2, $3, '1.6', 'FAULTED', "
            "'GROUND_FAILURE', $1, $1, $2, $3), "
            "(gen_random_uuid(), 'CP-2', 1, 'OCCUPIED', NULL, $4, $4, $5, $6, '2.x', NULL, NULL, NULL, NULL, NULL, "
            "NULL), "
            "(gen_random_uuid(), 'CP-OLD', 1, 'AVAILABLE', NULL, $7, '-infinity', $8, $6, NULL, NULL, NULL, NULL, "
            "NULL, NULL, NULL)",
            at(10), port.event_id, content_digest("FAULTED", "GROUND_FAILURE", None, None, None), at(20),
            physical.event_id, content_digest("OCCUPIED"), at(1), old_port)
        await conn.execute(
            "INSERT INTO evse_connector VALUES ('CP-2', 1, 2, 'OCCUPIED', $1, $1, $2, $3)", at(20),
            physical.event_id, content_digest("OCCUPIED"))
        before = {t: [dict(r) for r in await conn.fetch(f"SELECT * FROM {t} ORDER BY 1, 2, 3")]
                  for t in ("charge_point", "connector", "evse_connector")}

        assert await migrate(database_url) == [m.name for m in migrations[4:]]
        for table, rows in before.items():
            after = [dict(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY 1, 2, 3")]
            assert [{k: row[k] for k in rows[0]} for row in after] == rows, table
        assert dict(await conn.fetch("SELECT serial_number, last_seen_at FROM charge_point")) == {
            "CP-1": at(6), "CP-2": at(31), "CP-OLD": None}
        seeded = await conn.fetch("SELECT charge_point_id, connector_id, evse_connector_id, effective_at, "
                                  "received_at, event_id, status, error_code, source_action FROM status_history "
                                  "ORDER BY 1, 2, 4")
        assert [tuple(r) for r in seeded] == [
            ("CP-1", 0, None, at(5), at(6), station.event_id, "AVAILABLE", None, None),
            ("CP-1", 1, None, at(10), at(10), port.event_id, "FAULTED", "GROUND_FAILURE", None),
            ("CP-2", 1, 2, at(20), at(20), physical.event_id, "OCCUPIED", None, None),
            ("CP-OLD", 1, None, at(1), MINUS_INFINITY, old_port, "AVAILABLE", None, None),
        ]
        assert await apply_events(conn, [port, station, physical]) == 0
        rows = await conn.fetch("SELECT connector_id, source_action, ocpp_version FROM status_history "
                                "WHERE charge_point_id <> 'CP-OLD' ORDER BY 1, 2")
        assert [tuple(r) for r in rows] == [(0, "StatusNotification", "1.6"), (1, "StatusNotification", "1.6"),
                                            (1, "StatusNotification", "2.0.1")]
    finally:
        await conn.close()
