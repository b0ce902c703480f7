"""A test for every promise the README makes about the loop, each asserting on rows, offsets, dead letters or
metric values, never only on a log line. `make mutants` breaks each promise on purpose and checks that a test
here (or elsewhere in the suite) notices."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import MessageSizeTooLargeError

from consumer import probes
from consumer.worker import PendingMigrations, Worker
from tests.feed import envelope, valid_records
from tests.kafka_utils import committed_offsets, consume_all, end_offsets, produce, wait_drained, wait_until
from tests.service import TableLock, expected_from, running, tables
from consumer.tools.relay import TcpProxy, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_the_clock_skew_setting_reaches_decoding_and_its_metrics_count(kafka_bootstrap, topic_factory, db,
                                                                                 make_settings):
    """A charger 100 s ahead is believed under the default 300 s window but corrected under a 10 s one: the
    worker passes its setting to decoding, and both the correction and the freshness are counted."""
    topic, dlq = await topic_factory("events"), await topic_factory("dlq")
    received = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
    ahead = envelope("CP-K", "1.6", "StatusNotification", received,
                     {"connectorId": 1, "status": "Charging", "errorCode": "NoError",
                      "timestamp": (received + timedelta(seconds=100)).isoformat().replace("+00:00", "Z")})
    await produce(kafka_bootstrap, topic, [(b"CP-K", ahead)])
    settings = make_settings(db, topic, dlq, max_clock_skew_seconds=10)
    worker = Worker(settings)
    async with running(worker):
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
    conn = await asyncpg.connect(db)
    try:
        assert await conn.fetchval("SELECT last_updated FROM connector") == received
    finally:
        await conn.close()
    sample = worker.metrics.registry.get_sample_value
    assert sample("ocpp_clock_skew_corrections_total") == 1
    assert sample("ocpp_time_corrections_total", {"kind": "charger_clock_ahead"}) == 1
    assert sample("ocpp_event_commit_latency_seconds_count") == 1


async def test_offsets_wait_for_the_dead_letters_acknowledgement(kafka_bootstrap, topic_factory, db, make_settings):
    """A dead-letter topic that refuses even a placeholder (a 64-byte record limit: a misconfiguration) stops
    the worker, and no offset has moved past the invalid record: offsets follow the broker's acknowledgement."""
    topic = await topic_factory("events")
    dlq = await topic_factory("dlq", configs={"max.message.bytes": "64"})
    await produce(kafka_bootstrap, topic, valid_records(20, seed=40) + [(b"CP-BAD", b"{")])
    settings = make_settings(db, topic, dlq)
    worker = Worker(settings)
    with pytest.raises(MessageSizeTooLargeError):
        await asyncio.wait_for(worker.run(), timeout=60)
    assert await committed_offsets(kafka_bootstrap, settings.kafka_group_id, topic) in ({}, {0: 0})


async def _retried(worker: Worker, operation: str) -> bool:
    return (worker.metrics.registry.get_sample_value("ocpp_retries_total", {"operation": operation}) or 0) > 0


async def test_dead_letters_name_their_source_partition(kafka_bootstrap, topic_factory, db, make_settings):
    """Invalid records on several partitions each say which partition and offset they came from."""
    topic, dlq = await topic_factory("events", partitions=3), await topic_factory("dlq")
    bad = [(f"CP-{i}".encode(), b"{") for i in range(12)]
    await produce(kafka_bootstrap, topic, bad)
    settings = make_settings(db, topic, dlq)
    async with running(Worker(settings)):
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
    letters = await consume_all(kafka_bootstrap, dlq, expected=len(bad))
    sources = {(dict(r.headers)["ocpp.source.partition"], dict(r.headers)["ocpp.source.offset"]) for r in letters}
    ends = await end_offsets(kafka_bootstrap, topic)
    assert len({p for p, _ in sources}) > 1
    assert sources == {(str(p).encode(), str(o).encode()) for p, end in ends.items() for o in range(end)}


