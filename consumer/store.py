"""Writes a coalesced batch into `charge_point` and `connector`: one statement per table, inside the caller's
transaction (the worker owns it, and commits Kafka offsets only after it).

The statements (sql/queries/state.sql) move a value only when the incoming version is newer, so the tables are a
pure function of the set of events written: order, duplicates, batching and concurrent replicas change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from consumer.coalesce import Batch, coalesce
from consumer.queries import QUERIES
from schemas.events import StateEvent


async def write_batch(conn: asyncpg.Connection, batch: Batch) -> None:
    """Upsert the batch's rows: charge points first (every connector's parent must exist), then connectors."""
    if batch.charge_points:
        await conn.execute(QUERIES["upsert_charge_points"], *_columns(batch.charge_points))
    if batch.connectors:
        await conn.execute(QUERIES["upsert_connectors"], *_columns(batch.connectors))


async def apply_events(conn: asyncpg.Connection, events: Iterable[StateEvent]) -> None:
    """Coalesce and write events in a transaction of their own: for tests, tools and one-off loads."""
    batch = coalesce(events)
    async with conn.transaction():
        await write_batch(conn, batch)


def _columns(rows: list) -> list[list]:
    """Rows to the column arrays that `unnest` turns back into rows, in the same order (so the lock order holds)."""
    return [list(column) for column in zip(*rows)]
