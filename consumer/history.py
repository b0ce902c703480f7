"""`ocpp-consumer history prune --before DATE`: the retention of `status_history`, whole months at a time.

Dropping a month's partition is instant and leaves no dead rows, which a DELETE of millions of rows would not;
migration 0005's `ocpp_prune_status_history` does it and remembers the horizon, so a late event of a dropped
month updates the state but does not bring the month back. Only the tables' owner may run it (EXECUTE is
revoked from everyone else): the service's writer role must never be able to erase history.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from consumer.queries import query

_PRUNE = query("prune_status_history")


async def prune(conn: asyncpg.Connection, before: datetime) -> list[str]:
    """Drop every month of history that ends on or before `before`; return the partitions dropped, by name."""
    return [row["dropped"] for row in await conn.fetch(_PRUNE, before)]
