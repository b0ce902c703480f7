"""Least privilege on the real cluster: the stack's logins ocpp_app (in ocpp_writer) and ocpp_analyst (in
ocpp_reader), on a database the owner migrated. The writer reads and writes the state and nothing else; the
reader only reads; `python -m consumer.roles` prints the SQL and re-applies the grants migration 0004 makes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone

import asyncpg
import pytest

from consumer.migrate import read_migrations
from consumer.queries import query
from consumer.roles import roles_sql
from consumer.store import apply_events
from schemas.events import StatusNotification
from tests.secure_stack import ROOT, error_lines, on_database, read_secret, run_command, service_env, stack_env

pytestmark = [pytest.mark.postgres]

GRANTS = """
SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants
WHERE grantee IN ('ocpp_writer', 'ocpp_reader') AND table_schema = current_schema()
UNION ALL
SELECT r.rolname, '(default for new tables)', a.privilege_type
FROM pg_default_acl d, aclexplode(d.defaclacl) a JOIN pg_roles r ON r.oid = a.grantee
WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = current_user) AND r.rolname LIKE 'ocpp\\_%'
ORDER BY 1, 2, 3
"""
MAKES_PARTITIONS = ("SELECT has_function_privilege('ocpp_writer', "
                    "'ocpp_ensure_status_history_partitions(timestamptz[])', 'EXECUTE')")


async def _login(flag: str, db: str) -> asyncpg.Connection:
    env = stack_env(flag)
    return await asyncpg.connect(on_database(env["OCPP_DATABASE_URL"], db),
                                 password=read_secret(env, "OCPP_DATABASE_PASSWORD_FILE"))


@pytest.fixture
async def writer(db: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await _login("--secure", db)
    yield conn
    await conn.close()


@pytest.fixture
async def reader(db: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await _login("--analyst", db)
    yield conn
    await conn.close()


async def _refused(conn: asyncpg.Connection, sql: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute(sql)


async def test_the_writer_reads_and_writes_the_state_and_nothing_else(writer, db):
    """SELECT, INSERT, UPDATE on the state tables, SELECT on the ledger; no DELETE, TRUNCATE, DROP, ALTER, no new
    table, no writing the ledger, nothing in another schema."""
    owner = await asyncpg.connect(db)
    try:
        await owner.execute("CREATE SCHEMA elsewhere; CREATE TABLE elsewhere.secrets (x int)")
    finally:
        await owner.close()
    assert await writer.fetchval("SELECT current_user") == "ocpp_app"
    await writer.execute("INSERT INTO charge_point (serial_number, last_updated) VALUES ('CP-W', now())")
    await writer.execute("UPDATE charge_point SET status = 'AVAILABLE' WHERE serial_number = 'CP-W'")
    assert await writer.fetchval("SELECT count(*) FROM charge_point") == 1
    assert await writer.fetchval("SELECT count(*) FROM schema_migrations") == len(read_migrations())
    await _refused(writer, "DELETE FROM charge_point")
    await _refused(writer, "TRUNCATE charge_point CASCADE")
    await _refused(writer, "DROP TABLE connector")
    await _refused(writer, "ALTER TABLE charge_point ADD COLUMN x int")
    await _refused(writer, "CREATE TABLE mine (x int)")
    await _refused(writer, "INSERT INTO schema_migrations (name, checksum) VALUES ('9999_x', 'x')")
    await _refused(writer, "DELETE FROM schema_migrations")
    await _refused(writer, "SELECT * FROM elsewhere.secrets")
    await _refused(writer, "CREATE SCHEMA mine")


async def test_the_reader_only_reads(reader, writer):
    await writer.execute("INSERT INTO charge_point (serial_number, last_updated) VALUES ('CP-R', now())")
    assert await reader.fetchval("SELECT current_user") == "ocpp_analyst"
    assert await reader.fetchval("SELECT serial_number FROM charge_point") == "CP-R"
    assert await reader.fetchval("SELECT count(*) FROM connector") == 0
    await _refused(reader, "INSERT INTO charge_point (serial_number, last_updated) VALUES ('CP-X', now())")
    await _refused(reader, "UPDATE charge_point SET status = 'FAULTED'")
    await _refused(reader, "DELETE FROM charge_point")
    await _refused(reader, "TRUNCATE connector")
    await _refused(reader, "DROP TABLE connector")


def test_migration_0004_runs_the_grants_of_the_roles_command():
    """The migration and `python -m consumer.roles` grant the same, word for word."""
    migration = (ROOT / "sql" / "migrations" / "0004_least_privilege_roles.sql").read_text()
    grants = query("grant_group_roles")
    block = grants[grants.index("DO $$"):]
    assert migration.rstrip().endswith(block.rstrip())


def test_migration_0005_runs_the_partition_grant_of_the_roles_command():
    migration = (ROOT / "sql" / "migrations" / "0005_status_history_and_presence.sql").read_text()
    grant = query("grant_partition_maker")
    assert grant[grant.index("DO $$"):].rstrip() in migration


async def test_the_writer_keeps_history_in_a_new_month(writer):
    """The writer cannot make tables, but status_history's partitions it needs are made for it: a status in a
    month never seen before is kept, through the owner's function and nothing else."""
    event = StatusNotification(uuid.uuid4(), "CP-H", "1.6", *(2 * [datetime(2031, 7, 4, tzinfo=timezone.utc)]),
                               False, 1, "FAULTED", "GROUND_FAILURE")
    await apply_events(writer, [event])
    assert await writer.fetchval("SELECT status FROM status_history_2031_07") == "FAULTED"
    await _refused(writer, "SELECT ocpp_prune_status_history('2031-08-01')")
    await _refused(writer, "CREATE TABLE status_history_2040_01 PARTITION OF status_history "
                           "FOR VALUES FROM ('2040-01-01') TO ('2040-02-01')")


