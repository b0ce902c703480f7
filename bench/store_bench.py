"""How fast the state store writes: coalesce + upsert + commit, for batches of 100, 1,000 and 5,000 events.

A realistic mix on a fleet already known to the database: 10,000 charge points × 2 connectors, mostly connector
status changes, some heartbeats, a few charge point statuses and boots, effective times moving forward (so rows
really change). Each batch is its own transaction, as in the worker. Not a test: it prints figures and the setup
they were measured on. Uses OCPP_DATABASE_URL's server; creates and drops a database of its own.

    OCPP_DATABASE_URL=postgresql://ocpp:ocpp@127.0.0.1:5433/ocpp .venv/bin/python -m bench.store_bench
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import re
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from consumer.coalesce import coalesce
from consumer.migrate import migrate
from consumer.store import make_history_partitions, write_batch
from consumer.tools.support import drop_database
from schemas.events import BootNotification, Heartbeat, StatusNotification

CHARGE_POINTS = 10_000
CONNECTORS = 2
EVENTS_PER_SIZE = 100_000
BATCH_SIZES = (100, 1_000, 5_000)
T0 = datetime(2026, 11, 24, tzinfo=timezone.utc)


class Feed:
    """Events with a clock that only moves forward, so every status is newer than the stored one."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.tick = 0

    def common(self, cp: str) -> dict:
        self.tick += 1
        at = T0 + timedelta(milliseconds=self.tick)
        return dict(event_id=uuid.uuid4(), charge_point_id=cp, ocpp_version="1.6", received_at=at,
                    effective_at=at, clock_skew_corrected=False)

    def event(self):
        cp = f"CP-{self.rng.randrange(CHARGE_POINTS):05d}"
        kind = self.rng.random()
        if kind < 0.80:
            return StatusNotification(**self.common(cp), connector_id=self.rng.randint(1, CONNECTORS),
                                      status=self.rng.choice(["AVAILABLE", "PREPARING", "CHARGING", "FINISHING"]),
                                      error_code=None)
        if kind < 0.95:
            return Heartbeat(**self.common(cp))
        if kind < 0.99:
            return StatusNotification(**self.common(cp), connector_id=0, status="AVAILABLE", error_code=None)
        return BootNotification(**self.common(cp), vendor="ABB", model="Terra", firmware_version="1.2.3")

    def initial(self) -> list:
        """A boot and a status per connector for every charge point: the fleet as it stands before the run."""
        events = []
        for n in range(CHARGE_POINTS):
            cp = f"CP-{n:05d}"
            events.append(BootNotification(**self.common(cp), vendor="ABB", model="Terra", firmware_version="1.2.2"))
            events += [StatusNotification(**self.common(cp), connector_id=c, status="AVAILABLE", error_code=None)
                       for c in range(CONNECTORS + 1)]
        return events


async def print_setup(conn: asyncpg.Connection) -> None:
    print(f"PostgreSQL: {await conn.fetchval('SELECT version()')}")
    for name in ("synchronous_commit", "fsync", "shared_buffers", "wal_level", "max_wal_size"):
        print(f"  {name} = {await conn.fetchval(f'SHOW {name}')}")
    print(f"Client: Python {platform.python_version()}, asyncpg {asyncpg.__version__}, "
          f"CPUs {os.cpu_count()} (shared by client and server), {platform.machine()}")
    print(f"Fleet: {CHARGE_POINTS:,} charge points × {CONNECTORS} connectors; "
          "mix 80% connector status, 15% heartbeat, 4% charge point status, 1% boot")


async def print_hot_updates(conn: asyncpg.Connection) -> None:
    """Share of updates that were HOT (no index write): why the state columns carry no index."""
    await asyncio.sleep(1)  # statistics reach the cumulative views with a short delay
    await conn.execute("SELECT pg_stat_force_next_flush()")
    for row in await conn.fetch(
        "SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
        " WHERE relname IN ('charge_point', 'connector') ORDER BY relname"
    ):
        share = row["n_tup_hot_upd"] / row["n_tup_upd"] if row["n_tup_upd"] else 0
        print(f"{row['relname']}: {row['n_tup_upd']:,} updates, {share:.0%} HOT")


async def print_doc_query_times(conn: asyncpg.Connection) -> None:
    """The analysts' example queries (docs/tables.md) over this fleet: they need no index on the state columns."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "tables.md").read_text(encoding="utf-8")
    for query in re.findall(r"```sql\n(.*?)```", doc, re.DOTALL):
        t0 = time.perf_counter()
        rows = await conn.fetch(query)
        first_line = " ".join(query.split())[:60]
        print(f"  {1000 * (time.perf_counter() - t0):6.1f} ms  {len(rows):>6,} rows  {first_line}…")


async def run(dsn: str) -> None:
    parts = urlsplit(dsn)
    name = f"store_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        bench_dsn = urlunsplit(parts._replace(path=f"/{name}"))
        await migrate(bench_dsn)
        conn = await asyncpg.connect(bench_dsn)
        try:
            await print_setup(conn)
            feed = Feed()
            initial = feed.initial()
            for i in range(0, len(initial), 5_000):
                rows = coalesce(initial[i : i + 5_000])
                await make_history_partitions(conn, rows)
                async with conn.transaction():
                    await write_batch(conn, rows)
            await conn.execute("VACUUM ANALYZE charge_point")
            await conn.execute("VACUUM ANALYZE connector")
            print(f"{'batch':>6} {'batches':>8} {'events/s':>10} {'rows/s':>10} {'rows/batch':>11} "
                  f"{'coalesce ms':>12} {'write+commit ms':>16}")
            for size in BATCH_SIZES:
                batches = [[feed.event() for _ in range(size)] for _ in range(EVENTS_PER_SIZE // size)]
                rows = 0
                coalesce_s = write_s = 0.0
                for events in batches:
                    t0 = time.perf_counter()
                    batch = coalesce(events)
                    t1 = time.perf_counter()
                    await make_history_partitions(conn, batch)
                    async with conn.transaction():
                        await write_batch(conn, batch)
                    t2 = time.perf_counter()
                    rows += len(batch)
                    coalesce_s += t1 - t0
                    write_s += t2 - t1
                total = coalesce_s + write_s
                n = len(batches)
                print(f"{size:>6} {n:>8} {EVENTS_PER_SIZE / total:>10,.0f} {rows / total:>10,.0f} "
                      f"{rows / n:>11,.0f} {1000 * coalesce_s / n:>12.2f} {1000 * write_s / n:>16.2f}")
            await print_hot_updates(conn)
            await print_doc_query_times(conn)
        finally:
            await conn.close()
    finally:
        await drop_database(admin, name)
        await admin.close()


def main() -> None:
    dsn = os.environ.get("OCPP_DATABASE_URL")
    if not dsn:
        sys.exit("set OCPP_DATABASE_URL to the server to benchmark against (an admin DSN: it creates a database)")
    asyncio.run(run(dsn))


if __name__ == "__main__":
    main()
