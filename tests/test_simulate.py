"""The simulated gateway feed: reproducible, plausible, honest about its defects, and published exactly."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import replace
from datetime import datetime

import orjson
import pytest

from consumer.decode import decode
from consumer.tools.simulate import Feed, FeedConfig
from consumer.tools.simulate.cli import backlog_start
from consumer.tools.simulate.feed import STATUS_201, TRANSITIONS
from schemas.events import Rejection
from tests.kafka_utils import consume_all

ERRORS_16 = {"ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature", "InternalError",
             "LocalListConflict", "NoError", "OtherError", "OverCurrentFailure", "PowerMeterFailure",
             "PowerSwitchFailure", "ReaderFailure", "ResetFailure", "UnderVoltage", "OverVoltage", "WeakSignal"}
STATUSES_16 = {"Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV", "Finishing", "Reserved",
               "Unavailable", "Faulted"}
STATUSES_201 = {"Available", "Occupied", "Reserved", "Unavailable", "Faulted"}
BOOT_REASONS = {"ApplicationReset", "FirmwareUpdate", "LocalReset", "PowerUp", "RemoteReset", "ScheduledReset",
                "Triggered", "Unknown", "Watchdog"}
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
WHOLE_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _time(text) -> float:
    assert isinstance(text, str) and RFC3339.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _short_str(value, limit: int) -> bool:
    return isinstance(value, str) and len(value) <= limit


def _non_negative_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def contract_violation(key: bytes, value: bytes) -> str | None:
    """Why a record breaks the event contract, or None; the contract's fields checked one by one."""
    try:
        env = orjson.loads(value)
    except orjson.JSONDecodeError:
        return "not JSON (or not UTF-8)"
    if not isinstance(env, dict):
        return "envelope is not an object"
    if set(env) != {"event_id", "charge_point_id", "ocpp_version", "action", "received_at", "payload"}:
        return f"envelope fields {sorted(env)}"
    try:
        if uuid.UUID(env["event_id"]).version != 4 or str(uuid.UUID(env["event_id"])) != env["event_id"]:
            return "event_id is not a canonical uuid4"
    except (ValueError, AttributeError, TypeError):
        return "event_id is not a uuid"
    if env["charge_point_id"] != key.decode():
        return "key is not the charge point id"
    if env["ocpp_version"] not in ("1.6", "2.0.1"):
        return "ocpp_version"
    if not isinstance(env["received_at"], str) or not RFC3339.match(env["received_at"]):
        return "received_at"
    p, version, action = env["payload"], env["ocpp_version"], env["action"]
    if not isinstance(p, dict):
        return "payload is not an object"
    if action == "Heartbeat":
        return None if p == {} else "heartbeat payload"
    if action == "BootNotification" and version == "1.6":
        ok = (set(p) <= {"chargePointVendor", "chargePointModel", "firmwareVersion"}
              and _short_str(p.get("chargePointVendor"), 20) and _short_str(p.get("chargePointModel"), 20)
              and ("firmwareVersion" not in p or _short_str(p["firmwareVersion"], 50)))
        return None if ok else "1.6 boot payload"
    if action == "BootNotification":
        station = p.get("chargingStation")
        ok = (set(p) == {"reason", "chargingStation"} and p["reason"] in BOOT_REASONS and isinstance(station, dict)
              and set(station) <= {"model", "vendorName", "firmwareVersion"}
              and _short_str(station.get("model"), 20) and _short_str(station.get("vendorName"), 50)
              and ("firmwareVersion" not in station or _short_str(station["firmwareVersion"], 50)))
        return None if ok else "2.0.1 boot payload"
    if action == "StatusNotification" and version == "1.6":
        ok = (set(p) <= {"connectorId", "errorCode", "status", "timestamp"}
              and _non_negative_int(p.get("connectorId")) and p.get("errorCode") in ERRORS_16
              and p.get("status") in STATUSES_16 and ("timestamp" not in p or RFC3339.match(str(p["timestamp"]))))
        return None if ok else "1.6 status payload"
    if action == "StatusNotification":
        ok = (set(p) == {"timestamp", "connectorStatus", "evseId", "connectorId"}
              and RFC3339.match(str(p["timestamp"])) and p["connectorStatus"] in STATUSES_201
              and _non_negative_int(p["evseId"]) and _non_negative_int(p["connectorId"]))
        return None if ok else "2.0.1 status payload"
    return f"unexpected action {action}"


def _take(feed: Feed, n: int) -> list[tuple[bytes, bytes]]:
    records = iter(feed)
    return [next(records) for _ in range(n)]


