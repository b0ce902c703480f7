"""The example queries of docs/tables.md run, and return rows, against a populated database."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg

from consumer.migrate import migrate
from consumer.store import apply_events
from schemas.events import BootNotification, Heartbeat, StatusNotification

DOC = Path(__file__).resolve().parent.parent / "docs" / "tables.md"


def sql_blocks() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def fleet() -> list:
    """A small fleet with something for every query: statuses, a fault, a silent and a never-heard charge point."""
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
    ]


def test_doc_has_the_promised_queries():
    """The analysts' page keeps its example queries (fleet status, faults, silent charge points)."""
    text = "\n".join(sql_blocks())
    assert len(sql_blocks()) >= 3
    assert "FAULTED" in text and "last_heartbeat" in text and "GROUP BY" in text


async def test_every_doc_query_runs_and_finds_rows(database_url):
    """Each ```sql block of docs/tables.md executes without error and returns at least one row."""
    await migrate(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await apply_events(conn, fleet())
        for query in sql_blocks():
            rows = await conn.fetch(query)
            assert rows, f"no rows from:\n{query}"
        faulted = await conn.fetch(sql_blocks()[2])
        assert [(r["charge_point_id"], r["error_code"]) for r in faulted] == [("CP-2", "GROUND_FAILURE")]
        silent = await conn.fetch(sql_blocks()[3])
        assert [r["serial_number"] for r in silent] == ["CP-3", "CP-2"]
    finally:
        await conn.close()
