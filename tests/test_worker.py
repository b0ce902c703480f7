"""The consumer service in process, against the real broker and database: tables, dead letters, offsets,
an outage of the database, metrics and probes."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from consumer.decode import decode
from consumer.worker import Worker
from schemas.events import Heartbeat, NotifyEvent, StatusNotification
from tests.feed import invalid_records, valid_records
from tests.kafka_utils import committed_offsets, consume_all, end_offsets, produce, wait_drained, wait_until
from tests.service import TableLock, expected_from, running, tables
from consumer.tools.relay import TcpProxy, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_mixed_stream_matches_oracle(kafka_bootstrap, topic_factory, db, make_settings):
    """A mixed 1.6 / 2.0.1 stream with duplicates ends in exactly the oracle's tables, and offsets reach the end."""
    topic = await topic_factory("events", partitions=3)
    dlq = await topic_factory("dlq")
    records = valid_records(3000, seed=1)
    await produce(kafka_bootstrap, topic, records)
    settings = make_settings(db, topic, dlq, batch_max_records=400)
    worker = Worker(settings)
    async with running(worker):
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
    assert await tables(db) == expected_from(records)
    assert worker.totals.records == len(records)
    assert worker.totals.written == len(records)
    assert worker.totals.dead_lettered == 0
    assert worker.totals.batches > 1


async def test_invalid_records_are_dead_lettered_exactly(kafka_bootstrap, topic_factory, db, make_settings):
    """Exactly the invalid records reach the DLQ, bytes and headers intact plus the reason; the rest is written."""
    topic = await topic_factory("events")
    dlq = await topic_factory("dlq")
    valid = valid_records(300, seed=2)
    invalid = invalid_records(seed=2)
    mixed = valid[:150] + [(k, v) for k, v, _ in invalid] + valid[150:]
    await produce(kafka_bootstrap, topic, mixed)
    settings = make_settings(db, topic, dlq, batch_max_records=50)
    worker = Worker(settings)
    async with running(worker):
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)

    dead = await consume_all(kafka_bootstrap, dlq, expected=len(invalid))
    assert len(dead) == len(invalid)
    source_offsets = {}
    for record, (key, value, kind) in zip(sorted(dead, key=lambda r: r.offset), invalid, strict=True):
        headers = dict(record.headers)
        assert (record.key, record.value) == (key, value)
        assert headers["ocpp.error.kind"].decode() == kind
        assert headers["ocpp.error.detail"]  # a reason, not an empty string
        assert headers["ocpp.source.topic"].decode() == topic
        assert headers["ocpp.source.partition"] == b"0"
        source_offsets[int(headers["ocpp.source.offset"])] = value
    assert source_offsets == {150 + i: v for i, (_, v, _) in enumerate(invalid)}
    assert await committed_offsets(kafka_bootstrap, settings.kafka_group_id, topic) == {0: len(mixed)}
    assert await tables(db) == expected_from(valid)
    assert worker.totals.dead_letter_kinds == {kind: n for kind, n in _count(k for _, _, k in invalid).items()}


def _count(items) -> dict:
    out: dict = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


async def test_too_large_record_is_dead_lettered_without_its_value(kafka_bootstrap, topic_factory, db, make_settings):
    """A record over the size limit cannot stop the stream: its dead letter carries the reason, the size and
    where it came from, but not the value; the records around it are written."""
    topic = await topic_factory("events")
    dlq = await topic_factory("dlq")
    valid = valid_records(100, seed=10)
    huge = b'{"padding": "' + b"x" * 5000 + b'"}'
    await produce(kafka_bootstrap, topic, valid[:50] + [(b"CP-HUGE", huge)] + valid[50:])
    settings = make_settings(db, topic, dlq, max_record_bytes=2048)
    worker = Worker(settings)
    async with running(worker):
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
    [letter] = await consume_all(kafka_bootstrap, dlq, expected=1)
    headers = dict(letter.headers)
    assert (letter.key, letter.value) == (b"CP-HUGE", None)
    assert headers["ocpp.error.kind"] == b"too_large"
    assert headers["ocpp.error.original_bytes"] == str(len(huge)).encode()
    assert headers["ocpp.source.offset"] == b"50"
    assert await tables(db) == expected_from(valid)


