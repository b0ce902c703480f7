"""Migration 0003 (ports) on a database that 0001 and 0002 made and that already holds data: every existing value
stays as it was, and the rows written before it take part in the new rules as the state of their own version."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import uuid4

import asyncpg
import pytest

from consumer.coalesce import content_digest
from consumer.migrate import migrate, read_migrations
from consumer.store import apply_events
from tests.test_store import boot, status, status_2x

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
MINUS_INFINITY = datetime.min  # asyncpg reads '-infinity' as this


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def populated_0002(conn: asyncpg.Connection) -> None:
    """0001 and 0002 applied as `migrate` would have, and rows as the 0002 consumer wrote them (some carried over
    from 0001, with received_at -infinity)."""
    first, second = read_migrations()[:2]
    assert (first.name, second.name) == ("0001_charge_point_and_connector", "0002_version_order")
    await conn.execute(first.sql)
    await conn.execute(second.sql)
    await conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, checksum TEXT NOT NULL, "
                       "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
    await conn.executemany("INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                           [(first.name, first.checksum), (second.name, second.checksum)])
    boot_id, status_id = uuid4(), uuid4()
    await conn.execute(
        "INSERT INTO charge_point (serial_number, model, vendor, firmware_version, status, last_heartbeat, "
        "last_updated, boot_effective_at, boot_received_at, boot_event_id, boot_digest, status_effective_at, "
        "status_received_at, status_event_id, status_digest) VALUES "
        "('CP-16', 'Eve', 'Alfen', '5.8', 'AVAILABLE', $1, $2, $1, $1, $3, $4, $2, $2, $5, $6), "
        "('CP-2X', 'Terra', 'ABB', NULL, NULL, NULL, $2, $1, '-infinity', $3, $7, NULL, NULL, NULL, NULL), "
        "('CP-HB', NULL, NULL, NULL, NULL, $1, $1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        at(0), at(20), boot_id, content_digest("Alfen", "Eve", "5.8"), status_id, content_digest("AVAILABLE"),
        content_digest("ABB", "Terra", None))
    rows = [  # (charge point, connector, status, error code, effective, received): one 1.6 port, two 2.0.1 EVSEs
        ("CP-16", 1, "FAULTED", "GROUND_FAILURE", at(10), at(10)),
        ("CP-2X", 1, "OCCUPIED", None, at(20), at(20)),
        ("CP-2X", 2, "AVAILABLE", None, at(5), MINUS_INFINITY),
    ]
    await conn.executemany(
        "INSERT INTO connector (id, charge_point_id, connector_id, status, error_code, last_updated, "
        "status_received_at, status_event_id, status_digest) "
        "VALUES (md5($1::text || '/' || $2::int)::uuid, $1, $2::int, $3::text, $4::text, $5, $6, $7, "
        "ocpp_content_digest($3::text, $4::text))",
        [(cp, n, s, e, eff, rec, uuid4()) for cp, n, s, e, eff, rec in rows])


async def snapshot(conn: asyncpg.Connection) -> dict:
    return {table: [dict(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY 1, 2")]
            for table in ("charge_point", "connector")}


async def test_0003_keeps_a_populated_0002_database(database_url):
    """Every value of every existing row is unchanged; the new columns are NULL (not reported, or family not
    recorded); and the pre-0003 rows keep answering every example query, the roaming view included."""
    conn = await asyncpg.connect(database_url)
    try:
        await populated_0002(conn)
        before = await snapshot(conn)
        assert read_migrations()[2].name == "0003_ports"
        assert await migrate(database_url) == [m.name for m in read_migrations()[2:]]  # 0003_ports and later
        after = await snapshot(conn)
        for table, rows in before.items():
            assert [{k: row[k] for k in rows[0]} for row in after[table]] == rows, table
        # last_seen_at comes from 0005, which fills it from what the row recorded (tests/test_migrate_0005.py).
        new_columns = {k for k in after["charge_point"][0] if k not in before["charge_point"][0]} - {"last_seen_at"}
        assert new_columns == {"ocpp_version", "hardware_serial", "boot_reason", "iccid", "imsi"}
        assert all(row[k] is None for row in after["charge_point"] for k in new_columns)
        assert all(row[k] is None for row in after["connector"]
                   for k in row if k not in before["connector"][0])
        assert await conn.fetchval("SELECT count(*) FROM evse_connector") == 0
        assert await conn.fetch("SELECT connector_id, ocpi_status, afir_operational, afir_in_use "
                                "FROM port_roaming_status ORDER BY charge_point_id, connector_id") == [
            (1, "OUTOFORDER", False, False), (1, "CHARGING", True, True), (2, "AVAILABLE", True, False)]
    finally:
        await conn.close()


async def test_rows_from_before_0003_count_as_the_state_of_their_version(database_url):
    """A pre-0003 port (family not recorded) shows its state until a newer status of either family arrives;
    an older one is kept in its family's state without hiding it; a newer 2.x connector takes the port over."""
    conn = await asyncpg.connect(database_url)
    try:
        await populated_0002(conn)
        await migrate(database_url)

        await apply_events(conn, [status("CP-16", 1, 5, "AVAILABLE")])  # older than the stored FAULTED
        row = await conn.fetchrow("SELECT * FROM connector WHERE charge_point_id = 'CP-16'")
        assert (row["status"], row["error_code"], row["status_family"]) == ("FAULTED", "GROUND_FAILURE", None)
        assert (row["ocpp16_status"], row["ocpp16_effective_at"]) == ("AVAILABLE", at(5))
        await apply_events(conn, [status("CP-16", 1, 15, "CHARGING")])  # newer
        row = await conn.fetchrow("SELECT * FROM connector WHERE charge_point_id = 'CP-16'")
        assert (row["status"], row["error_code"], row["status_family"]) == ("CHARGING", None, "1.6")

        await apply_events(conn, [status_2x("CP-2X", 1, 2, 12, "UNAVAILABLE")])  # older than the stored OCCUPIED
        row = await conn.fetchrow("SELECT * FROM connector WHERE charge_point_id = 'CP-2X' AND connector_id = 1")
        assert (row["status"], row["last_updated"], row["status_family"]) == ("OCCUPIED", at(20), None)
        await apply_events(conn, [status_2x("CP-2X", 2, 1, 30, "FAULTED")])  # newer than the stored AVAILABLE
        row = await conn.fetchrow("SELECT * FROM connector WHERE charge_point_id = 'CP-2X' AND connector_id = 2")
        assert (row["status"], row["last_updated"], row["status_family"]) == ("FAULTED", at(30), "2.x")

        await apply_events(conn, [boot("CP-2X", 40)])
        cp = await conn.fetchrow("SELECT * FROM charge_point WHERE serial_number = 'CP-2X'")
        assert (cp["model"], cp["ocpp_version"]) == ("Terra", "1.6")
    finally:
        await conn.close()