def test_feed_is_deterministic_per_seed():
    """One seed gives byte-identical records; another seed gives a different feed."""
    config = FeedConfig(charge_points=50, duplicates=0.05, out_of_order=0.05, wrong_clocks=0.1, invalid=0.05, seed=7)
    first, second = _take(Feed(config), 3000), _take(Feed(config), 3000)
    assert first == second
    other = _take(Feed(FeedConfig(**{**config.__dict__, "seed": 8})), 3000)
    assert other != first


def test_session_cycle_is_plausible():
    """Each charger boots, announces every connector, heartbeats on time, and walks the session cycle."""
    config = FeedConfig(charge_points=40, connectors=3, ocpp201_fraction=0.5, heartbeat_interval=30, seed=3)
    feed = Feed(config)
    per_connector: dict[tuple[str, int], list[str]] = defaultdict(list)
    per_charger: dict[str, list[dict]] = defaultdict(list)
    for key, value in _take(feed, 40_000):
        env = orjson.loads(value)
        per_charger[env["charge_point_id"]].append(env)
        if env["action"] == "StatusNotification":
            p = env["payload"]
            connector = p.get("evseId", p["connectorId"])
            per_connector[(env["charge_point_id"], connector)].append(p.get("status") or p["connectorStatus"])
            if env["ocpp_version"] == "1.6":
                assert (p["errorCode"] != "NoError") == (p["status"] == "Faulted")

    allowed_16 = {(a, b) for a, nexts in TRANSITIONS.items() for b in nexts}
    allowed_201 = {(STATUS_201[a], STATUS_201[b]) for a, b in allowed_16 if STATUS_201[a] != STATUS_201[b]}
    versions = {cp: events[0]["ocpp_version"] for cp, events in per_charger.items()}
    for (cp, connector), statuses in per_connector.items():
        assert statuses[0] == "Available"  # the announcement after boot
        allowed = allowed_16 if versions[cp] == "1.6" else allowed_201
        assert set(zip(statuses, statuses[1:])) <= allowed, (cp, connector, statuses)
    assert {connector for _, connector in per_connector} == {0, 1, 2, 3}

    for cp, events in per_charger.items():
        assert events[0]["action"] == "BootNotification"
        assert [e["action"] for e in events].count("BootNotification") == 1
        assert {e["ocpp_version"] for e in events} == {versions[cp]}  # a charger speaks one version
        beats = [_time(e["received_at"]) for e in events if e["action"] == "Heartbeat"]
        assert beats and all(abs(b - a - 30) < 0.01 for a, b in zip(beats, beats[1:]))

    # The whole session cycle happens, on 1.6 connectors, with simulated time advancing per event.
    cycle = ("Available", "Preparing", "Charging", "SuspendedEV", "Finishing", "Available")
    sessions = sum(
        1 for (cp, _), s in per_connector.items() if versions[cp] == "1.6"
        for i in range(len(s) - 5) if tuple(s[i:i + 6]) == cycle
    )
    assert sessions >= 5
    assert feed.now - config.start > 3600
    assert set(versions.values()) == {"1.6", "2.0.1"}


def test_fractions_are_roughly_honoured():
    """Duplicates, late deliveries, wrong clocks, invalid records and the 2.0.1 share come out as configured."""
    config = FeedConfig(charge_points=300, ocpp201_fraction=0.4, duplicates=0.05, out_of_order=0.03,
                        wrong_clocks=0.2, invalid=0.02, seed=11)
    feed = Feed(config)
    records = _take(feed, 60_000)
    n = len(records)
    assert sum(feed.counts.values()) == n

    invalid = [(k, v) for k, v in records if contract_violation(k, v)]
    valid = [orjson.loads(v) for k, v in records if not contract_violation(k, v)]
    assert len(invalid) == feed.counts["invalid"]
    assert feed.counts["invalid"] / n == pytest.approx(0.02, rel=0.15)
    assert set(feed.invalid_kinds) == {"not_json", "not_utf8", "bad_enum", "missing_field", "bad_uuid",
                                       "bad_version"}

    copies = len(valid) - len({e["event_id"] for e in valid})
    assert copies == feed.counts["duplicate"]
    assert copies / len(valid) == pytest.approx(0.05 / 1.05, rel=0.15)

    # A late record arrives after records the gateway received later than it.
    latest, behind = 0.0, 0
    for e in valid:
        t = _time(e["received_at"])
        behind += t < latest
        latest = max(latest, t)
    assert feed.counts["late"] / n == pytest.approx(0.03, rel=0.15)
    assert behind >= feed.counts["late"]

    versions = {e["charge_point_id"]: e["ocpp_version"] for e in valid}
    assert sum(v == "2.0.1" for v in versions.values()) / len(versions) == pytest.approx(0.4, abs=0.08)
    stamped = [e for e in valid if "timestamp" in e["payload"]]
    skewed = {e["charge_point_id"] for e in stamped if _time(e["payload"]["timestamp"]) - _time(e["received_at"]) > 300}
    assert len(skewed) / len({e["charge_point_id"] for e in stamped}) == pytest.approx(0.2, abs=0.06)
    for e in stamped:  # a wrong clock is hours ahead, a right one a little behind the gateway
        ahead = _time(e["payload"]["timestamp"]) - _time(e["received_at"])
        assert 3599 <= ahead <= 12 * 3600 + 1 if e["charge_point_id"] in skewed else -0.6 <= ahead <= 0.01