async def test_database_refusal_splits_the_batch(kafka_bootstrap, topic_factory, db, make_settings):
    """When PostgreSQL refuses some events as data, only those are dead-lettered (kind `database`); the rest land."""
    topic = await topic_factory("events")
    dlq = await topic_factory("dlq")
    conn = await asyncpg.connect(db)
    try:
        # A rule the database enforces and decoding does not know: as when a DBA adds a constraint.
        await conn.execute("ALTER TABLE connector ADD CONSTRAINT test_no_weak_signal CHECK (error_code <> 'WEAK_SIGNAL')")
    finally:
        await conn.close()
    records = valid_records(400, seed=3)
    await produce(kafka_bootstrap, topic, records)
    settings = make_settings(db, topic, dlq, batch_max_records=400)
    worker = Worker(settings)
    async with running(worker):
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)

    def weak_signal(value: bytes, key: bytes) -> bool:
        event = decode(value, key)
        return getattr(event, "error_code", None) == "WEAK_SIGNAL" and event.connector_id > 0

    # Coalescing writes only each connector's winning status, so a WeakSignal status overtaken inside its batch
    # never reaches PostgreSQL and is not refused. Which ones are refused depends on the batch boundaries; that
    # the refused ones, and only they, are missing from the tables does not.
    dead = await consume_all(kafka_bootstrap, dlq, expected=1)
    assert dead, "some WeakSignal connector status must have won its batch and been refused"
    assert all(weak_signal(r.value, r.key) for r in dead)
    assert {dict(r.headers)["ocpp.error.kind"] for r in dead} == {b"database"}
    assert all(b"test_no_weak_signal" in dict(r.headers)["ocpp.error.detail"] for r in dead)
    dead_values = {r.value for r in dead}
    assert await tables(db) == expected_from([(k, v) for k, v in records if v not in dead_values])
    assert worker.totals.dead_lettered == len(dead)
    assert worker.totals.written == len(records) - len(dead)
    assert await committed_offsets(kafka_bootstrap, settings.kafka_group_id, topic) == {0: len(records)}


@pytest.fixture
async def relayed_db(db: str):
    """(relay, DSN through it) for a migrated database: the test can take the database away from the worker."""
    target = urlsplit(db)
    proxy = TcpProxy(target.hostname, target.port)
    await proxy.start()
    yield proxy, db.replace(f"{target.hostname}:{target.port}", f"127.0.0.1:{proxy.port}")
    proxy.thaw()
    await proxy.cut()


async def test_database_outage_commits_nothing_and_recovers(
    kafka_bootstrap, topic_factory, db, relayed_db, make_settings
):
    """While the database is unreachable no offset moves; when it returns the worker resumes by itself."""
    topic = await topic_factory("events")
    dlq = await topic_factory("dlq")
    proxy, proxied = relayed_db
    first, second = valid_records(500, seed=4), valid_records(500, seed=5)
    await produce(kafka_bootstrap, topic, first)
    settings = make_settings(proxied, topic, dlq, batch_max_records=100)
    worker = Worker(settings)
    group = settings.kafka_group_id
    async with running(worker) as task:
        await wait_drained(kafka_bootstrap, group, topic)
        await proxy.cut()
        await produce(kafka_bootstrap, topic, second)
        await asyncio.sleep(1)
        during = await committed_offsets(kafka_bootstrap, group, topic)
        await asyncio.sleep(4)
        assert await committed_offsets(kafka_bootstrap, group, topic) == during == {0: len(first)}
        assert not task.done()
        assert worker.totals.retries > 0
        sample = worker.metrics.registry.get_sample_value
        retried = sample("ocpp_retries_total", {"operation": "write"})
        assert retried and retried == sample("ocpp_database_retries_total", {"operation": "write"})
        await proxy.restore()
        await wait_drained(kafka_bootstrap, group, topic, timeout=60)
    assert await tables(db) == expected_from(first + second)


