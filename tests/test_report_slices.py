"""The uptime report in slices of the charge points (migration 0008, `ocpp-consumer report --jobs N`), against real
PostgreSQL: any cut of the charge points into slices, reported one after the other, is the whole report row for
row; the command's slices read one snapshot at one as-of time; a slice that fails fails the report."""

from __future__ import annotations

import asyncio
import csv
import io
import random
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer import report
from consumer.migrate import migrate
from consumer.store import apply_events
from consumer.tools.support import drop_database
from tests.conftest import connections, dsn_for_database
from tests.report_events import UTC, heartbeats, status
from tests.test_report import random_fleet

# Ids whose order differs between byte order and a language's collation (case, accents, digits' width), beside
# random_fleet's CP-0 … CP-11: a slice is a range in byte order, whatever the database's collation.
ODD_IDS = ["cp-1", "CP-10", "CP-1a", "Äsch-1", "Z", "ä", "ÿ-9", "東京-1"]

_UPTIME = "SELECT * FROM port_uptime($1, $2, $3, $4, $5)"
_OUTAGES = "SELECT * FROM port_outages($1, $2, $3, $4, $5)"


def fleet(now: datetime) -> list:
    rng = random.Random(15)
    events = random_fleet(rng, now)
    start = now - timedelta(days=2)
    for cp in ODD_IDS:
        events += heartbeats(cp, start, now - timedelta(hours=rng.randrange(1, 30)))
        for port in (1, 2):
            events += [status(cp, port, start + timedelta(hours=rng.randrange(0, 40)),
                              rng.choice(("AVAILABLE", "FAULTED", "UNAVAILABLE"))) for _ in range(3)]
    return events


@pytest.fixture
async def english_database(admin_dsn: str) -> AsyncIterator[str]:
    """A new database whose collation is a language's (ICU's en-US, as a managed PostgreSQL's en_US.UTF-8 would
    be), not byte order: where the two differ, a slice must still be a range in byte order."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\' LOCALE \'C.UTF-8\' '
                            "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'")
        yield dsn_for_database(admin_dsn, name)
        await drop_database(admin, name)
    finally:
        await admin.close()


def test_any_cut_into_slices_is_the_whole_report(english_database):
    """port_uptime and port_outages of consecutive slices [None, c1), [c1, c2), …, [ck, None), for any cuts (ids
    of the fleet or any text), concatenated, are the whole report row for row, in its order."""
    database_url = english_database
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    period = (now - timedelta(days=3), now + timedelta(days=1), now - timedelta(hours=2))
    asyncio.run(migrate(database_url))

    async def setup() -> tuple[list, list, list[str]]:
        conn = await asyncpg.connect(database_url)
        try:
            await apply_events(conn, fleet(now))
            ids = [r[0] for r in await conn.fetch("SELECT serial_number FROM charge_point")]
            return (await conn.fetch(_UPTIME, *period, None, None), await conn.fetch(_OUTAGES, *period, None, None),
                    ids)
        finally:
            await conn.close()

    whole_uptime, whole_outages, ids = asyncio.run(setup())
    assert len(whole_uptime) > 30 and len(whole_outages) > 20 and set(ODD_IDS) <= set(ids)

    async def sliced(bounds: list) -> tuple[list, list]:
        conn = await asyncpg.connect(database_url)
        try:
            uptime, outages = [], []
            for lo, hi in zip(bounds, bounds[1:]):
                uptime += await conn.fetch(_UPTIME, *period, lo, hi)
                outages += await conn.fetch(_OUTAGES, *period, lo, hi)
            return uptime, outages
        finally:
            await conn.close()

    text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=4)

    @given(st.lists(st.one_of(st.sampled_from(ids), text), max_size=5))
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def check(cuts):
        # Python orders str by code point, which is UTF-8's byte order: the order of COLLATE "C".
        uptime, outages = asyncio.run(sliced([None, *sorted(cuts), None]))
        assert uptime == whole_uptime
        assert outages == whole_outages

    check()


@pytest.mark.parametrize("jobs", [2, 3, 8])
async def test_the_commands_slices_cut_the_charge_points_evenly(db, jobs):
    """The slices write_report computes on: in byte order, together every id, each of about as many charge
    points (the slowest slice sets the report's time)."""
    ids = [f"CP-{n:04d}" for n in range(400)] + ODD_IDS
    async with connections(db, jobs) as conns:
        await conns[0].executemany("INSERT INTO charge_point (serial_number, last_updated) VALUES ($1, now())",
                                   [(i,) for i in ids])
        async with report.report_slices(conns, None) as (_, slices):
            pass
    assert len(slices) == jobs and slices[0][0] is None and slices[-1][1] is None
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:]))
    sizes = [sum(1 for i in ids if (lo is None or i >= lo) and (hi is None or i < hi)) for lo, hi in slices]
    assert sum(sizes) == len(ids)
    assert max(sizes) - min(sizes) <= 2, sizes  # percentile_disc's cuts: within one of len(ids) / jobs