def test_valid_records_match_the_contract():
    """Every record the feed does not count as invalid meets the contract, and every invalid one breaks it."""
    feed = Feed(FeedConfig(charge_points=200, connectors=2, ocpp201_fraction=0.5, duplicates=0.02,
                           out_of_order=0.02, wrong_clocks=0.1, invalid=0.05, seed=5))
    records = _take(feed, 20_000)
    verdicts = [contract_violation(k, v) for k, v in records]
    assert sum(v is not None for v in verdicts) == feed.counts["invalid"] > 0
    actions = {(orjson.loads(v)["ocpp_version"], orjson.loads(v)["action"])
               for (k, v), verdict in zip(records, verdicts) if verdict is None}
    assert actions == {(version, action) for version in ("1.6", "2.0.1")
                       for action in ("BootNotification", "StatusNotification", "Heartbeat")}
    # The product's own decoder agrees, record by record.
    for (key, value), verdict in zip(records, verdicts):
        result = decode(value, key)
        assert isinstance(result, Rejection) == (verdict is not None), (value, verdict, result)


def _stamps(env: dict) -> list[str]:
    """Every timestamp a record carries: received_at, and the payload's if it has one."""
    return [env["received_at"], *([env["payload"]["timestamp"]] if "timestamp" in env["payload"] else [])]


def test_whole_second_timestamps_change_nothing_else():
    """With precision "s" every timestamp is whole seconds, truncated; the records are otherwise the same feed."""
    config = FeedConfig(charge_points=100, ocpp201_fraction=0.5, duplicates=0.05, out_of_order=0.05,
                        wrong_clocks=0.2, seed=9)
    precise, whole = _take(Feed(config), 5000), _take(Feed(replace(config, timestamp_precision="s")), 5000)
    assert any(not t.endswith(".000Z") for _, v in precise for t in _stamps(orjson.loads(v)))
    stamped = 0
    for (key_ms, value_ms), (key_s, value_s) in zip(precise, whole):
        assert key_ms == key_s and contract_violation(key_s, value_s) is None
        env_ms, env_s = orjson.loads(value_ms), orjson.loads(value_s)
        assert all(WHOLE_SECONDS.match(t) for t in _stamps(env_s)), env_s
        env_ms["received_at"] = env_ms["received_at"][:19] + "Z"
        if "timestamp" in env_ms["payload"]:
            env_ms["payload"]["timestamp"] = env_ms["payload"]["timestamp"][:19] + "Z"
            stamped += 1
        assert env_s == env_ms
    assert stamped > 1000
    with pytest.raises(ValueError):
        FeedConfig(timestamp_precision="us")


def test_backlog_start_ends_the_simulated_time_now():
    """A backlog placed by `backlog_start` covers its records' simulated time and ends within a second of now."""
    config = FeedConfig(charge_points=200, seed=6)
    before = time.time()
    start, count = backlog_start(config, count=5000, seconds=None)
    after = time.time()
    assert count == 5000 and start == int(start)
    feed = Feed(replace(config, start=start))
    records = _take(feed, count)
    assert before - 1 <= feed.now <= after
    assert max(_time(orjson.loads(v)["received_at"]) for _, v in records) <= feed.now
    assert feed.now - start > 600  # the backlog really lies in the past

    # Given only a duration, the dry pass runs for that long and caps what may be sent.
    start, count = backlog_start(config, count=None, seconds=0.3)
    assert count > 1000
    feed = Feed(replace(config, start=start))
    _take(feed, count)
    assert time.time() - 2 <= feed.now <= time.time()