async def test_shutdown_does_not_wait_past_its_timeout_for_a_hung_database(
    kafka_bootstrap, topic_factory, relayed_db, make_settings
):
    """With the database hung (connections open, no answer), stop() returns within the shutdown timeout and
    leaves the batch in hand uncommitted."""
    topic = await topic_factory("events")
    dlq = await topic_factory("dlq")
    proxy, proxied = relayed_db
    first = valid_records(300, seed=8)
    await produce(kafka_bootstrap, topic, first)
    settings = make_settings(proxied, topic, dlq, shutdown_timeout_seconds=3)
    worker = Worker(settings)
    task = asyncio.create_task(worker.run())
    try:
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
        proxy.freeze()
        await produce(kafka_bootstrap, topic, valid_records(300, seed=9))
        await wait_until(lambda: _busy(worker), timeout=30, what="a batch in flight")
        stopped_at = asyncio.get_running_loop().time()
        worker.stop()
        await asyncio.wait_for(asyncio.shield(task), timeout=10)
        assert asyncio.get_running_loop().time() - stopped_at < 3 + 2
    finally:
        if not task.done():
            task.cancel()
    assert await committed_offsets(kafka_bootstrap, settings.kafka_group_id, topic) == {0: len(first)}


def _fetch_position(worker: Worker, tp: TopicPartition):
    """The worker's fetch position in one partition (aiokafka's: past the last record returned, it may count one
    more; 0 before the worker has it), and a check that it has reached n, for wait_until."""
    async def position() -> int:
        return await worker._consumer.position(tp) if worker._started and worker._consumer.assignment() else 0

    async def fetched(n: int) -> bool:
        return await position() >= n

    return position, fetched


async def test_what_arrives_during_a_write_goes_with_the_next_batch(kafka_bootstrap, topic_factory, db,
                                                                      make_settings):
    """Freshness: while a write is held by a lock, the next batch goes on fetching what arrives, up to a full
    batch, and then stops fetching (memory stays bounded). Once the lock goes, it is one write: an event that
    arrived during a write waits for one more write, not two."""
    topic, dlq = await topic_factory("events"), await topic_factory("dlq")
    settings = make_settings(db, topic, dlq, batch_max_records=100, batch_max_wait_ms=100)
    records = valid_records(120, seed=41)[:120]
    first, during, beyond = records[:10], records[10:40], records[40:]
    worker = Worker(settings)
    tp = TopicPartition(topic, 0)

    position, fetched = _fetch_position(worker, tp)
    async with TableLock(db) as lock, running(worker):
        await produce(kafka_bootstrap, topic, first)
        await wait_until(lambda: fetched(10), timeout=60, what="the first batch fetched (its write waits)")
        await produce(kafka_bootstrap, topic, during[:10])
        await wait_until(lambda: fetched(20), timeout=30, what="the next batch fetched")
        await produce(kafka_bootstrap, topic, during[10:])  # arrives while the first write still waits
        await wait_until(lambda: fetched(40), timeout=30, what="the next batch filled with what arrived")
        await produce(kafka_bootstrap, topic, beyond)
        await wait_until(lambda: fetched(110), timeout=30, what="the next batch filled to its 100 records")
        await asyncio.sleep(1.5)  # more than a keep-alive round: a full batch fetches nothing more
        assert await position() < 120
        await lock.release()
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
    assert await tables(db) == expected_from(records)
    # The first batch, the filled one (10 + 30 + 60 records) as one write, then the last 10: each record once.
    sample = worker.metrics.registry.get_sample_value
    assert worker.totals.records == sample("ocpp_batch_records_sum") == 120
    batches = sample("ocpp_batch_records_count")
    assert sample("ocpp_batch_records_bucket", {"le": "100.0"}) == batches
    assert sample("ocpp_batch_records_bucket", {"le": "50.0"}) == batches - 1


