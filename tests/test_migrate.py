"""Migrations: fresh databases, re-runs, replicas migrating at once, edited files, and the schema analysts read."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from consumer.migrate import MigrationError, migrate, pending_migrations, read_migrations

ALL = [m.name for m in read_migrations()]


async def connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn)


async def test_fresh_database_then_rerun(database_url):
    """A fresh database has every migration pending; migrate applies all of them once; a re-run is a no-op."""
    conn = await connect(database_url)
    try:
        assert ALL and await pending_migrations(conn) == ALL
        assert await migrate(database_url) == ALL
        assert await pending_migrations(conn) == []
        assert await migrate(database_url) == []
        rows = await conn.fetch("SELECT name, checksum FROM schema_migrations ORDER BY name")
        assert [(r["name"], r["checksum"]) for r in rows] == [(m.name, m.checksum) for m in read_migrations()]
    finally:
        await conn.close()


async def test_concurrent_runs_apply_once(database_url):
    """Three replicas migrating at the same moment: one applies everything, the others wait and find nothing."""
    results = await asyncio.gather(*(migrate(database_url) for _ in range(3)))
    assert sorted(results, key=len) == [[], [], ALL]


async def test_changed_checksum_is_refused(database_url):
    """A migration file edited after it was applied stops migrate with a clear error, and nothing else runs."""
    await migrate(database_url)
    conn = await connect(database_url)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE name = $1", ALL[0])
        with pytest.raises(MigrationError, match=f"{ALL[0]} was changed after it was applied"):
            await migrate(database_url)
        # The advisory lock was released despite the error: a later run can take it again at once.
        assert await conn.fetchval("SELECT pg_try_advisory_lock(7243615001)")
    finally:
        await conn.close()


async def test_unknown_applied_migration_is_refused(database_url):
    """A database migrated by newer code (a migration this code lacks) is refused rather than run against."""
    await migrate(database_url)
    conn = await connect(database_url)
    try:
        await conn.execute("INSERT INTO schema_migrations (name, checksum) VALUES ('9999_from_the_future', 'x')")
        with pytest.raises(MigrationError, match="9999_from_the_future.*file is missing"):
            await migrate(database_url)
    finally:
        await conn.close()


async def test_schema_matches_the_design(database_url):
    """Names, types, keys of the design document, with TIMESTAMP as TIMESTAMPTZ; every column documented."""
    await migrate(database_url)
    conn = await connect(database_url)
    try:
        columns = {
            (r["table_name"], r["column_name"]): (r["data_type"], r["character_maximum_length"])
            for r in await conn.fetch(
                "SELECT table_name, column_name, data_type, character_maximum_length FROM information_schema.columns "
                "WHERE table_name IN ('charge_point', 'connector')"
            )
        }
        varchar, tstz = ("character varying", 255), ("timestamp with time zone", None)
        design = {
            ("charge_point", "id"): ("bigint", None), ("charge_point", "serial_number"): varchar,
            ("charge_point", "model"): varchar, ("charge_point", "vendor"): varchar,
            ("charge_point", "firmware_version"): varchar, ("charge_point", "status"): varchar,
            ("charge_point", "last_heartbeat"): tstz, ("charge_point", "last_updated"): tstz,
            ("connector", "id"): ("uuid", None), ("connector", "charge_point_id"): varchar,
            ("connector", "connector_id"): ("integer", None), ("connector", "status"): varchar,
            ("connector", "error_code"): varchar, ("connector", "last_updated"): tstz,
        }
        assert {k: columns[k] for k in design} == design
        constraints = {
            (r["table_name"], r["constraint_type"], r["columns"])
            for r in await conn.fetch(
                "SELECT tc.table_name, tc.constraint_type, string_agg(k.column_name, ',' ORDER BY k.ordinal_position)"
                " AS columns FROM information_schema.table_constraints tc JOIN information_schema.key_column_usage k"
                " USING (constraint_schema, constraint_name) WHERE tc.table_name IN ('charge_point', 'connector')"
                " GROUP BY 1, 2, tc.constraint_name"
            )
        }
        assert constraints == {
            ("charge_point", "PRIMARY KEY", "id"), ("charge_point", "UNIQUE", "serial_number"),
            ("connector", "PRIMARY KEY", "id"), ("connector", "UNIQUE", "charge_point_id,connector_id"),
            ("connector", "FOREIGN KEY", "charge_point_id"),
        }
        undocumented = await conn.fetch(
            "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " WHERE c.relname IN ('charge_point', 'connector') AND a.attnum > 0 AND NOT a.attisdropped"
            " AND col_description(c.oid, a.attnum) IS NULL"
        )
        assert undocumented == []
    finally:
        await conn.close()


async def test_0002_keeps_a_populated_0001_database(database_url):
    """Rows written under 0001 keep every value; their versions gain received_at -infinity and their digest, so
    a replay of the same event only fills in the real received_at, and a newer event still wins."""
    from datetime import datetime, timezone
    from uuid import uuid4

    from consumer.coalesce import content_digest
    from consumer.store import apply_events
    from schemas.events import StatusNotification

    first = read_migrations()[0]
    conn = await connect(database_url)
    try:
        await conn.execute(first.sql)
        await conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, checksum TEXT NOT NULL, "
                           "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        await conn.execute("INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)", first.name, first.checksum)
        at = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
        boot_id, status_id = uuid4(), uuid4()
        await conn.execute(
            "INSERT INTO charge_point (serial_number, model, vendor, firmware_version, status, last_heartbeat, "
            "last_updated, boot_effective_at, boot_event_id, status_effective_at, status_event_id) "
            "VALUES ('CP-1', 'Eve', 'Alfen', NULL, 'AVAILABLE', $1, $1, $1, $2, $1, $3), "
            "('CP-2', NULL, NULL, NULL, NULL, $1, $1, NULL, NULL, NULL, NULL)", at, boot_id, status_id)
        await conn.execute(
            "INSERT INTO connector (id, charge_point_id, connector_id, status, error_code, last_updated, "
            "status_event_id) VALUES (md5('CP-1/1')::uuid, 'CP-1', 1, 'FAULTED', 'GROUND_FAILURE', $1, $2)",
            at, status_id)
        before_cp = [dict(r) for r in await conn.fetch("SELECT * FROM charge_point ORDER BY serial_number")]
        before_c = [dict(r) for r in await conn.fetch("SELECT * FROM connector")]

        assert await migrate(database_url) == ALL[1:]
        after_cp = [dict(r) for r in await conn.fetch("SELECT * FROM charge_point ORDER BY serial_number")]
        after_c = [dict(r) for r in await conn.fetch("SELECT * FROM connector")]
        assert [{k: r[k] for k in before_cp[0]} for r in after_cp] == before_cp
        assert [{k: r[k] for k in before_c[0]} for r in after_c] == before_c
        minus_infinity = await conn.fetchval("SELECT '-infinity'::timestamptz")
        assert after_cp[0]["boot_received_at"] == after_cp[0]["status_received_at"] == minus_infinity
        assert after_cp[0]["boot_digest"] == uuid.UUID(content_digest("Alfen", "Eve", None))
        assert after_cp[1]["boot_received_at"] is None and after_cp[1]["boot_digest"] is None
        assert after_c[0]["status_digest"] == uuid.UUID(content_digest("FAULTED", "GROUND_FAILURE"))

        replay = StatusNotification(status_id, "CP-1", "1.6", at, at, False, connector_id=1, status="FAULTED",
                                    error_code="GROUND_FAILURE")
        await apply_events(conn, [replay])
        row = await conn.fetchrow("SELECT status, status_received_at FROM connector")
        assert (row["status"], row["status_received_at"]) == ("FAULTED", at)
        newer = StatusNotification(uuid4(), "CP-1", "1.6", at, at.replace(second=1), False, connector_id=1,
                                   status="AVAILABLE", error_code=None)
        await apply_events(conn, [newer])
        assert await conn.fetchval("SELECT status FROM connector") == "AVAILABLE"
    finally:
        await conn.close()
