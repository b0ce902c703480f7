"""Nothing stuck: records that real producers can write never stop the stream, blind the metrics or pin a port.

Each test writes the hostile record to the real broker, between valid ones, and asserts on what an operator
would check: every valid record written, the hostile one dead-lettered with its kind, offsets committed to the
end, and the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from consumer.decode import decode
from consumer.metrics import Metrics
from consumer.partitions import Partitions
from consumer.probes import Probes
from consumer.worker import Worker
from tests.feed import envelope, invalid_records, valid_records
from tests.kafka_utils import committed_offsets, consume_all, end_offsets, produce, wait_drained, wait_until
from tests.service import TableLock, expected_from, running, tables

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

BIG = 3 * 1024 * 1024  # what the hostile source topics accept; the dead-letter topic keeps the broker's 1 MB


BIG_TOPIC = {"max.message.bytes": str(BIG)}  # as a producer-side misconfiguration would allow


@pytest.fixture
async def big_topic(topic_factory) -> str:
    return await topic_factory("big", configs=BIG_TOPIC)


async def produce_raw(bootstrap: str, topic: str, records: list[dict]) -> None:
    """Publish records given as producer.send keyword arguments (key, value, headers, timestamp_ms)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=BIG, acks="all")
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, **record) for record in records])
    finally:
        await producer.stop()


def _headers(record) -> list[tuple[str, bytes]]:
    return list(record.headers or ())


def _first(record, name: str) -> bytes | None:
    return next((value for key, value in _headers(record) if key == name), None)


async def test_keyless_too_large_record_is_dead_lettered_not_crashed(kafka_bootstrap, big_topic, topic_factory, db,
                                                                     make_settings):
    """A keyless 1.2 MB record: its dead letter has no key and no value, which Kafka refuses, so it carries an
    empty value; the records around it are written and the offsets reach the end."""
    dlq = await topic_factory("dlq")
    valid = valid_records(60, seed=20)
    await produce(kafka_bootstrap, big_topic, valid[:30])
    await produce_raw(kafka_bootstrap, big_topic, [{"key": None, "value": b"x" * 1_200_000}])
    await produce(kafka_bootstrap, big_topic, valid[30:])
    settings = make_settings(db, big_topic, dlq)
    worker = Worker(settings)
    async with running(worker) as task:
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, big_topic)
        assert not task.done()
    [letter] = await consume_all(kafka_bootstrap, dlq, expected=1)
    assert (letter.key, letter.value) == (None, b"")
    assert _first(letter, "ocpp.error.kind") == b"too_large"
    assert _first(letter, "ocpp.error.original_bytes") == b"1200000"
    assert _first(letter, "ocpp.source.offset") == b"30"
    assert await tables(db) == expected_from(valid)


async def test_dead_letter_too_large_even_without_its_value_becomes_a_placeholder(
        kafka_bootstrap, big_topic, topic_factory, db, make_settings):
    """~1.5 MB of headers on a tiny invalid record: the whole letter and the value-less one are both refused by
    the broker, so a placeholder goes, keeping what headers fit and saying how many it dropped."""
    dlq = await topic_factory("dlq")
    valid = valid_records(40, seed=21)
    headers = [("small", b"kept")] + [(f"h{i}", b"y" * 100_000) for i in range(15)]
    await produce(kafka_bootstrap, big_topic, valid[:20])
    await produce_raw(kafka_bootstrap, big_topic, [{"key": b"CP-H", "value": b"not json", "headers": headers}])
    await produce(kafka_bootstrap, big_topic, valid[20:])
    settings = make_settings(db, big_topic, dlq)
    worker = Worker(settings)
    async with running(worker) as task:
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, big_topic)
        assert not task.done()
    [letter] = await consume_all(kafka_bootstrap, dlq, expected=1)
    assert (letter.key, letter.value) == (b"CP-H", None)
    assert _first(letter, "ocpp.error.kind") == b"not_json"
    assert _first(letter, "ocpp.source.offset") == b"20"
    assert _first(letter, "small") == b"kept"
    kept = [name for name, _ in _headers(letter) if name.startswith("h")]
    assert int(_first(letter, "ocpp.error.dropped_headers")) == 15 - len(kept) > 0
    assert sum(len(v) for _, v in _headers(letter)) < 1_000_000
    assert await tables(db) == expected_from(valid)