async def test_the_batch_filled_during_a_write_is_bounded_by_bytes(kafka_bootstrap, topic_factory, db,
                                                                     make_settings):
    """The next batch stops taking records once it holds OCPP_BATCH_MAX_BYTES, as one fetch would, however many
    records it may still take: large records cannot pile up while a write waits. Nothing is lost."""
    topic, dlq = await topic_factory("events"), await topic_factory("dlq")
    settings = make_settings(db, topic, dlq, batch_max_records=1000, batch_max_bytes=2048)
    records = valid_records(200, seed=44)[:200]  # ~260 bytes each
    worker = Worker(settings)
    tp = TopicPartition(topic, 0)

    position, fetched = _fetch_position(worker, tp)
    async with TableLock(db) as lock, running(worker):
        await produce(kafka_bootstrap, topic, records[:5])
        await wait_until(lambda: fetched(5), timeout=60, what="the first batch fetched (its write waits)")
        await produce(kafka_bootstrap, topic, records[5:10])
        await wait_until(lambda: fetched(10), timeout=30, what="the next batch fetched")
        for i in range(10, len(records), 5):  # record batches of ~1.3 kB, so that a fetch takes one or two
            await produce(kafka_bootstrap, topic, records[i:i + 5])
        await asyncio.sleep(1.5)
        # Up to 2 kB in the batch, then one more fetch of at most 4 kB: ~25 records of the 200.
        assert await position() < 50
        await lock.release()
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
    assert await tables(db) == expected_from(records)
    assert worker.totals.records == len(records)


async def test_a_trickle_is_gathered_into_few_batches(kafka_bootstrap, topic_factory, db, make_settings):
    """At a live rate records arrive a few at a time. A fetch waits up to OCPP_KAFKA_FETCH_MAX_WAIT_MS for
    OCPP_KAFKA_FETCH_MIN_BYTES, so a trickle is written in a few batches, not one per record: each fetch and each
    write costs CPU of its own (BENCHMARKS.md, "Fetches gather records")."""
    topic, dlq = await topic_factory("events"), await topic_factory("dlq")
    settings = make_settings(db, topic, dlq, kafka_fetch_min_bytes=1_000_000, kafka_fetch_max_wait_ms=1500)
    records = valid_records(8, seed=45)[:8]
    worker = Worker(settings)

    async def assigned() -> bool:
        return worker._started and bool(worker._consumer.assignment())

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        async with running(worker):
            await wait_until(assigned, timeout=60, what="the worker's partition assigned")
            for key, value in records:  # 0.8 s of records, each alone: within two fetches' waits
                await producer.send_and_wait(topic, value=value, key=key)
                await asyncio.sleep(0.1)
            await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
    finally:
        await producer.stop()
    assert await tables(db) == expected_from(records)
    assert worker.totals.records == len(records)
    # Answered at once (OCPP_KAFKA_FETCH_MIN_BYTES=1), each record is a batch of its own: 8.
    assert worker.metrics.registry.get_sample_value("ocpp_batch_records_count") <= 3


async def test_a_fetch_of_small_partitions_does_not_wait_for_more_than_they_hold(kafka_bootstrap, topic_factory, db,
                                                                                 make_settings):
    """A fetch returns at most OCPP_BATCH_MAX_BYTES of a partition, so a larger OCPP_KAFKA_FETCH_MIN_BYTES could
    never be met: it counts only up to that, or a catch-up would wait OCPP_KAFKA_FETCH_MAX_WAIT_MS per fetch."""
    topic, dlq = await topic_factory("events"), await topic_factory("dlq")
    settings = make_settings(db, topic, dlq, batch_max_bytes=2048, kafka_fetch_min_bytes=1_000_000,
                             kafka_fetch_max_wait_ms=5000)
    records = valid_records(100, seed=46)[:100]
    for i in range(0, len(records), 5):  # record batches of ~1.3 kB: ~20 fetches, each a 5 s wait if it waited
        await produce(kafka_bootstrap, topic, records[i:i + 5])
    worker = Worker(settings)
    async with running(worker):
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic, timeout=25)
    assert await tables(db) == expected_from(records)


