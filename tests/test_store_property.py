"""Property: the tables are a pure function of the set of events, whatever the order, duplication and batching —
the derived status of every port (2.x EVSEs with two connectors, ports reported in both OCPP families), the status
history, the presence and the uptime report included."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.coalesce import ChargePointRow, ConnectorRow, EvseConnectorRow, PortRow, coalesce
from consumer.migrate import migrate
from consumer.store import apply_events
from tests.oracle import (events_strategy, expected_history, expected_presence, expected_state, fetch_history,
                          fetch_presence, fetch_state)

# The oracle's 1.6 state of a port, under the names of coalesce.ConnectorRow.
_OCPP16 = {"status": "ocpp16_status", "error_code": "ocpp16_error_code", "error_info": "ocpp16_error_info",
           "vendor_id": "ocpp16_vendor_id", "vendor_error_code": "ocpp16_vendor_error_code",
           "last_updated": "ocpp16_effective_at", "status_received_at": "ocpp16_received_at",
           "status_event_id": "ocpp16_event_id", "status_digest": "ocpp16_digest"}


def _as_read(row) -> dict:
    """A batch row's fields as the statement reads them: the digests and port ids travel as hex digits, cast to
    uuid."""
    return {k: uuid.UUID(v) if v is not None and (k == "id" or k.endswith("_digest")) else v
            for k, v in row._asdict().items()}


@given(events_strategy(max_size=60))
@settings(max_examples=300, deadline=None)
def test_coalesce_keeps_the_winners(events):
    """One coalesced batch carries exactly the oracle's winning values, one row per key, sorted by key: the charge
    points, each port's 1.6 state, each 2.x physical connector, and the 2.x ports to derive."""
    batch = coalesce(events)
    charge_points, connectors, evse_connectors = expected_state(events)
    # The batch's rows are plain tuples; their row types name the fields
    batch_charge_points = [ChargePointRow._make(row) for row in batch.charge_points]
    batch_connectors = [ConnectorRow._make(row) for row in batch.connectors]
    batch_evse_connectors = [EvseConnectorRow._make(row) for row in batch.evse_connectors]
    batch_evse_ports = [PortRow._make(row) for row in batch.evse_ports]
    assert [row.serial_number for row in batch_charge_points] == sorted(charge_points)
    for row in batch_charge_points:
        expected = charge_points[row.serial_number]
        assert _as_read(row) == {k: expected[k] for k in row._fields}
    ocpp16 = {key: row for key, row in connectors.items() if row["ocpp16_status"] is not None}
    assert [(row.charge_point_id, row.connector_id) for row in batch_connectors] == sorted(ocpp16)
    for row in batch_connectors:
        expected = ocpp16[(row.charge_point_id, row.connector_id)]
        assert _as_read(row) == {k: expected[_OCPP16.get(k, k)] for k in row._fields}
    assert [(row.charge_point_id, row.evse_id, row.connector_id) for row in batch_evse_connectors] == sorted(
        evse_connectors)
    for row in batch_evse_connectors:
        assert _as_read(row) == evse_connectors[(row.charge_point_id, row.evse_id, row.connector_id)]
    assert [(row.charge_point_id, row.connector_id) for row in batch_evse_ports] == sorted(
        {(cp, evse) for cp, evse, _ in evse_connectors})


# The drawn events' instants are seconds after 2026-11-24 12:00; presence lasts ten minutes after each.
_UPTIME = "SELECT * FROM port_uptime('2026-11-24 11:59', '2026-11-24 12:30', '2026-11-24 12:20')"
_OUTAGES = "SELECT * FROM port_outages('2026-11-24 11:59', '2026-11-24 12:30', '2026-11-24 12:20')"


async def write_runs(dsn: str, runs: list[list[list]]) -> list[tuple]:
    """Each run from empty tables: its batches, each coalesced and written in its own transaction."""
    conn = await asyncpg.connect(dsn)
    try:
        results = []
        for batches in runs:
            await conn.execute("TRUNCATE charge_point, connector, evse_connector, status_history, "
                               "charge_point_presence RESTART IDENTITY")
            for batch in batches:
                await apply_events(conn, batch)
            report = (await conn.fetch(_UPTIME), await conn.fetch(_OUTAGES))
            results.append((await fetch_state(conn), await fetch_history(conn), await fetch_presence(conn), report))
        return results
    finally:
        await conn.close()


def _any_order_gives_the_oracle(database_url: str, events_strategy_: st.SearchStrategy, examples: int) -> None:
    """Permuted, duplicated, randomly batched runs of each drawn event set all end in the oracle's tables."""
    # One database for the whole hypothesis run (the fixture is set up once, outside `check`); every run
    # starts from truncated tables.
    asyncio.run(migrate(database_url))

    @given(events=events_strategy_, data=st.data())
    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def check(events, data):
        # One run writes each event in a transaction of its own (every interleaving of the statements is then
        # possible); two cut a permutation with duplicates into random batches.
        runs = [[[event] for event in data.draw(st.permutations(events))]]
        for _ in range(2):
            run = data.draw(st.permutations(events)) if events else []
            if events:
                run = run + data.draw(st.lists(st.sampled_from(events), max_size=10))
            cuts = sorted(data.draw(st.lists(st.integers(0, len(run)), max_size=6)))
            bounds = [0, *cuts, len(run)]
            runs.append([run[i:j] for i, j in zip(bounds, bounds[1:]) if j > i])
        expected = expected_state(events), expected_history(events), expected_presence(events)
        results = asyncio.run(write_runs(database_url, runs))
        for result in results:
            assert result[:3] == expected
            assert result[3] == results[0][3]  # the report, a function of the tables: the same from every run

    check()


def test_any_order_duplication_and_batching_gives_the_oracle(database_url):
    """Permuted, duplicated, randomly batched runs of one event set all end in the oracle's tables, row for row:
    charge points, ports (with their derived status and family) and physical connectors."""
    _any_order_gives_the_oracle(database_url, events_strategy(), 60)


def test_one_port_in_any_order_gives_the_oracle(database_url):
    """The port rules where they meet: one charge point, one port, reported by 1.6 StatusNotifications, 2.x
    StatusNotifications of its two connectors and NotifyEvents, in any order and batching. A connector's late
    status can change the port's status without its newest time moving, and a late 1.6 status must not hide a
    newer 2.x state: the derived port equals the oracle's whatever the order."""
    _any_order_gives_the_oracle(database_url, events_strategy(12, charge_points=("CP-1",), ports=(1,)), 150)
