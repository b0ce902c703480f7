"""`ocpp-consumer report uptime|outages`: the uptime report as files a regulator's template or a spreadsheet reads.

The figures are computed by the SQL functions `port_uptime` and `port_outages` (sql/migrations/0006_uptime_report.sql
to 0009) so that analysts calling them and operators running this command get the same numbers; this module only
fetches the rows and writes them. Over a fleet the functions take minutes in one server
process, so the report can be computed in slices of the charge points, one per connection, at once (`--jobs`).
The output is a contract (docs/tables.md, "The uptime report"): exactly the header columns, in order; minutes
with two decimals and percent with three, rounded half up; times in RFC 3339 UTC with `Z`; NULL as an empty field
(CSV) or null (JSON); nothing else on standard output, so it can be piped.
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TextIO

import asyncpg

from consumer.queries import query

_SELECT_UPTIME = query("select_port_uptime")
_SELECT_OUTAGES = query("select_port_outages")
_SELECT_SLICES = query("select_report_slices")
_AS_OF = query("report_as_of")


@dataclass(frozen=True, slots=True)
class Column:
    """One output column: its name (the CSV header, the JSON key) and, for a decimal, how many places."""

    name: str
    places: int | None = None


UPTIME_COLUMNS = (
    Column("charge_point_id"), Column("connector_id"), Column("observed_minutes", 2), Column("outage_minutes", 2),
    Column("excluded_minutes", 2), Column("uptime_percent", 3), Column("outages"),
)
OUTAGE_COLUMNS = (
    Column("charge_point_id"), Column("connector_id"), Column("start"), Column("end"), Column("minutes", 2),
    Column("excluded_minutes", 2), Column("cause"), Column("error_code"), Column("vendor_error_code"),
)
REPORTS = {"uptime": (_SELECT_UPTIME, UPTIME_COLUMNS), "outages": (_SELECT_OUTAGES, OUTAGE_COLUMNS)}
FORMATS = ("csv", "json")


# `--jobs`: slices computed at once. Two, not the machine's cores: the cores that count are the database's, and a
# report should not take all of them from the consumer writing beside it.
DEFAULT_JOBS = 2

# Rows fetched at a time: the report of a fleet of a million charge points has three million rows, which as
# records held at once would take gigabytes; a chunk of this size takes a few megabytes.
CHUNK_ROWS = 10_000


async def write_report(conns: Sequence[asyncpg.Connection], kind: str, start: datetime, end: datetime,
                       as_of: datetime | None, out: TextIO, fmt: str = "csv") -> int:
    """Write report `kind` ("uptime" or "outages") for [start, end) as of `as_of` (None: the database's now) to
    `out` in format `fmt`, as it is fetched, a chunk of rows at a time through a cursor, so that the command's
    memory does not grow with the fleet. Returns the number of rows. If the database fails part way, what was
    written is a prefix of the report and the error propagates: the exit status says it is incomplete.

    With several connections the report is computed in as many slices of the charge points at once, each by its
    own server process (the functions run a slice's whole query before its first row comes back), and written
    slice after slice: the same document as from one connection, in about 1/len(conns) of the server's time
    where the server has the cores (BENCHMARKS.md, "The report in slices")."""
    statement, columns = REPORTS[kind]
    async with report_slices(conns, as_of) as (as_of, slices):
        writer = RowWriter(columns, out, fmt)
        cursors = [await conn.cursor(statement, start, end, as_of, lo, hi) for conn, (lo, hi) in zip(conns, slices)]
        # Every slice starts computing now; the first is written while the others compute.
        firsts = [asyncio.ensure_future(cursor.fetch(CHUNK_ROWS)) for cursor in cursors]
        try:
            for cursor, first in zip(cursors, firsts):
                rows = await _first_chunk(first, firsts)
                while rows:
                    writer.write(rows)
                    rows = await cursor.fetch(CHUNK_ROWS)
        finally:
            # A slice that failed, or the writer (a closed pipe): stop the other slices' queries before their
            # transactions end.
            for task in firsts:
                task.cancel()
            await asyncio.gather(*firsts, return_exceptions=True)
    writer.close()
    return writer.count


async def _first_chunk(first: asyncio.Future, firsts: Sequence[asyncio.Future]) -> list:
    """The first chunk of a slice, or the error of any slice as soon as it comes: a slice that fails (a lost
    connection, a statement timeout) fails the report at once, not after the slices before it are computed."""
    while True:
        for task in firsts:
            if task.done() and task.exception() is not None:
                return task.result()  # raises it
        if first.done():
            return first.result()
        await asyncio.wait([task for task in firsts if not task.done()], return_when=asyncio.FIRST_COMPLETED)


@asynccontextmanager
async def report_slices(conns: Sequence[asyncpg.Connection], as_of: datetime | None
                        ) -> AsyncIterator[tuple[datetime, list[tuple[str | None, str | None]]]]:
    """Open a read-only transaction on each connection, all on one snapshot, and yield the report's as-of time
    (`as_of`, or the database's now, read once) and one slice of the charge points per connection,
    [from, to) in byte order, None meaning no bound: in order, together every charge point. One snapshot and one
    as-of time make the slices the report one query would give, even while the consumer writes (as pg_dump
    --jobs does: the first transaction exports its snapshot, the others import it)."""
    first, *others = conns
    async with AsyncExitStack() as transactions:
        # Repeatable read: a snapshot can be exported and imported only by transactions that keep it.
        await transactions.enter_async_context(first.transaction(isolation="repeatable_read", readonly=True))
        snapshot = await first.fetchval("SELECT pg_export_snapshot()") if others else None
        for conn in others:
            await transactions.enter_async_context(conn.transaction(isolation="repeatable_read", readonly=True))
            await conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        if as_of is None:
            as_of = await first.fetchval(_AS_OF)
        cuts = await first.fetchval(_SELECT_SLICES, len(conns)) if others else []
        if cuts is None:  # no charge points: one slice, the others empty
            cuts = [""] * len(others)
        bounds = [None, *cuts, None]
        yield as_of, list(zip(bounds, bounds[1:]))


class RowWriter:
    """CSV with a header line, or a JSON array of objects; the same names and the same values either way. Rows
    are written as they are given, so that a caller can stream them; close() ends the document."""

    def __init__(self, columns: Sequence[Column], out: TextIO, fmt: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
        self.columns, self.out, self.fmt, self.count = columns, out, fmt, 0
        if fmt == "csv":
            # "\n" rather than csv's default "\r\n": the files go to Unix tools first; spreadsheets read either.
            self._csv = csv.writer(out, lineterminator="\n")
            self._csv.writerow([c.name for c in columns])

    def write(self, rows: Sequence) -> None:
        columns = self.columns
        if self.fmt == "csv":
            self._csv.writerows(["" if (value := row[c.name]) is None else _text(value, c) for c in columns]
                                for row in rows)
        else:
            # Written by hand, not json.dumps: a decimal goes out as the number it is ("90.00"), neither a
            # string nor a float that might print 90.0 or 0.30000000000000004.
            for n, row in enumerate(rows, self.count):
                obj = "{" + ", ".join(f"{json.dumps(c.name)}: {_json(row[c.name], c)}" for c in columns) + "}"
                self.out.write(("[\n" if n == 0 else ",\n") + obj)
        self.count += len(rows)

    def close(self) -> None:
        if self.fmt == "json":
            self.out.write("\n]\n" if self.count else "[]\n")


def write_rows(columns: Sequence[Column], rows: Sequence, out: TextIO, fmt: str) -> None:
    """All of `rows` as one document: CSV with a header line, or a JSON array of objects."""
    writer = RowWriter(columns, out, fmt)
    writer.write(rows)
    writer.close()


def rfc3339(moment: datetime) -> str:
    """UTC with `Z`, as RFC 3339 writes it: 2026-03-10T10:00:00Z; a fraction of a second only when there is one,
    without trailing zeros (12:00:40.176Z)."""
    utc = moment.astimezone(timezone.utc)
    fraction = f".{utc.microsecond:06d}".rstrip("0") if utc.microsecond else ""
    return f"{utc:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def _text(value, column: Column) -> str:
    """A value that is not NULL, as both formats write it."""
    if column.places is not None:
        # The SQL already rounded half up to these places; the format pins them (always this many places, never
        # an exponent) without rounding again. Decimal.quantize did the same at a quarter of the command's CPU.
        return format(value, f".{column.places}f")
    if isinstance(value, datetime):
        return rfc3339(value)
    return str(value)


def _json(value, column: Column) -> str:
    if value is None:
        return "null"
    if column.places is not None or isinstance(value, int):
        return _text(value, column)
    return json.dumps(_text(value, column), ensure_ascii=False)
