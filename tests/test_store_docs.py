"""The example queries of docs/tables.md run, and return rows, against a populated database."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg

from consumer.migrate import migrate
from consumer.store import apply_events
from schemas.events import BootNotification, Heartbeat, Ignored, NotifyEvent, StatusNotification

DOC = Path(__file__).resolve().parent.parent / "docs" / "tables.md"


def sql_blocks() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def fleet() -> list:
    """A small fleet with something for every query: statuses, faults (one with a vendor code), a silent and a
    never-heard charge point, a 2.1 two-connector EVSE upgraded from 1.6, a charger that sends only MeterValues."""
    now = datetime.now(timezone.utc)

    def common(cp: str, when: datetime) -> dict:
        return dict(event_id=uuid.uuid4(), charge_point_id=cp, ocpp_version="1.6", received_at=when,
                    effective_at=when, clock_skew_corrected=False)

    hour_ago = now - timedelta(hours=1)
    return [
        BootNotification(**common("CP-1", hour_ago), vendor="ABB", model="Terra", firmware_version="1.2"),
        BootNotification(**common("CP-2", hour_ago), vendor="ABB", model="Terra", firmware_version=None),
        StatusNotification(**common("CP-1", hour_ago), connector_id=0, status="AVAILABLE", error_code=None),
        StatusNotification(**common("CP-1", now), connector_id=1, status="CHARGING", error_code=None),
        StatusNotification(**common("CP-2", hour_ago), connector_id=1, status="FAULTED", error_code="GROUND_FAILURE"),
        Heartbeat(**common("CP-1", now)),
        Heartbeat(**common("CP-2", hour_ago)),
        StatusNotification(**common("CP-3", now), connector_id=2, status="AVAILABLE", error_code=None),
        # A 2.1 DC charger with a two-connector EVSE, reporting through NotifyEvent; upgraded from 1.6 in place.
        StatusNotification(**common("CP-4", hour_ago - timedelta(hours=1)), connector_id=1, status="FAULTED",
                           error_code="OTHER_ERROR", error_info="RCD", vendor_id="com.kempower",
                           vendor_error_code="K-17"),
        BootNotification(**(common("CP-4", hour_ago) | {"ocpp_version": "2.1"}), vendor="Kempower", model="S",
                         firmware_version="1.0", hardware_serial="KP-1", boot_reason="POWER_UP", iccid="8931"),
        NotifyEvent(**(common("CP-4", now) | {"ocpp_version": "2.1"}), ignored_items=1, statuses=tuple(
            StatusNotification(**(common("CP-4", now) | {"ocpp_version": "2.1"}), connector_id=1,
                               evse_connector_id=n, status=s, error_code=None)
            for n, s in ((1, "OCCUPIED"), (2, "UNAVAILABLE")))),
        StatusNotification(**common("CP-5", hour_ago), connector_id=1, status="FAULTED", error_code="OTHER_ERROR",
                           vendor_id="com.alfen", vendor_error_code="E-4017", error_info="contactor"),
        Ignored("CP-6", "1.6", "MeterValues", uuid.uuid4(), now),
    ]


def test_doc_has_the_promised_queries():
    """The analysts' page keeps its example queries (fleet status, faults, silent charge points)."""
    text = "\n".join(sql_blocks())
    assert len(sql_blocks()) >= 3
    assert "FAULTED" in text and "last_heartbeat" in text and "GROUP BY" in text


async def test_every_doc_query_runs_and_finds_rows(database_url):
    """Each ```sql block of docs/tables.md executes without error, returns at least one row, and the port, fault,
    roaming and fleet queries return exactly what the fleet says."""
    await migrate(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await apply_events(conn, fleet())
        for query in sql_blocks():
            rows = await conn.fetch(query)
            assert rows, f"no rows from:\n{query}"
        blocks = sql_blocks()
        faulted = await conn.fetch(blocks[2])
        assert [(r["charge_point_id"], r["error_code"]) for r in faulted] == [
            ("CP-2", "GROUND_FAILURE"), ("CP-5", "OTHER_ERROR")]
        silent = await conn.fetch(blocks[3])
        assert [r["serial_number"] for r in silent] == ["CP-3", "CP-4", "CP-5", "CP-6", "CP-2"]
        by_query = {block.split("\n", 1)[0]: await conn.fetch(block) for block in blocks}
        ports = by_query["SELECT c.charge_point_id, c.connector_id AS port, c.status AS port_status,"]
        assert [(r["port_status"], r["connector"], r["connector_status"]) for r in ports] == [
            ("OCCUPIED", 1, "OCCUPIED"), ("OCCUPIED", 2, "UNAVAILABLE")]
        vendor = by_query["SELECT charge_point_id, connector_id, error_code, vendor_id, vendor_error_code, error_info,"]
        assert [(r["charge_point_id"], r["vendor_error_code"]) for r in vendor] == [("CP-5", "E-4017")]
        ocpi = by_query["SELECT ocpi_status, count(*) AS ports"]
        assert {r["ocpi_status"]: r["ports"] for r in ocpi} == {"CHARGING": 2, "OUTOFORDER": 2, "AVAILABLE": 1}
        afir = by_query["SELECT charge_point_id,"]
        assert [tuple(r) for r in afir] == [("CP-1", 1, 1, 1), ("CP-2", 0, 0, 1), ("CP-3", 1, 0, 1),
                                            ("CP-4", 1, 1, 1), ("CP-5", 0, 0, 1)]
        versions = by_query["SELECT coalesce(ocpp_version, '(unknown)') AS ocpp_version, count(*) AS charge_points,"]
        assert [tuple(r) for r in versions] == [("(unknown)", 3, 0, 0), ("1.6", 2, 0, 0), ("2.1", 1, 1, 1)]
        upgraded = by_query["SELECT charge_point_id, connector_id, status, status_family, ocpp16_status, ocpp16_effective_at"]
        assert [(r["charge_point_id"], r["status"], r["ocpp16_status"]) for r in upgraded] == [
            ("CP-4", "OCCUPIED", "FAULTED")]
    finally:
        await conn.close()