async def _run_simulate(*args: str) -> tuple[int, str, str]:
    """Run `python -m consumer simulate …` as an operator would: (exit status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "consumer", "simulate", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode, out.decode(), err.decode()


async def test_cli_publishes_exactly_the_counted_records(kafka_bootstrap, topic_factory):
    """`simulate --count 2000` puts exactly 2000 records on the topic, each keyed by its charge point id."""
    topic = await topic_factory("sim", partitions=3)
    status, out, err = await _run_simulate("--count", "2000", "--topic", topic, "--bootstrap", kafka_bootstrap,
                                           "--charge-points", "30", "--duplicates", "0.05", "--out-of-order",
                                           "0.05", "--invalid", "0.05", "--seed", "4")
    assert status == 0, err
    summary = dict(re.findall(r"(\w+)=(\d+)", out))
    assert f"published 2000 records to {topic}" in out
    assert sum(int(v) for v in summary.values()) == 2000

    records = await consume_all(kafka_bootstrap, topic, 2000)
    assert len(records) == 2000
    partition_of: dict[bytes, int] = {}
    valid = 0
    for r in records:
        assert re.fullmatch(rb"CP-\d{5}", r.key)
        assert partition_of.setdefault(r.key, r.partition) == r.partition  # one charger, one partition
        if contract_violation(r.key, r.value) is None:
            valid += 1
    assert len({r.partition for r in records}) > 1
    assert valid == 2000 - int(summary["invalid"])
    # The same seed published the feed the generator yields, in its order within each partition.
    expected = _take(Feed(FeedConfig(charge_points=30, duplicates=0.05, out_of_order=0.05, invalid=0.05, seed=4)), 2000)
    for partition in {r.partition for r in records}:
        assert [r.key for r in records if r.partition == partition] == [
            k for k, _ in expected if partition_of[k] == partition
        ]


async def test_cli_live_mode_stamps_the_send_time(kafka_bootstrap, topic_factory):
    """At a fixed rate, records arrive at about that rate and received_at is the wall-clock send time."""
    topic = await topic_factory("sim")
    started = time.time()
    status, out, err = await _run_simulate("--rate", "400", "--duration", "2", "--topic", topic,
                                           "--bootstrap", kafka_bootstrap, "--charge-points", "50", "--quiet")
    assert status == 0, err
    sent = int(re.search(r"published (\d+) records", out)[1])
    assert 700 <= sent <= 801
    records = await consume_all(kafka_bootstrap, topic, sent)
    assert len(records) == sent
    for r in records:
        received = _time(orjson.loads(r.value)["received_at"])
        assert started <= received <= time.time()
        assert abs(r.timestamp / 1000 - received) < 1.0  # stamped when handed to Kafka, not in simulated time


async def test_cli_whole_second_timestamps(kafka_bootstrap, topic_factory):
    """`--timestamp-precision s`: every timestamp on the topic, received_at and the payload's, is whole seconds."""
    topic = await topic_factory("sim")
    status, out, err = await _run_simulate("--count", "1000", "--topic", topic, "--bootstrap", kafka_bootstrap,
                                           "--charge-points", "50", "--timestamp-precision", "s", "--quiet")
    assert status == 0, err
    records = await consume_all(kafka_bootstrap, topic, 1000)
    assert len(records) == 1000
    stamps = [t for r in records for t in _stamps(orjson.loads(r.value))]
    assert len(stamps) > len(records) and all(WHOLE_SECONDS.match(t) for t in stamps)  # payload stamps too


async def test_cli_backlog_ends_when_it_is_published(kafka_bootstrap, topic_factory):
    """Without --start a backlog lies in the past: no received_at is later than its record's Kafka timestamp,
    and the newest is about the moment of publishing."""
    topic = await topic_factory("sim", partitions=2)
    started = time.time()
    status, out, err = await _run_simulate("--count", "3000", "--topic", topic, "--bootstrap", kafka_bootstrap,
                                           "--charge-points", "200", "--out-of-order", "0.02", "--quiet")
    assert status == 0, err
    records = await consume_all(kafka_bootstrap, topic, 3000)
    assert len(records) == 3000
    received = []
    for r in records:
        at = _time(orjson.loads(r.value)["received_at"])
        assert round(at * 1000) <= r.timestamp, (at, r.timestamp)  # never after Kafka stamped the record
        received.append(at)
    assert started - 10 <= max(received) <= time.time()
    assert min(received) < started - 300  # ~500 simulated seconds of fleet, all before publishing


def test_ocpp16_chargers_can_stamp_whole_seconds_while_the_gateway_stamps_ms():
    """As the benchmark's feed does: 1.6 chargers' own timestamps are whole seconds, received_at keeps its ms."""
    config = FeedConfig(charge_points=20, connectors=2, seed=3, ocpp16_charger_precision="s")
    records = [orjson.loads(value) for _, value in itertools.islice(Feed(config), 400)]
    stamped16 = [r for r in records if r["ocpp_version"] == "1.6" and "timestamp" in r["payload"]]
    stamped201 = [r for r in records if r["ocpp_version"] == "2.0.1" and "timestamp" in r["payload"]]
    assert stamped16 and stamped201
    assert all("." not in r["payload"]["timestamp"] for r in stamped16)
    assert any("." in r["received_at"] for r in stamped16)
    assert any("." in r["payload"]["timestamp"] for r in stamped201)
