"""Every charger's ports, end to end: the simulator's OCPP 2.1 chargers, two-connector EVSEs and NotifyEvent
reporters, plus chargers that only send untracked actions, through the real broker into the real database."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import asyncpg
import orjson
import pytest

from consumer.decode import decode
from consumer.tools.simulate.feed import Feed, FeedConfig
from consumer.worker import Worker
from schemas.events import Ignored, NotifyEvent, Rejection
from tests import oracle
from tests.feed import envelope
from tests.kafka_utils import produce, wait_drained
from tests.service import running

PORTS = FeedConfig(charge_points=60, connectors=2, ocpp201_fraction=0.5, ocpp21_fraction=0.3,
                   two_connector_fraction=0.5, notify_event_fraction=0.4, duplicates=0.03, out_of_order=0.03,
                   seed=17, start=1_795_996_800.0)


def take(config: FeedConfig, n: int) -> tuple[Feed, list[tuple[bytes, bytes]]]:
    feed = Feed(config)
    records = iter(feed)
    return feed, [next(records) for _ in range(n)]


def test_the_default_feed_has_none_of_them():
    """Without the new fractions the feed is what it was: 1.6 and 2.0.1, one connector per EVSE, no NotifyEvent."""
    _, records = take(FeedConfig(charge_points=40, ocpp201_fraction=0.5, seed=3), 4000)
    envelopes = [orjson.loads(v) for _, v in records]
    assert {e["ocpp_version"] for e in envelopes} == {"1.6", "2.0.1"}
    assert {e["action"] for e in envelopes} == {"BootNotification", "StatusNotification", "Heartbeat"}
    assert {e["payload"]["connectorId"] for e in envelopes
            if e["ocpp_version"] == "2.0.1" and e["action"] == "StatusNotification"} == {0, 1}


def test_the_fractions_and_the_shapes():
    """2.1 chargers, two-connector EVSEs (the plugged connector Occupied and its sibling Unavailable, reported at
    one instant) and NotifyEvent reporters come out as configured, and every record is one the service accepts."""
    feed, records = take(PORTS, 20_000)
    envelopes = [orjson.loads(v) for _, v in records]
    versions = {e["charge_point_id"]: e["ocpp_version"] for e in envelopes}
    assert sum(v == "2.1" for v in versions.values()) / len(versions) == pytest.approx(0.3, abs=0.15)
    assert all(not isinstance(decode(v, k), Rejection) for k, v in records)
    notify = [e for e in envelopes if e["action"] == "NotifyEvent"]
    assert notify and feed.counts["notify"] > 0
    reporters = {e["charge_point_id"] for e in notify}
    assert not any(e["action"] == "StatusNotification" and e["charge_point_id"] in reporters for e in envelopes)
    assert {versions[cp] for cp in reporters} == {"2.0.1", "2.1"}

    # A two-connector EVSE reports both connectors for one instant; in use, one is Occupied, the other Unavailable.
    instants: dict[tuple, dict[int, str]] = {}
    for e in envelopes:
        p = e["payload"]
        if e["action"] == "StatusNotification" and e["ocpp_version"] != "1.6" and p["evseId"]:
            instants.setdefault((e["charge_point_id"], p["evseId"], p["timestamp"]), {})[p["connectorId"]] = \
                p["connectorStatus"]
        elif e["action"] == "NotifyEvent":
            for item in e["payload"]["eventData"]:
                if item["component"]["name"] == "Connector":
                    evse = item["component"]["evse"]
                    instants.setdefault((e["charge_point_id"], evse["id"], item["timestamp"]), {})[
                        evse["connectorId"]] = item["actualValue"]
    pairs = [statuses for statuses in instants.values() if len(statuses) == 2]
    assert len(pairs) > 50
    in_use = [statuses for statuses in pairs if "Occupied" in statuses.values()]
    assert in_use and all(sorted(s.values()) == ["Occupied", "Unavailable"] for s in in_use)
    assert {next(n for n, v in s.items() if v == "Occupied") for s in in_use} == {1, 2}
    assert all(len(set(s.values())) == 1 for s in pairs if "Occupied" not in s.values())
    # NotifyEvent chargers now and then report something else, which the service reads and ignores.
    decoded = [decode(orjson.dumps(e), None) for e in notify]
    assert sum(d.ignored_items for d in decoded if isinstance(d, NotifyEvent)) > 0


def test_2_1_chargers_boot_with_their_details():
    """A 2.1 station says its serial number and SIM; the boot event carries them."""
    _, records = take(PORTS, 3000)
    boots = [decode(v, k) for k, v in records if b'"2.1"' in v and b"BootNotification" in v]
    assert boots and all(b.hardware_serial and b.iccid and b.imsi and b.boot_reason == "POWER_UP" for b in boots)


@pytest.mark.kafka
@pytest.mark.postgres
async def test_the_ports_of_a_mixed_fleet_end_as_the_oracle_says(kafka_bootstrap, topic_factory, db, make_settings):
    """The simulated fleet (with duplicates and late deliveries) and two chargers that only send untracked actions,
    consumed by the service: every table equals the oracle's, no port in use shows UNAVAILABLE, the untracked
    chargers have their rows, and the counters say ignored and written apart."""
    _, simulated = take(PORTS, 12_000)
    at = datetime(2026, 11, 30, 1, tzinfo=timezone.utc)
    untracked = [(b"CP-METER", envelope("CP-METER", "1.6", "MeterValues", at, {"connectorId": 1})),
                 (b"CP-METER", envelope("CP-METER", "1.6", "DataTransfer", at.replace(minute=5), {})),
                 (b"CP-OLD", envelope("CP-OLD", "1.6", "NotifyEvent", at, {"eventData": []}))]  # untracked in 1.6
    records = simulated[:6000] + untracked + simulated[6000:]
    topic = await topic_factory("events", partitions=3)
    dlq = await topic_factory("dlq")
    await produce(kafka_bootstrap, topic, records)
    settings = make_settings(db, topic, dlq, batch_max_records=700)
    worker = Worker(settings)
    async with running(worker):
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)

    events = [decode(value, key) for key, value in records]
    assert not any(isinstance(e, Rejection) for e in events)
    conn = await asyncpg.connect(db)
    try:
        assert await oracle.fetch_state(conn) == oracle.expected_state(events)
        cps = {r["serial_number"]: r for r in await conn.fetch("SELECT * FROM charge_point")}
        assert cps["CP-METER"]["last_updated"] == at.replace(minute=5) and cps["CP-METER"]["model"] is None
        assert "CP-OLD" in cps
        # The symptom: a port with a connector in use never reads as an outage.
        assert await conn.fetchval(
            "SELECT count(*) FROM connector AS c WHERE c.status <> 'OCCUPIED' AND EXISTS (SELECT 1 FROM "
            "evse_connector AS ec WHERE ec.charge_point_id = c.charge_point_id AND ec.evse_id = c.connector_id "
            "AND ec.status = 'OCCUPIED')") == 0
        assert await conn.fetchval("SELECT count(*) FROM evse_connector GROUP BY charge_point_id, evse_id "
                                   "ORDER BY 1 DESC LIMIT 1") == 2
        assert {r["status_family"] for r in await conn.fetch("SELECT status_family FROM connector")} == {"1.6", "2.x"}
    finally:
        await conn.close()

    ignored = [e for e in events if isinstance(e, Ignored)]
    assert worker.totals.ignored == len(ignored) == 3
    assert worker.totals.written == len(records) - len(ignored)
    metrics = worker.metrics.render().decode()
    assert 'ocpp_events_total{action="other",outcome="ignored"} 2.0' in metrics
    assert 'ocpp_events_total{action="NotifyEvent",outcome="ignored"} 1.0' in metrics
    items = sum(e.ignored_items for e in events if isinstance(e, NotifyEvent))
    assert items > 0 and f"ocpp_notify_event_items_ignored_total {float(items)}" in metrics
    by_action = Counter(e.action for e in events if not isinstance(e, Ignored))
    assert f'ocpp_events_total{{action="NotifyEvent",outcome="written"}} {float(by_action["NotifyEvent"])}' in metrics
