"""Schema migrations: numbered `.sql` files under `sql/migrations/`, applied in name order, each once.

The files ship with the package and are read through `consumer.queries.migration_files()` (importlib.resources),
so an installed wheel migrates as a source checkout does.

Every replica may run `migrate` at start-up at the same moment: an advisory lock makes one apply while the others
wait and then find nothing to do. Each migration runs in its own transaction together with its ledger row, so a
crash leaves it applied and recorded, or neither. A file changed after it was applied is refused, not re-run:
the database would no longer be what the files say.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from consumer.queries import MIGRATIONS_DIR, migration_files, query

_FILE_NAME = re.compile(r"^\d{4}_[a-z0-9_]+\.sql$")

_LOCK = query("lock_migrations")
_UNLOCK = query("unlock_migrations")
_CREATE_LEDGER = query("create_schema_migrations")
_FIND_LEDGER = query("find_schema_migrations")
_SELECT_APPLIED = query("select_applied_migrations")
_RECORD = query("record_migration")


class MigrationError(Exception):
    """The migrations on disk and those recorded in the database disagree; a person must look."""


@dataclass(frozen=True, slots=True)
class Migration:
    name: str  # file name without `.sql`, e.g. 0001_charge_point_and_connector
    checksum: str  # sha256 of the file's bytes
    sql: str


def read_migrations(files: Iterable[tuple[str, bytes]] | None = None) -> list[Migration]:
    """The migrations the package carries (or `files`, as (file name, contents)), in the order they apply."""
    migrations = []
    for file_name, data in migration_files() if files is None else files:
        if not _FILE_NAME.match(file_name):
            raise MigrationError(
                f"{MIGRATIONS_DIR / file_name}: migration files are named NNNN_lower_snake_case.sql"
            )
        name = file_name.removesuffix(".sql")
        migrations.append(Migration(name, hashlib.sha256(data).hexdigest(), data.decode("utf-8")))
    return migrations


async def pending_migrations(conn: asyncpg.Connection) -> list[str]:
    """Names of the migrations the package carries not yet applied (all of them on a fresh database)."""
    applied = await _applied(conn)
    return [m.name for m in read_migrations() if m.name not in applied]


async def migrate(dsn: str, **connect_options) -> list[str]:
    """Apply the pending migrations and return their names ([] when the database is up to date).

    `connect_options` go to asyncpg.connect as the service's own connections have them
    (`consumer.clients.database_connect_options`: a password given apart from the DSN, the statement cache).

    Raises MigrationError, before applying anything, when an applied migration's file changed or disappeared.
    """
    conn = await asyncpg.connect(dsn, **connect_options)
    try:
        await conn.execute(_LOCK)
        try:
            await conn.execute(_CREATE_LEDGER)
            migrations = read_migrations()
            applied = await _applied(conn)
            _check_applied(migrations, applied)
            done = []
            for migration in migrations:
                if migration.name in applied:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(_RECORD, migration.name, migration.checksum)
                done.append(migration.name)
            return done
        finally:
            if not conn.is_closed():  # a lost connection has released the lock already
                await conn.execute(_UNLOCK)
    finally:
        await conn.close()


async def _applied(conn: asyncpg.Connection) -> dict[str, str]:
    """Applied migration name → checksum; empty when the ledger does not exist yet."""
    if not await conn.fetchval(_FIND_LEDGER):
        return {}
    return {row["name"]: row["checksum"] for row in await conn.fetch(_SELECT_APPLIED)}


def _check_applied(migrations: list[Migration], applied: dict[str, str]) -> None:
    on_disk = {m.name: m.checksum for m in migrations}
    for name, checksum in sorted(applied.items()):
        if name not in on_disk:
            raise MigrationError(
                f"migration {name} is applied in the database but its file is missing from {MIGRATIONS_DIR}; "
                "the database is ahead of this code"
            )
        if on_disk[name] != checksum:
            raise MigrationError(
                f"migration {name} was changed after it was applied (checksum {checksum[:12]}… in the database, "
                f"{on_disk[name][:12]}… on disk); restore the file and add a new migration instead"
            )