async def test_our_headers_win_and_the_originals_are_kept(kafka_bootstrap, topic_factory, db, make_settings):
    """A producer's own ocpp.error.* header cannot precede or impersonate ours; it is kept, renamed, with the
    record's other headers."""
    topic, dlq = await topic_factory("events"), await topic_factory("dlq")
    forged = [("trace", b"abc"), ("ocpp.error.kind", b"forged"), ("ocpp.source.offset", b"999")]
    await produce_raw(kafka_bootstrap, topic, [{"key": b"CP-F", "value": b"{", "headers": forged}])
    settings = make_settings(db, topic, dlq)
    async with running(Worker(settings)):
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
    [letter] = await consume_all(kafka_bootstrap, dlq, expected=1)
    names = [name for name, _ in _headers(letter)]
    assert names[0] == "ocpp.error.kind" and _first(letter, "ocpp.error.kind") == b"not_json"
    assert names.count("ocpp.error.kind") == 1 and _first(letter, "ocpp.source.offset") == b"0"
    assert _first(letter, "trace") == b"abc"
    assert _first(letter, "ocpp.original.ocpp.error.kind") == b"forged"
    assert _first(letter, "ocpp.original.ocpp.source.offset") == b"999"


async def test_untracked_actions_share_one_label(kafka_bootstrap, topic_factory, db, make_settings):
    """2,000 distinct untracked actions are counted under `other`: labels never take values from the input."""
    topic, dlq = await topic_factory("events"), await topic_factory("dlq")
    at = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
    records = [(b"CP-A", envelope("CP-A", "1.6", f"Vendor{i:05d}", at, {})) for i in range(2000)]
    await produce(kafka_bootstrap, topic, records)
    settings = make_settings(db, topic, dlq)
    worker = Worker(settings)
    async with running(worker):
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
    sample = worker.metrics.registry.get_sample_value
    assert sample("ocpp_events_total", {"action": "other", "outcome": "ignored"}) == 2000
    assert len(worker.metrics.render()) < 20_000
    assert b"Vendor0" not in worker.metrics.render()


async def test_expensive_records_do_not_stall_the_stream(kafka_bootstrap, big_topic, topic_factory, db,
                                                         make_settings):
    """32 records of ~1 MB that each take the slow paths (NaN, NUL escapes, 60,000 unknown fields): all are
    dead-lettered, the valid records around them written, and the replica keeps its partitions throughout."""
    dlq = await topic_factory("dlq")
    at = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
    nan = envelope("CP-S", "1.6", "MeterValues", at, {"v": list(range(150_000))}).replace(b'"v":[', b'"v":[NaN,')
    nul = envelope("CP-S", "1.6", "MeterValues", at, {"pad": ["\\\\u0000" * 10] * 9000, "z": "\u0000"})
    fields = envelope("CP-S", "1.6", "StatusNotification", at, {f"f{i}": 1 for i in range(60_000)})
    hostile = [nan, nul, fields] * 10 + [nan, nul]
    valid = valid_records(200, seed=22)
    await produce(kafka_bootstrap, big_topic, valid[:100])
    await produce_raw(kafka_bootstrap, big_topic, [{"key": b"CP-S", "value": value} for value in hostile])
    await produce(kafka_bootstrap, big_topic, valid[100:])
    settings = make_settings(db, big_topic, dlq, max_record_bytes=2_000_000)
    worker = Worker(settings)
    async with running(worker) as task:
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, big_topic, timeout=120)
        assert not task.done()
    dead = await consume_all(kafka_bootstrap, dlq, expected=len(hostile), timeout=60)
    assert sorted(_first(r, "ocpp.error.kind") for r in dead) == sorted(
        [b"not_json"] * 11 + [b"payload"] * 21)
    assert worker.totals.commit_failures == 0  # never evicted from the group mid-batch
    assert await tables(db) == expected_from(valid)


