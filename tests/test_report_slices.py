"""The uptime report in slices of the charge points (migration 0008), against real PostgreSQL: any cut of the
charge points into slices, reported one after the other, is the whole report row for row."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.migrate import migrate
from consumer.store import apply_events
from consumer.tools.support import drop_database
from tests.conftest import dsn_for_database
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