async def test_pending_migrations_stop_start_up_before_joining_the_group(kafka_bootstrap, topic_factory,
                                                                         database_url, make_settings):
    """On a database that was never migrated the worker stops before it joins the group: the group never
    exists, so no partition moved away from a healthy replica."""
    topic = await topic_factory("events")
    await produce(kafka_bootstrap, topic, valid_records(5, seed=41))
    settings = make_settings(database_url, topic, "unused-dlq")
    with pytest.raises(PendingMigrations):
        await asyncio.wait_for(Worker(settings).run(), timeout=30)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        [group] = await admin.describe_consumer_groups([settings.kafka_group_id])
    finally:
        await admin.close()
    assert group.groups[0][2] == "Dead"  # (error, group id, state, ...): never created
    assert await committed_offsets(kafka_bootstrap, settings.kafka_group_id, topic) == {}


async def test_sigterm_during_a_batch_finishes_and_commits_it(kafka_bootstrap, topic_factory, db, make_settings):
    """A stop request while a batch waits on a lock: when the lock goes (within the shutdown timeout) the batch is
    written and committed, not cancelled."""
    topic, dlq = await topic_factory("events"), await topic_factory("dlq")
    records = valid_records(200, seed=42)
    await produce(kafka_bootstrap, topic, records)
    settings = make_settings(db, topic, dlq, shutdown_timeout_seconds=30)
    worker = Worker(settings)
    async with TableLock(db) as lock:
        task = asyncio.create_task(worker.run())
        await wait_until(lambda: _in_flight(worker), timeout=30, what="a batch in flight")
        worker.stop()
        await asyncio.sleep(1)
        await lock.release()
        await asyncio.wait_for(task, timeout=30)
    assert await committed_offsets(kafka_bootstrap, settings.kafka_group_id, topic) == await end_offsets(
        kafka_bootstrap, topic)
    assert await tables(db) == expected_from(records)


async def _in_flight(worker: Worker) -> bool:
    return not worker._idle.is_set()


async def test_healthz_stays_up_while_start_up_waits_and_sigterm_ends_it_at_once(make_settings, monkeypatch):
    """Start-up waiting for a database that does not answer is alive, not stuck (a liveness probe must not
    restart it); a stop request ends it within a second, even mid-connect."""
    monkeypatch.setattr(probes, "STUCK_AFTER_SECONDS", 1.0)
    relay = TcpProxy("127.0.0.1", free_port())  # forwards to a closed port: every connect is refused
    await relay.start()
    try:
        settings = make_settings(f"postgresql://ocpp:ocpp@127.0.0.1:{relay.port}/ocpp", "t", "d",
                                 startup_timeout_seconds=60)
        worker = Worker(settings)
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(3)
        assert (await worker.probes.healthy())[0]
        assert not (await worker.probes.ready())[0]
        relay.freeze()  # now a connect attempt hangs instead of failing
        await asyncio.sleep(1.5)
        stopped = time.monotonic()
        worker.stop()
        await asyncio.wait_for(task, timeout=5)
        assert time.monotonic() - stopped < 1
    finally:
        relay.thaw()
        await relay.cut()


async def test_an_outage_longer_than_the_poll_interval_keeps_the_partitions(kafka_bootstrap, topic_factory, db,
                                                                            make_settings):
    """The database is held by a lock for three times max.poll.interval.ms: the worker keeps polling, paused
    once the next batch is full, so it stays in the group (its partitions are never revoked) and finishes the
    batch afterwards."""
    topic, dlq = await topic_factory("events"), await topic_factory("dlq")
    records = valid_records(100, seed=43)
    await produce(kafka_bootstrap, topic, records)
    settings = make_settings(db, topic, dlq, kafka_max_poll_interval_ms=2000, batch_max_records=100)
    worker = Worker(settings)
    async with TableLock(db) as lock, running(worker):
        await wait_until(lambda: _in_flight(worker), timeout=30, what="a batch in flight")
        more = valid_records(100, seed=44)  # fetched as the next batch, which then waits for the first
        await produce(kafka_bootstrap, topic, more)
        await asyncio.sleep(6)
        await lock.release()
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
    records += more
    assert worker.metrics.registry.get_sample_value("ocpp_partition_revocations_total") == 0
    assert worker.metrics.registry.get_sample_value("ocpp_offset_commit_failures_total") == 0
    assert await tables(db) == expected_from(records)
