"""`ocpp-consumer exclusions add|list|remove`: the windows in which outages are outside the operator's control.

The `exclusions` table (sql/migrations/0006_uptime_report.sql) is the operator's, never the service's: the
writer role needs no right on it, and these commands run as the tables' owner or a role granted INSERT, SELECT
and DELETE on it (docs/tables.md, "Exclusions"). A window is checked here before anything is sent, so a bad one
is refused with a message that names what is wrong and nothing is written; the table's CHECKs say the same for
rows added with SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

import asyncpg

from consumer.queries import query
from consumer.report import Column, write_rows

_INSERT = query("insert_exclusion")
_KNOWN = query("charge_point_known")
_SELECT = query("select_exclusions")
_DELETE = query("delete_exclusion")

# The reporting system's codes (23 CFR 680.116(b) reporting), as the table's reason_code COMMENT lists them.
REASONS = {
    1: "utility interruption",
    2: "vehicle-caused",
    3: "scheduled maintenance",
    4: "vandalism",
    5: "natural disaster",
    6: "outside operating hours",
}
LIST_COLUMNS = (
    Column("id"), Column("charge_point_id"), Column("connector_id"), Column("starts_at"), Column("ends_at"),
    Column("reason_code"), Column("reason"), Column("note"), Column("created_at"),
)


class InvalidExclusion(ValueError):
    """An exclusion that cannot be right: the message names the option at fault."""


@dataclass(frozen=True, slots=True)
class Exclusion:
    charge_point_id: str
    connector_id: int | None  # None: every port of the charge point
    starts_at: datetime
    ends_at: datetime
    reason_code: int
    note: str | None = None

    def check(self) -> None:
        """Raise InvalidExclusion naming what is wrong; the table's CHECKs would refuse the same, less clearly."""
        if not self.charge_point_id:
            raise InvalidExclusion("--charge-point is empty")
        if self.connector_id is not None and self.connector_id < 1:
            raise InvalidExclusion(f"--connector {self.connector_id} is not a port: ports are numbered from 1 "
                                   "(leave --connector out for the whole charge point)")
        if self.ends_at == self.starts_at:
            raise InvalidExclusion(f"the window --from {self.starts_at.isoformat()} --to {self.ends_at.isoformat()} "
                                   "is empty: --to must be after --from")
        if self.ends_at < self.starts_at:
            raise InvalidExclusion(f"the window is reversed: --to {self.ends_at.isoformat()} is before --from "
                                   f"{self.starts_at.isoformat()}")
        if self.reason_code not in REASONS:
            raise InvalidExclusion(f"--reason {self.reason_code} is not a reason code: "
                                   + ", ".join(f"{code} {name}" for code, name in REASONS.items()))


async def add(conn: asyncpg.Connection, exclusion: Exclusion) -> tuple[int, bool]:
    """Insert a checked exclusion; return its id and whether its charge point is known to the database."""
    exclusion.check()
    async with conn.transaction():
        new_id = await conn.fetchval(_INSERT, exclusion.charge_point_id, exclusion.connector_id, exclusion.starts_at,
                                     exclusion.ends_at, exclusion.reason_code, exclusion.note)
        known = await conn.fetchval(_KNOWN, exclusion.charge_point_id)
    return new_id, known


async def fetch_all(conn: asyncpg.Connection) -> list[dict]:
    """Every exclusion, by charge point and start, with its reason in words beside the code."""
    return [dict(row) | {"reason": REASONS.get(row["reason_code"])} for row in await conn.fetch(_SELECT)]


def write_list(rows: Sequence[dict], out: TextIO) -> None:
    """CSV, as the report writes it (times in RFC 3339 UTC with Z, NULL empty)."""
    write_rows(LIST_COLUMNS, rows, out, "csv")


async def remove(conn: asyncpg.Connection, exclusion_id: int) -> bool:
    """Delete one exclusion; False when there is none with that id."""
    return await conn.fetchval(_DELETE, exclusion_id) is not None