async def test_a_received_at_in_year_9999_does_not_pin_the_state(kafka_bootstrap, topic_factory, db,
                                                                  make_settings):
    """A gateway cannot receive an event after publishing it: received_at is bounded by the record timestamp,
    so a later real event still wins, and the correction is counted."""
    topic, dlq = await topic_factory("events"), await topic_factory("dlq")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    pinned = envelope("CP-T", "1.6", "StatusNotification", datetime(9999, 1, 1, tzinfo=timezone.utc),
                      {"connectorId": 1, "status": "Faulted", "errorCode": "GroundFailure",
                       "timestamp": "9999-01-01T00:00:00Z"})
    later = envelope("CP-T", "1.6", "StatusNotification", now + timedelta(minutes=1),
                     {"connectorId": 1, "status": "Available", "errorCode": "NoError"})
    publish_ms = int(now.timestamp() * 1000)
    await produce_raw(kafka_bootstrap, topic, [
        {"key": b"CP-T", "value": pinned, "timestamp_ms": publish_ms},
        {"key": b"CP-T", "value": later, "timestamp_ms": publish_ms + 60_000},
    ])
    settings = make_settings(db, topic, dlq)
    worker = Worker(settings)
    async with running(worker):
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
    conn = await asyncpg.connect(db)
    try:
        row = await conn.fetchrow("SELECT status, last_updated FROM connector WHERE charge_point_id = 'CP-T'")
        heartbeat_free = await conn.fetchval("SELECT last_updated FROM charge_point WHERE serial_number = 'CP-T'")
    finally:
        await conn.close()
    assert row["status"] == "AVAILABLE" and row["last_updated"] == now + timedelta(minutes=1)
    assert heartbeat_free.year < 9999
    sample = worker.metrics.registry.get_sample_value
    assert sample("ocpp_time_corrections_total", {"kind": "received_at_after_publish"}) == 1
    assert sample("ocpp_time_corrections_total", {"kind": "charger_clock_ahead"}) == 1


def test_time_rules_each_correction():
    """Each rule of docs/contract.md, on one record each: what is replaced, by what, and what is believed."""
    received = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
    publish_ms = int(received.timestamp() * 1000) + 1000

    def status(received_at: datetime, timestamp: str) -> bytes:
        return envelope("CP-1", "1.6", "StatusNotification", received_at,
                        {"connectorId": 1, "status": "Charging", "errorCode": "NoError", "timestamp": timestamp})

    reset = decode(status(received, "1970-01-01T00:00:07Z"), None, record_timestamp_ms=publish_ms)
    assert reset.effective_at == received and reset.time_corrections == ("charger_clock_reset",)
    queued = decode(status(received, "2026-11-20T08:00:00Z"), None, record_timestamp_ms=publish_ms)
    assert queued.effective_at == datetime(2026, 11, 20, 8, tzinfo=timezone.utc) and not queued.time_corrections
    future = decode(status(received + timedelta(days=2), "2026-11-24T12:00:30Z"), None,
                    record_timestamp_ms=publish_ms)
    assert future.received_at == received + timedelta(seconds=1)
    assert future.time_corrections == ("received_at_after_publish",)
    backfill = decode(status(received - timedelta(days=400), "2025-10-20T12:00:00Z"), None,
                      record_timestamp_ms=publish_ms)
    assert backfill.received_at == received - timedelta(days=400) and not backfill.time_corrections


def test_an_offline_queue_keeps_its_order():
    """A charger offline for two days sends its queued statuses, with their original times, on reconnecting:
    they are all believed, so the last one queued is the state, whatever order they are written in."""
    from consumer.coalesce import ConnectorRow, coalesce

    reconnect = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
    queue = [("Preparing", "2026-11-22T09:00:00Z"), ("Charging", "2026-11-22T09:00:40Z"),
             ("Finishing", "2026-11-22T11:30:00Z"), ("Available", "2026-11-22T11:31:00Z")]
    events = [decode(envelope("CP-Q", "1.6", "StatusNotification", reconnect + timedelta(milliseconds=i),
                              {"connectorId": 1, "status": s, "errorCode": "NoError", "timestamp": t}), None,
                     record_timestamp_ms=int(reconnect.timestamp() * 1000) + 5000)
              for i, (s, t) in enumerate(queue)]
    for order in (events, events[::-1]):
        [row] = map(ConnectorRow._make, coalesce(order).connectors)
        assert (row.status, row.last_updated) == ("AVAILABLE", datetime(2026, 11, 22, 11, 31, tzinfo=timezone.utc))


