"""Behind PgBouncer in transaction pooling mode, as in front of many managed PostgreSQL services: the stack's
PgBouncer (`make up PGBOUNCER=1`; `make test` starts it) with OCPP_DATABASE_STATEMENT_CACHE_SIZE=0.

Each transaction may run on another server connection there, so a named prepared statement made in one is
missing (or already there) in the next; the stack's PgBouncer hands transactions round-robin to several warm
server connections, so a client that prepares named statements fails at once instead of by chance.
"""

from __future__ import annotations

import asyncio
import signal
import uuid

import asyncpg
import pytest

from tests.feed import valid_records
from tests.kafka_utils import committed_offsets, produce, wait_until
from tests.secure_stack import on_database, stack_env
from tests.service import expected_from, tables

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def _warm_server_connections(dsn: str, count: int = 4) -> None:
    """Make PgBouncer open `count` server connections to the database (transactions held at the same time)."""
    conns = [await asyncpg.connect(dsn, statement_cache_size=0) for _ in range(count)]
    try:
        await asyncio.gather(*(conn.execute("SELECT pg_sleep(0.3)") for conn in conns))
    finally:
        for conn in conns:
            await conn.close()


async def _through_pgbouncer(cache_size: str, kafka_bootstrap, topic_factory, db, replicas):
    env = stack_env("--pgbouncer")
    assert env["OCPP_DATABASE_STATEMENT_CACHE_SIZE"] == "0"
    dsn = on_database(env["OCPP_DATABASE_URL"], db)  # migrated directly: migrate's advisory lock needs a session
    await _warm_server_connections(dsn)
    topic = await topic_factory("pgbouncer")
    group = f"g-{uuid.uuid4().hex[:8]}"
    records = valid_records(4000, seed=81, charge_points=40)
    await produce(kafka_bootstrap, topic, records)
    replica = replicas(dsn, topic, group, OCPP_DATABASE_STATEMENT_CACHE_SIZE=cache_size, OCPP_BATCH_MAX_RECORDS="250")
    return replica, records, topic, group


async def test_run_end_to_end_through_pgbouncer(kafka_bootstrap, topic_factory, db, replicas):
    """With the statement cache off, every record lands through PgBouncer and the tables equal the oracle's."""
    replica, records, topic, group = await _through_pgbouncer("0", kafka_bootstrap, topic_factory, db, replicas)

    async def all_committed() -> bool:
        assert replica.process.poll() is None, replica.log_path.read_text()[-3000:]
        return sum((await committed_offsets(kafka_bootstrap, group, topic)).values()) >= len(records)

    await wait_until(all_committed, timeout=90, what="every record committed through PgBouncer")
    replica.signal(signal.SIGTERM)
    assert await replica.wait(30) == 0
    assert await tables(db) == expected_from(records)
    assert "prepared statement" not in replica.log_path.read_text()


async def test_the_statement_cache_fails_behind_pgbouncer(kafka_bootstrap, topic_factory, db, replicas):
    """The default cache (100) does not survive transaction pooling: the setting is what makes the difference,
    and the stack's PgBouncer really pools by transaction."""
    replica, records, topic, group = await _through_pgbouncer("100", kafka_bootstrap, topic_factory, db, replicas)
    status = await replica.wait(90)
    assert status == 1
    assert "prepared statement" in replica.log_path.read_text()
    assert sum((await committed_offsets(kafka_bootstrap, group, topic)).values()) < len(records)
