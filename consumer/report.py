"""`ocpp-consumer report uptime|outages`: the uptime report as files a regulator's template or a spreadsheet reads.

The figures are computed by the SQL functions `port_uptime` and `port_outages` (sql/migrations/0006_uptime_report.sql
and 0007_faster_uptime_report.sql) so that analysts calling them and operators running this command get the same
numbers; this module only fetches the rows and writes them. The output is a contract (docs/tables.md, "The uptime
report"): exactly the header columns, in order; minutes with two decimals and percent with three, rounded half up;
times in RFC 3339 UTC with `Z`; NULL as an empty field (CSV) or null (JSON); nothing else on standard output, so it
can be piped.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import TextIO

import asyncpg

from consumer.queries import query

_SELECT_UPTIME = query("select_port_uptime")
_SELECT_OUTAGES = query("select_port_outages")


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


# Rows fetched at a time: the report of a fleet of a million charge points has three million rows, which as
# records held at once would take gigabytes; a chunk of this size takes a few megabytes.
CHUNK_ROWS = 10_000


async def write_report(conn: asyncpg.Connection, kind: str, start: datetime, end: datetime, as_of: datetime | None,
                       out: TextIO, fmt: str = "csv") -> int:
    """Write report `kind` ("uptime" or "outages") for [start, end) as of `as_of` (None: the database's now) to
    `out` in format `fmt`, as it is fetched, a chunk of rows at a time through a cursor, so that the command's
    memory does not grow with the fleet. Returns the number of rows. If the database fails part way, what was
    written is a prefix of the report and the error propagates: the exit status says it is incomplete."""
    statement, columns = REPORTS[kind]
    writer = RowWriter(columns, out, fmt)
    async with conn.transaction(readonly=True):  # a cursor lives in a transaction
        cursor = await conn.cursor(statement, start, end, as_of)
        while rows := await cursor.fetch(CHUNK_ROWS):
            writer.write(rows)
    writer.close()
    return writer.count


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
            self._csv.writerows(["" if row[c.name] is None else _text(row[c.name], c) for c in columns]
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
    if isinstance(value, datetime):
        return rfc3339(value)
    if column.places is not None and value is not None:
        # The SQL already rounded half up to these places; quantizing again is a no-op that pins the format
        # (always this many places, never an exponent).
        return format(Decimal(value).quantize(Decimal(1).scaleb(-column.places), rounding=ROUND_HALF_UP), "f")
    return str(value)


def _json(value, column: Column) -> str:
    if value is None:
        return "null"
    if column.places is not None or isinstance(value, int):
        return _text(value, column)
    return json.dumps(_text(value, column), ensure_ascii=False)