async def test_aborted_transactions_are_never_applied(kafka_bootstrap, topic_factory, db, make_settings):
    """read_committed: the records of a producer transaction that aborted do not reach the tables; and the
    partition, which now ends in the abort marker, is committed to its end, so lag reads 0, not 1 forever."""
    topic, dlq = await topic_factory("events"), await topic_factory("dlq")
    at = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
    valid = valid_records(50, seed=23)
    await produce(kafka_bootstrap, topic, valid)
    aborted = envelope("CP-X", "1.6", "BootNotification", at, {"chargePointVendor": "Ghost", "chargePointModel": "M"})
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"tx-{uuid.uuid4().hex[:8]}")
    await producer.start()
    try:
        await producer.begin_transaction()
        await producer.send_and_wait(topic, aborted, key=b"CP-X")
        await producer.abort_transaction()
    finally:
        await producer.stop()
    settings = make_settings(db, topic, dlq)
    worker = Worker(settings)
    async with running(worker):
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
        lag = worker.metrics.registry.get_sample_value("ocpp_partition_lag", {"topic": topic, "partition": "0"})
    assert lag == 0
    assert await tables(db) == expected_from(valid)


async def test_lag_gauges_of_revoked_partitions_are_removed(kafka_bootstrap, topic_factory, db, make_settings):
    """When a second replica takes half the partitions, the first stops reporting lag for them."""
    topic, dlq = await topic_factory("events", partitions=4), await topic_factory("dlq")
    await produce(kafka_bootstrap, topic, valid_records(400, seed=24))
    settings = make_settings(db, topic, dlq)
    first, second = Worker(settings), Worker(settings)

    def lag_partitions(worker: Worker) -> set[str]:
        return {s.labels["partition"] for m in worker.metrics.lag.collect() for s in m.samples}

    async with running(first):
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
        assert lag_partitions(first) == {"0", "1", "2", "3"}
        async with running(second):
            async def shared() -> bool:
                return len(first._partitions.owned) == len(second._partitions.owned) == 2

            await wait_until(shared, timeout=60, what="the group to share the partitions")
            await produce(kafka_bootstrap, topic, valid_records(400, seed=25))
            await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
            owned_by_first = {str(tp.partition) for tp in first._partitions.owned}
            assert len(owned_by_first) == 2
            assert lag_partitions(first) <= owned_by_first
            assert await end_offsets(kafka_bootstrap, topic) == await committed_offsets(
                kafka_bootstrap, settings.kafka_group_id, topic)


@contextlib.asynccontextmanager
async def two_partitions_fetched(bootstrap: str, topic_factory, seed: int):
    """A real consumer assigned both partitions of a new topic, and our view of them (Partitions) once records of
    each were fetched: what the idle commit starts from. Yields (consumer, partitions, first, second)."""
    topic = await topic_factory("events", partitions=2)
    await produce(bootstrap, topic, valid_records(60, seed=seed))
    first, second = TopicPartition(topic, 0), TopicPartition(topic, 1)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([first, second])
        partitions = Partitions(Metrics(), Probes(fetch_wait_seconds=1, stall_timeout_seconds=60))
        partitions.assigned({first, second})
        seen: set[TopicPartition] = set()
        while seen != {first, second}:
            batch = await consumer.getmany(timeout_ms=1000)
            partitions.fetched(batch)
            seen |= {tp for tp, records in batch.items() if records}
        yield consumer, partitions, first, second
    finally:
        await consumer.stop()


async def test_partition_revoked_while_its_position_is_asked_does_not_stop_the_replica(kafka_bootstrap, topic_factory):
    """When the replica is idle it asks each owned partition's position, to commit past transaction markers; the
    group coordinator's task can revoke partitions during that wait (a CI run crashed on it). The revoked
    partition is left to its new owner, and the others still get their commit."""
    async with two_partitions_fetched(kafka_bootstrap, topic_factory, seed=27) as (consumer, partitions, *both):
        asked, ask = [], consumer.position

        async def position_then_revoke(tp: TopicPartition) -> int:
            position = await ask(tp)
            if not asked:  # the listener runs while the first answer is awaited
                partitions.revoked({tp})
            asked.append(tp)
            return position

        consumer.position = position_then_revoke
        ahead = await partitions.positions_ahead(consumer)
        revoked = asked[0]
        (kept,) = set(both) - {revoked}
        assert partitions.owned == {kept}
        assert ahead == {kept: await ask(kept)} and ahead[kept] > 0
        assert revoked not in ahead


