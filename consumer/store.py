"""The write stage: a batch's events become rows in `charge_point`, `connector` and `evse_connector`, and their
history and presence in `status_history` and `charge_point_presence`, in one transaction.

Each table's rows travel as one JSON document, an array per row, that the statement reads as jsonb by position.
Encoding column arrays in asyncpg cost the consumer ~4 µs of Python per event (it checks every element); orjson
writes the rows in a fraction of that, and the parsing moves to PostgreSQL.

The statements (sql/queries/state.sql) move a value only when the incoming version is newer, so the tables are a
pure function of the set of events written: order, duplicates, batching and concurrent replicas change nothing.
That is also what makes splitting a batch, replaying it and committing Kafka offsets after it safe.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from operator import itemgetter
from typing import Any

import asyncpg
import orjson

from consumer.coalesce import DEFAULT_PRESENCE_WINDOW, Batch, HistoryRow, coalesce
from consumer.queries import query
from consumer.retry import is_data_error
from schemas.events import Rejection, StateEvent

log = logging.getLogger("consumer")

_UPSERT_CHARGE_POINTS = query("upsert_charge_points")
_UPSERT_CONNECTORS = query("upsert_connectors")
_UPSERT_EVSE_CONNECTORS = query("upsert_evse_connectors")
_DERIVE_EVSE_PORTS = query("derive_evse_ports")
_ENSURE_HISTORY_PARTITIONS = query("ensure_status_history_partitions")
_INSERT_STATUS_HISTORY = query("insert_status_history")
_UPSERT_PRESENCE = query("upsert_presence")

_EFFECTIVE_AT = itemgetter(HistoryRow._fields.index("effective_at"))  # history rows are plain tuples
MAX_REFUSAL_DETAIL = 1000  # the database's message becomes a dead-letter header and a log field

# Runs a database call, waiting out transient failures (the worker's Retrier, bound to "write").
Attempt = Callable[[Callable[[], Awaitable[None]]], Awaitable[None]]


@dataclass(slots=True)
class Written:
    """What writing a batch did beyond storing it: the events the database refused as data (with why), and how
    many status events fell in pruned months, so updated the state but not the history."""

    refused: list[tuple[Any, StateEvent, Rejection]] = field(default_factory=list)
    history_pruned: int = 0

    def add(self, other: Written) -> Written:
        self.refused += other.refused
        self.history_pruned += other.history_pruned
        return self


async def write_events(pool: asyncpg.Pool, events: list[tuple[Any, StateEvent]], *, attempt: Attempt,
                       presence_window: timedelta = DEFAULT_PRESENCE_WINDOW) -> Written:
    """Write the events' state, history and presence in one transaction; say which the database refused.

    A data error (say, a value the schema's check refuses) would otherwise fail the whole batch forever, so the
    batch is halved until the events that cause it stand alone; those are returned for the dead-letter topic and
    the rest is written. Halves are written in their own transactions, which is safe because every write is
    idempotent and order-independent. `events` pairs each event with the record it came from, passed through.
    """
    written = Written()
    if not events:
        return written

    async def write_once() -> None:
        batch = coalesce((event for _, event in events), presence_window)
        async with pool.acquire() as conn:
            await make_history_partitions(conn, batch)
            async with conn.transaction():
                written.history_pruned = await write_batch(conn, batch)

    try:
        await attempt(write_once)
    except Exception as exc:
        if not is_data_error(exc):
            raise
        if len(events) == 1:
            record, event = events[0]
            detail = f"database refused the event: {type(exc).__name__}: {exc}"[:MAX_REFUSAL_DETAIL]
            log.warning("event refused by the database", extra={"event_id": str(event.event_id), "error": str(exc)})
            written.refused.append((record, event, Rejection("database", detail)))
            return written
        middle = len(events) // 2
        halves = [await write_events(pool, half, attempt=attempt, presence_window=presence_window)
                  for half in (events[:middle], events[middle:])]
        return halves[0].add(halves[1])
    return written


async def make_history_partitions(conn: asyncpg.Connection, batch: Batch) -> None:
    """The status_history partitions of the batch's months, made if missing. Called before the write
    transaction, never inside it: making a partition briefly locks the table, and waiting for that while
    holding charge point rows could deadlock with another replica."""
    if batch.history:
        # (year, month) pairs first: a replace() per row was 3 % of the consumer's CPU in a boot storm
        months = {(at.year, at.month) for at in map(_EFFECTIVE_AT, batch.history)}
        firsts = [datetime(year, month, 1, tzinfo=timezone.utc) for year, month in sorted(months)]
        await conn.execute(_ENSURE_HISTORY_PARTITIONS, firsts)


async def write_batch(conn: asyncpg.Connection, batch: Batch) -> int:
    """Upsert the batch's rows: charge points first (every other row's parent, and the lock that makes writers
    of one charge point take turns), then 1.6 ports, then 2.x physical connectors, and the 2.x ports, whose
    status is derived from their connectors as stored; then history and presence. Returns how many status
    events fell in pruned months (state only, no history)."""
    if batch.charge_points:
        await conn.execute(_UPSERT_CHARGE_POINTS, _json(batch.charge_points))
    if batch.connectors:
        await conn.execute(_UPSERT_CONNECTORS, _json(batch.connectors))
    if batch.evse_connectors:
        await conn.execute(_UPSERT_EVSE_CONNECTORS, _json(batch.evse_connectors))
        await conn.execute(_DERIVE_EVSE_PORTS, _json(batch.evse_ports))
    pruned = 0
    if batch.history:
        pruned = await conn.fetchval(_INSERT_STATUS_HISTORY, _json(batch.history))
    if batch.presence:
        await conn.execute(_UPSERT_PRESENCE, _json(batch.presence))
    return pruned


async def apply_events(conn: asyncpg.Connection, events: Iterable[StateEvent],
                       presence_window: timedelta = DEFAULT_PRESENCE_WINDOW) -> int:
    """Coalesce and write events in a transaction of their own: for tests, tools and one-off loads. Returns how
    many status events fell in pruned months."""
    batch = coalesce(events, presence_window)
    await make_history_partitions(conn, batch)
    async with conn.transaction():
        return await write_batch(conn, batch)


def _json(rows: list) -> str:
    """Rows (plain tuples) as a JSON array of arrays, in the batch's key order (the lock order); times with their
    UTC offset."""
    return orjson.dumps(rows, option=orjson.OPT_NAIVE_UTC).decode()
