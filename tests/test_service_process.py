"""`ocpp-consumer run` as operators run it: real processes, killed, stopped, scaled out, misconfigured."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.feed import valid_records
from tests.kafka_utils import committed_offsets, end_offsets, produce, wait_drained, wait_until
from tests.service import expected_from, tables

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


async def test_sigkill_mid_batch_then_restart(kafka_bootstrap, topic_factory, db, replicas):
    """A replica killed with SIGKILL part-way through a backlog loses nothing: its restart ends in the oracle."""
    topic = await topic_factory("events", partitions=2)
    group = f"g-{uuid.uuid4().hex[:8]}"
    records = valid_records(20_000, seed=11, charge_points=40)
    await produce(kafka_bootstrap, topic, records)
    total = sum((await end_offsets(kafka_bootstrap, topic)).values())
    first = replicas(db, topic, group, OCPP_BATCH_MAX_RECORDS="200")

    async def part_way() -> bool:
        done = sum((await committed_offsets(kafka_bootstrap, group, topic)).values())
        return 0 < done < total

    await wait_until(part_way, timeout=60, interval=0.05, what="some but not all offsets committed")
    first.signal(signal.SIGKILL)
    assert await first.wait(10) == -signal.SIGKILL
    assert sum((await committed_offsets(kafka_bootstrap, group, topic)).values()) < total

    second = replicas(db, topic, group)
    await wait_drained(kafka_bootstrap, group, topic, timeout=120)
    second.signal(signal.SIGTERM)
    assert await second.wait(30) == 0
    assert await tables(db) == expected_from(records)


@pytest.mark.parametrize("count", [2, 3])
async def test_replicas_with_one_killed_and_restarted(count, kafka_bootstrap, topic_factory, db, replicas):
    """N replicas share a 6-partition topic; one is killed mid-stream and restarted; the tables equal the oracle."""
    topic = await topic_factory("events", partitions=6)
    group = f"g-{uuid.uuid4().hex[:8]}"
    first_wave = valid_records(8000, seed=20 + count, charge_points=60)
    second_wave = valid_records(8000, seed=30 + count, charge_points=60)
    running = [replicas(db, topic, group, OCPP_BATCH_MAX_RECORDS="300") for _ in range(count)]
    await produce(kafka_bootstrap, topic, first_wave)

    async def progressing() -> bool:
        return sum((await committed_offsets(kafka_bootstrap, group, topic)).values()) > 0

    await wait_until(progressing, timeout=60, what="the group to commit")
    running[0].signal(signal.SIGKILL)
    await running[0].wait(10)
    await produce(kafka_bootstrap, topic, second_wave)
    running[0] = replicas(db, topic, group, OCPP_BATCH_MAX_RECORDS="300")
    await wait_drained(kafka_bootstrap, group, topic, timeout=180)
    for replica in running:
        replica.signal(signal.SIGTERM)
    assert [await replica.wait(40) for replica in running] == [0] * count
    assert await tables(db) == expected_from(first_wave + second_wave)


async def test_sigterm_finishes_commits_and_summarises(kafka_bootstrap, topic_factory, db, replicas):
    """SIGTERM mid-backlog: exit 0 within the timeout, what was written is committed, one summary line."""
    topic = await topic_factory("events")
    group = f"g-{uuid.uuid4().hex[:8]}"
    records = valid_records(20_000, seed=12, charge_points=40)
    await produce(kafka_bootstrap, topic, records)
    replica = replicas(db, topic, group, OCPP_BATCH_MAX_RECORDS="200", OCPP_SHUTDOWN_TIMEOUT_SECONDS="10")

    async def started() -> bool:
        return sum((await committed_offsets(kafka_bootstrap, group, topic)).values()) > 0

    await wait_until(started, timeout=60, interval=0.05, what="the first commit")
    sent = time.monotonic()
    replica.signal(signal.SIGTERM)
    assert await replica.wait(15) == 0
    assert time.monotonic() - sent < 10
    committed = await committed_offsets(kafka_bootstrap, group, topic)
    summary = [line for line in replica.log_lines() if line["msg"] == "stopped"]
    assert len(summary) == 1
    # Every record it counted was committed, and nothing it did not process was.
    assert summary[0]["records"] == committed[0]
    assert summary[0]["written"] == committed[0]
    assert summary[0]["dead_lettered"] == 0


async def test_pending_migrations_refuse_start(kafka_bootstrap, topic_factory, database_url, replicas):
    """Against an unmigrated database `run` exits 2 with a message that names `ocpp-consumer migrate`."""
    topic = await topic_factory("events")
    replica = replicas(database_url, topic, "g-unused")
    assert await replica.wait(60) == 2
    errors = [line for line in replica.log_lines() if line["level"] == "error"]
    assert any("ocpp-consumer migrate" in line["msg"] for line in errors)


def test_bad_configuration_is_one_line_naming_the_variable():
    """A bad setting exits 2 with one line per bad variable, named as the operator sets it."""
    env = {**os.environ, "OCPP_BATCH_MAX_RECORDS": "lots", "OCPP_KAFKA_SECURITY_PROTOCOL": "TLS"}
    result = subprocess.run([sys.executable, "-m", "consumer", "run"], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert any(line.startswith("ocpp-consumer: configuration error: OCPP_BATCH_MAX_RECORDS:") for line in lines)
    assert any(line.startswith("ocpp-consumer: configuration error: OCPP_KAFKA_SECURITY_PROTOCOL:") for line in lines)