async def _busy(worker: Worker) -> bool:
    return not worker._idle.is_set()


async def test_metrics_and_probes(kafka_bootstrap, topic_factory, db, make_settings):
    """/metrics counts events by action and outcome; /healthz and /readyz answer 200 once partitions are owned.
    With the feed's month of history pruned, each status event still updates the state and is counted as pruned."""
    owner = await asyncpg.connect(db)
    try:
        await owner.execute("SELECT * FROM ocpp_prune_status_history('2026-12-01')")  # the feed is of November
    finally:
        await owner.close()
    topic = await topic_factory("events")
    dlq = await topic_factory("dlq")
    records = valid_records(200, seed=6)
    invalid = invalid_records(seed=6)
    await produce(kafka_bootstrap, topic, records + [(k, v) for k, v, _ in invalid])
    settings = make_settings(db, topic, dlq, metrics_port=free_port())
    worker = Worker(settings)

    async def get(path: str) -> tuple[int, str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", settings.metrics_port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        response = (await reader.read()).decode()
        writer.close()
        return int(response.split()[1]), response.split("\r\n\r\n", 1)[1]

    async with running(worker):
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
        status, body = await get("/metrics")
        assert (await get("/healthz"))[0] == 200
        assert (await get("/readyz"))[0] == 200
        assert (await get("/nope"))[0] == 404
    assert status == 200
    heartbeats = sum(1 for k, v in records if isinstance(decode(v, k), Heartbeat))
    assert f'ocpp_events_total{{action="Heartbeat",outcome="written"}} {float(heartbeats)}' in body
    assert f'ocpp_events_total{{action="unknown",outcome="dead_lettered"}} {float(len(invalid))}' in body
    assert 'ocpp_dead_letters_total{kind="key_mismatch"} 1.0' in body
    assert f'ocpp_committed_offset{{partition="0",topic="{topic}"}} {float(len(records) + len(invalid))}' in body
    assert "ocpp_event_commit_latency_seconds_count" in body
    decoded = [decode(v, k) for k, v in records]
    reported = [e for e in decoded if isinstance(e, StatusNotification)]
    reported += [item for e in decoded if isinstance(e, NotifyEvent) for item in e.statuses]
    # Each status event once per batch that holds it: the feed repeats some records, which one batch counts once.
    distinct = len({(e.charge_point_id, e.connector_id, e.evse_connector_id, e.effective_at, e.event_id)
                    for e in reported})
    [pruned] = [float(line.split()[1]) for line in body.splitlines()
                if line.startswith("ocpp_history_pruned_events_total ")]
    assert 0 < distinct <= pruned <= len(reported)
    conn = await asyncpg.connect(db)
    try:
        assert await conn.fetchval("SELECT count(*) FROM status_history") == 0
        assert await conn.fetchval("SELECT count(*) FROM connector") > 0
    finally:
        await conn.close()


async def test_refuses_to_start_with_pending_migrations(kafka_bootstrap, topic_factory, database_url, make_settings):
    """On a database that was never migrated the worker stops before consuming, naming the fix."""
    topic = await topic_factory("events")
    worker = Worker(make_settings(database_url, topic, "unused-dlq"))
    from consumer.worker import PendingMigrations

    with pytest.raises(PendingMigrations, match="ocpp-consumer migrate"):
        await asyncio.wait_for(worker.run(), timeout=30)
    assert await end_offsets(kafka_bootstrap, topic) == {0: 0}
