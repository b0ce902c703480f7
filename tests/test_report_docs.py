"""docs/tables.md on history, presence, exclusions and the report: its sections are there, and its example queries
run against a fleet written through the service's write path and return what the fleet says."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg

from consumer.migrate import migrate
from consumer.store import apply_events
from schemas.events import Heartbeat
from tests.report_events import UTC, heartbeats, status

DOC = Path(__file__).resolve().parent.parent / "docs" / "tables.md"
TABLES = ("status_history", "charge_point_presence", "exclusions", "port_uptime", "port_outages")


def report_blocks() -> list[str]:
    """The ```sql blocks that use history, presence, exclusions or the report, in document order."""
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    return [b for b in blocks if any(name in b for name in TABLES)]


def fleet(now: datetime) -> list:
    """Two days, heard from every 10 minutes. CP-1: port 1 FAULTED 5 h to 3.5 h ago (90 minutes, GROUND_FAILURE,
    E-17), port 2 fine, heard from just now. CP-2: silent from 10 h to 8 h ago and for the last half hour, its
    port 1 FAULTED since an hour ago. CP-3: silent for the last 3 hours."""
    ago = lambda hours: now - timedelta(hours=hours)  # noqa: E731
    return [
        *heartbeats("CP-1", ago(48), now),
        Heartbeat(uuid.uuid4(), "CP-1", "1.6", now, now, False),
        *heartbeats("CP-2", ago(48), ago(0.5), gaps=((ago(10), ago(8)),)),
        *heartbeats("CP-3", ago(48), ago(3)),
        status("CP-1", 1, ago(48), "AVAILABLE"),
        status("CP-1", 2, ago(48), "AVAILABLE"),
        status("CP-1", 1, ago(5), "FAULTED", "GROUND_FAILURE", vendor_error="E-17"),
        status("CP-1", 1, ago(3.5), "AVAILABLE"),
        status("CP-2", 1, ago(48), "AVAILABLE"),
        status("CP-2", 1, ago(1), "FAULTED", "OTHER_ERROR", vendor_error="X-1"),
        status("CP-3", 1, ago(48), "AVAILABLE"),
    ]


def test_the_sections_are_there():
    """The sections the migrations' COMMENTs point to, the rule stated in full, and a query for each object."""
    text = DOC.read_text(encoding="utf-8")
    for heading in ("## History and presence", "## Exclusions", "## Port status over time", "## The uptime report"):
        assert heading in text
    rule = text[text.index("## Port status over time"):text.index("## The uptime report")]
    for phrase in ("winning event among those with\n  `effective_at` ≤ t", "is its own\n  connector",
                   "highest of\n  its connectors' statuses existing at t by `ocpp_port_status_rank`",
                   "family of its newest status event", "Before a port's first status event it does not exist",
                   "winning row with `connector_id` = 0", "not present at t"):
        assert phrase in rule, phrase
    blocks = "\n".join(report_blocks())
    assert all(name in blocks for name in TABLES)
    assert "ocpp-consumer report uptime --from" in text and "ocpp-consumer history prune --before" in text


async def test_every_report_query_runs_and_says_what_the_fleet_says(database_url):
    """Each block returns rows, and the rows the fleet implies. Run in document order: the exclusion the
    fifth block adds (CP-2 port 1, from 2 h ago to 2 h from now) is in force for the report blocks after it."""
    await migrate(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        await apply_events(conn, fleet(now))
        results = []
        for block in report_blocks():
            results.append(await conn.fetch(block))
            assert results[-1], f"no rows from:\n{block}"
        history, faults, connected, offline, added, uptime, below, outages, by_cause = results

        assert [(r["status"], r["error_code"]) for r in history] == [("FAULTED", "OTHER_ERROR"), ("AVAILABLE", None)]
        assert {r["source_action"] for r in history} == {"StatusNotification"}
        assert [tuple(r) for r in faults] == [("GROUND_FAILURE", "E-17", 1, 1), ("OTHER_ERROR", "X-1", 1, 1)]
        assert [r["charge_point_id"] for r in connected] == ["CP-3", "CP-2", "CP-1"]
        assert connected[-1]["connected"] == timedelta(hours=24)
        assert [r["serial_number"] for r in offline] == ["CP-3", "CP-2"]
        assert isinstance(added[0]["id"], int)

        # 48 hours observed (from the fleet's first presence). CP-3: 180 minutes offline, (2,880 - 180) / 2,880
        # = 93.75 %; CP-2: 120 minutes offline and its last hour excluded (maintenance), so 95.833 %; CP-1 port 1:
        # 90 minutes faulted, 96.875 %.
        assert [(r["charge_point_id"], r["connector_id"]) for r in uptime] == [
            ("CP-3", 1), ("CP-2", 1), ("CP-1", 1), ("CP-1", 2)]
        figures = {(r["charge_point_id"], r["connector_id"]): r for r in uptime}
        assert figures[("CP-1", 1)]["outage_minutes"] == Decimal("90.00")
        assert figures[("CP-1", 1)]["uptime_percent"] == Decimal("96.875")
        assert figures[("CP-1", 2)]["uptime_percent"] == Decimal("100.000")
        cp2 = figures[("CP-2", 1)]
        assert cp2["outages"] == 2 and cp2["outage_minutes"] - cp2["excluded_minutes"] == Decimal(120)
        assert {(r["charge_point_id"], r["connector_id"]) for r in below} >= {("CP-3", 1)}

        assert [(r["charge_point_id"], r["cause"], r["end"] is None, r["error_code"]) for r in outages] == [
            ("CP-3", "OFFLINE", True, None), ("CP-2", "OFFLINE", False, None),
            ("CP-1", "FAULTED", False, "GROUND_FAILURE"), ("CP-2", "FAULTED", True, "OTHER_ERROR")]
        assert [(r["cause"], r["outages"]) for r in by_cause] == [("OFFLINE", 2), ("FAULTED", 2)]
    finally:
        await conn.close()