async def test_partition_unassigned_before_the_listener_ran_does_not_stop_the_replica(kafka_bootstrap, topic_factory):
    """Between the consumer losing a partition and the rebalance listener telling us, our view still owns it and
    the idle commit asks its position, which the consumer refuses (IllegalStateError). That partition is skipped;
    the others still get their commit."""
    async with two_partitions_fetched(kafka_bootstrap, topic_factory, seed=28) as (consumer, partitions, _, kept):
        consumer.assign([kept])  # the consumer's assignment moved on; the listener has not run yet
        await consumer.seek_to_end(kept)  # (assigning anew reset its position)
        ahead = await partitions.positions_ahead(consumer)
        assert ahead == {kept: await consumer.position(kept)} and ahead[kept] > 0


async def test_a_commit_that_lands_after_its_partition_was_revoked_brings_back_no_gauge(kafka_bootstrap):
    """A commit awaited across a revocation completes for a partition that is now its new owner's: its
    committed-offset series, removed by the revocation, is not set again, so no stale value stays exported."""
    metrics = Metrics()
    partitions = Partitions(metrics, Probes(fetch_wait_seconds=1, stall_timeout_seconds=60))
    tp = TopicPartition("events", 0)
    labels = {"topic": "events", "partition": "0"}
    partitions.assigned({tp})
    metrics.count_committed(tp.topic, tp.partition, 5)  # an earlier commit
    partitions.revoked({tp})  # while the next commit is awaited
    assert metrics.registry.get_sample_value("ocpp_committed_offset", labels) is None
    partitions.committed({tp: 9}, AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap))
    assert metrics.registry.get_sample_value("ocpp_committed_offset", labels) is None


async def test_missing_dead_letter_topic_stops_start_up(kafka_bootstrap, topic_factory, db, make_settings):
    """A dead-letter topic that does not exist and cannot be created is found before the first record is read:
    start-up fails with one clear message, and nothing is consumed."""
    from consumer.worker import Unreachable

    topic = await topic_factory("events")
    await produce(kafka_bootstrap, topic, valid_records(10, seed=26))
    settings = make_settings(db, topic, "no such/topic", startup_timeout_seconds=3)
    with pytest.raises(Unreachable, match="dead-letter topic 'no such/topic' does not exist"):
        await asyncio.wait_for(Worker(settings).run(), timeout=30)
    assert await committed_offsets(kafka_bootstrap, settings.kafka_group_id, topic) == {}
    conn = await asyncpg.connect(db)
    try:
        assert await conn.fetchval("SELECT count(*) FROM charge_point") == 0
    finally:
        await conn.close()




async def test_metrics_and_readiness_tell_the_truth_during_a_stall(kafka_bootstrap, topic_factory, db,
                                                                     make_settings):
    """A lock holds every write while the database itself answers: lag is refreshed from the brokers although
    nothing commits, /readyz turns 503 ("stalled") after the stall timeout while /healthz stays 200 (the loop
    waits, it is not stuck), and both recover when the lock goes."""
    topic, dlq = await topic_factory("events"), await topic_factory("dlq")
    settings = make_settings(db, topic, dlq, batch_max_records=100, stall_timeout_seconds=3,
                             database_statement_timeout_seconds=1)
    worker = Worker(settings)
    await produce(kafka_bootstrap, topic, valid_records(100, seed=27))
    async with running(worker):
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
        assert (await worker.probes.ready())[0]
        async with TableLock(db) as lock:
            second = valid_records(300, seed=28)
            await produce(kafka_bootstrap, topic, second)
            lag = worker.metrics.registry.get_sample_value
            labels = {"topic": topic, "partition": "0"}

            async def stalled() -> bool:
                return (lag("ocpp_partition_lag", labels) or 0) >= 300 and not (await worker.probes.ready())[0]

            await wait_until(stalled, timeout=30, what="lag to grow and /readyz to fail")
            assert "stalled" in (await worker.probes.ready())[1]
            assert (await worker.probes.healthy())[0]
            await lock.release()
            await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic, timeout=60)

            async def recovered() -> bool:
                return (await worker.probes.ready())[0] and lag("ocpp_partition_lag", labels) == 0

            await wait_until(recovered, timeout=30, what="/readyz and lag to recover")


