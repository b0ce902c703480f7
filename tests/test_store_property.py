"""Property: the tables are a pure function of the set of events, whatever the order, duplication and batching."""

from __future__ import annotations

import asyncio
from dataclasses import asdict

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.coalesce import coalesce
from consumer.migrate import migrate
from consumer.store import apply_events
from tests.oracle import events_strategy, expected_tables, fetch_tables


@given(events_strategy(max_size=60))
@settings(max_examples=300, deadline=None)
def test_coalesce_keeps_the_winners(events):
    """One coalesced batch carries exactly the oracle's winning values, one row per key, sorted by key."""
    batch = coalesce(events)
    charge_points, connectors = expected_tables(events)
    assert [row.serial_number for row in batch.charge_points] == sorted(charge_points)
    assert [(row.charge_point_id, row.connector_id) for row in batch.connectors] == sorted(connectors)
    for row in batch.charge_points:
        expected = charge_points[row.serial_number]
        assert asdict(row) == {k: expected[k] for k in asdict(row)}
    for row in batch.connectors:
        expected = connectors[(row.charge_point_id, row.connector_id)]
        assert asdict(row) == {k: expected[k] for k in asdict(row)}


async def write_runs(dsn: str, runs: list[list[list]]) -> list[tuple]:
    """Each run from empty tables: its batches, each coalesced and written in its own transaction."""
    conn = await asyncpg.connect(dsn)
    try:
        results = []
        for batches in runs:
            await conn.execute("TRUNCATE charge_point, connector RESTART IDENTITY")
            for batch in batches:
                await apply_events(conn, batch)
            results.append(await fetch_tables(conn))
        return results
    finally:
        await conn.close()


def test_any_order_duplication_and_batching_gives_the_oracle(database_url):
    """Permuted, duplicated, randomly batched runs of one event set all end in the oracle's tables, row for row."""
    # One database for the whole hypothesis run (the fixture is set up once, outside `check`); every run
    # starts from truncated tables.
    asyncio.run(migrate(database_url))

    @given(events=events_strategy(), data=st.data())
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def check(events, data):
        runs = []
        for _ in range(3):
            run = data.draw(st.permutations(events)) if events else []
            if events:
                run = run + data.draw(st.lists(st.sampled_from(events), max_size=10))
            cuts = sorted(data.draw(st.lists(st.integers(0, len(run)), max_size=6)))
            bounds = [0, *cuts, len(run)]
            runs.append([run[i:j] for i, j in zip(bounds, bounds[1:]) if j > i])
        expected = expected_tables(events)
        for result in asyncio.run(write_runs(database_url, runs)):
            assert result == expected

    check()