def test_the_roles_command_prints_the_sql():
    done = run_command(["consumer.roles"], service_env())
    assert done.returncode == 0
    assert done.stdout == roles_sql()
    for statement in ("CREATE ROLE ocpp_writer NOLOGIN", "CREATE ROLE ocpp_reader NOLOGIN",
                      "GRANT SELECT, INSERT, UPDATE ON %s TO ocpp_writer",
                      "GRANT SELECT ON schema_migrations TO ocpp_writer",
                      "GRANT SELECT ON ALL TABLES IN SCHEMA %I TO ocpp_reader"):
        assert statement in done.stdout


async def test_roles_apply_restores_what_the_migration_granted(db):
    """Roles made after migration 0004 ran get the same privileges from `--apply`, run as the tables' owner."""
    owner = await asyncpg.connect(db)
    try:
        granted = await owner.fetch(GRANTS)
        assert ("ocpp_writer", "charge_point", "INSERT") in [tuple(row) for row in granted]
        await owner.execute("""
            REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ocpp_writer, ocpp_reader;
            REVOKE USAGE ON SCHEMA public FROM ocpp_writer, ocpp_reader;
            ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM ocpp_writer, ocpp_reader;
            REVOKE EXECUTE ON FUNCTION ocpp_ensure_status_history_partitions(timestamptz[]) FROM ocpp_writer;
        """)
        assert await owner.fetch(GRANTS) == []
        assert not await owner.fetchval(MAKES_PARTITIONS)
        done = run_command(["consumer.roles", "--apply"], service_env(OCPP_DATABASE_URL=db))
        assert done.returncode == 0, done.stderr
        assert await owner.fetch(GRANTS) == granted
        assert await owner.fetchval(MAKES_PARTITIONS)
    finally:
        await owner.close()


def test_roles_apply_as_the_writer_is_refused_in_one_line(db):
    env = stack_env("--secure")
    done = run_command(["consumer.roles", "--apply"], service_env(
        OCPP_DATABASE_URL=on_database(env["OCPP_DATABASE_URL"], db),
        OCPP_DATABASE_PASSWORD_FILE=env["OCPP_DATABASE_PASSWORD_FILE"]))
    assert done.returncode == 2
    (line,) = error_lines(done.stderr)
    assert "may not do this" in line and "administrator" in line