async def test_a_header_key_that_is_not_utf8_is_dead_lettered(kafka_bootstrap, topic_factory, db, make_settings):
    """A record whose header key is not UTF-8 (as Go clients and librdkafka can write) no longer breaks the
    fetch: it is dead-lettered as `bad_header`, and every valid record before and after it is written."""
    from tests.test_records import HOSTILE_KEY, _batch, _produce_batches, _RawKey

    topic, dlq = await topic_factory("events"), await topic_factory("dlq")
    valid = valid_records(6, seed=29)
    hostile = (b"CP-1", b'{"not": "read"}', [("ok", b"1"), (_RawKey(HOSTILE_KEY), b"v")])
    batch = [(k, v, []) for k, v in valid[:3]] + [hostile] + [(k, v, []) for k, v in valid[3:]]
    await _produce_batches(kafka_bootstrap, topic, 0, [_batch(batch)])
    settings = make_settings(db, topic, dlq)
    worker = Worker(settings)
    async with running(worker) as task:
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
        assert not task.done()
    [letter] = await consume_all(kafka_bootstrap, dlq, expected=1)
    assert _first(letter, "ocpp.error.kind") == b"bad_header"
    assert b"is not UTF-8" in _first(letter, "ocpp.error.detail")
    assert _first(letter, "ocpp.source.offset") == b"3"
    assert await tables(db) == expected_from(valid)


async def test_a_batch_fetched_before_a_revocation_is_not_started_after_it(kafka_bootstrap, topic_factory, db,
                                                                            make_settings):
    """A revocation waits for the batch in flight to commit while the partitions are still ours. The next batch,
    fetched and decoded meanwhile, must not start when that one finishes: the revocation would go on with it in
    flight, its offsets could not be committed, and it would be processed again after the rebalance — its dead
    letters published twice. The first batch is held by a table lock until a second member joining the group
    (a real rebalance) has begun it, and the lock is taken again behind it until that member has its partition;
    then the member leaves. Every invalid record is dead-lettered exactly once, every valid one written."""
    topic, dlq = await topic_factory("events", partitions=1), await topic_factory("dlq")
    valid = valid_records(600, seed=31)
    bad = [(key, value) for key, value, _ in invalid_records(seed=31)]
    mixed = []
    for i, record in enumerate(valid):  # an invalid record after every 15th valid one: some in every batch
        mixed.append(record)
        if i % 15 == 14:
            mixed.append(bad[(i // 15) % len(bad)])
    await produce(kafka_bootstrap, topic, mixed)
    settings = make_settings(db, topic, dlq, batch_max_records=40)
    worker = Worker(settings)
    partitions = [TopicPartition(topic, 0)]
    # The one partition goes to the member whose id sorts first (round robin over sorted member ids: the client
    # id, then a uuid): the joining member's, so every batch the worker had fetched is one whose partition moves.
    joining = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=settings.kafka_group_id,
                               client_id="0-joining", enable_auto_commit=False, auto_offset_reset="earliest")
    assert "0-joining" < settings.kafka_client_id
    async with TableLock(db) as lock, running(worker):
        async def two_batches_fetched() -> bool:  # the first one waits for the lock, the next one for it
            if not worker._started:
                return False
            return sum([await worker._consumer.position(tp) for tp in partitions]) >= 80

        await wait_until(two_batches_fetched, timeout=60, what="two batches fetched")
        await joining.start()
        try:
            async def revocation_begun() -> bool:
                return worker._partitions.generation > 0

            await wait_until(revocation_begun, timeout=60, what="the rebalance to reach the worker")
            await lock.release()
            # Taken again at once: the first batch, queued for the lock before, goes first and commits; a batch
            # started after it would wait here while its partition moves, so the defect shows every time.
            async with TableLock(db):
                async def joined() -> bool:
                    return bool(joining.assignment())

                await wait_until(joined, timeout=60, what="the second member to get its partition")
        finally:
            await joining.stop()
        await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic, timeout=120)

    expected = len(mixed) - len(valid)
    dead = await consume_all(kafka_bootstrap, dlq, expected=expected)
    sources = [(dict(r.headers)["ocpp.source.partition"], dict(r.headers)["ocpp.source.offset"]) for r in dead]
    assert len(sources) == len(set(sources)) == expected
    assert await tables(db) == expected_from(valid)