async def test_the_slices_read_one_snapshot(db):
    """While the consumer writes, every slice sees the database as the first did when the report began: a charge
    point committed after the slices opened is in none of them, though the other transactions had read nothing
    yet (and a new transaction sees it)."""
    async with connections(db, 4) as (*conns, writer):
        async with report.report_slices(conns, None):
            await writer.execute("INSERT INTO charge_point (serial_number, last_updated) VALUES ('CP-late', now())")
            for conn in conns:
                assert await conn.fetchval("SELECT count(*) FROM charge_point WHERE serial_number = 'CP-late'") == 0
        assert await conns[2].fetchval("SELECT count(*) FROM charge_point WHERE serial_number = 'CP-late'") == 1


async def test_every_slice_counts_up_to_the_reports_now(db):
    """Without an as-of time the report counts up to the database's now, read once for every slice: a port of
    the last slice, faulted since an hour ago, has an ongoing outage of about 60 minutes in a period that ends
    tomorrow (not the day still to come)."""
    now = datetime.now(UTC).replace(microsecond=0)
    earlier = now - timedelta(hours=3)
    events = [status("CP-Z", 1, earlier, "AVAILABLE"), status("CP-Z", 1, now - timedelta(hours=1), "FAULTED")]
    for cp in ("CP-A", "CP-B", "CP-C", "CP-Z"):
        events += [*heartbeats(cp, earlier, now), status(cp, 2, earlier, "AVAILABLE")]
    async with connections(db, 3) as conns:
        await apply_events(conns[0], events)
        async with report.report_slices(conns, None) as (as_of, slices):
            assert as_of == await conns[0].fetchval("SELECT now()")
        assert slices[-1][0] <= "CP-Z"
        out = io.StringIO()
        await report.write_report(conns, "outages", now - timedelta(days=1), now + timedelta(days=1), None, out)
    (row,) = [r for r in csv.DictReader(io.StringIO(out.getvalue()))
              if (r["charge_point_id"], r["connector_id"]) == ("CP-Z", "1")]
    assert (row["cause"], row["end"]) == ("FAULTED", "")
    assert 60 <= float(row["minutes"]) < 62


async def test_a_slice_that_fails_fails_the_report(db):
    """A slice's query that the server stops (here its statement timeout) is the report's error, raised from the
    slice, whichever slice it is, at once: the other slices' queries are cancelled even while they wait (here on
    a lock on exclusions, held until the test ends), and every connection is left usable."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    period = (now - timedelta(days=3), now + timedelta(days=1), None)
    async with connections(db, 4) as (*conns, locker):
        await apply_events(conns[0], fleet(now))
        for failing in range(3):
            await conns[failing].execute("SET statement_timeout = 200")
            async with locker.transaction():
                await locker.execute("LOCK TABLE exclusions IN ACCESS EXCLUSIVE MODE")
                with pytest.raises(asyncpg.QueryCanceledError, match="statement timeout"):
                    await asyncio.wait_for(report.write_report(conns, "uptime", *period, io.StringIO()), 30)
                for conn in conns:
                    assert await conn.fetchval("SELECT 1") == 1 and not conn.is_in_transaction()
            await conns[failing].execute("RESET statement_timeout")
        assert await report.write_report(conns, "uptime", *period, io.StringIO()) > 30


async def test_no_charge_points_in_slices_is_an_empty_report(db):
    out = io.StringIO()
    start = datetime(2026, 3, 1, tzinfo=UTC)
    async with connections(db, 4) as conns:
        assert await report.write_report(conns, "outages", start, start + timedelta(days=31), None, out, "json") == 0
    assert out.getvalue() == "[]\n"
