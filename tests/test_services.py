"""The services under the suite are real: a record makes the round trip through the broker, SQL runs on a server."""

import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_kafka_round_trip(kafka_bootstrap, topic_factory):
    """A record produced with aiokafka comes back from the broker with its key, value and headers."""
    topic = await topic_factory("smoke")
    value = uuid.uuid4().bytes
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, value, key=b"CP-1", headers=[("h", b"v")])
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000)
    finally:
        await consumer.stop()
    records = [r for rs in batch.values() for r in rs]
    assert [(r.key, r.value, list(r.headers), r.offset) for r in records] == [
        (b"CP-1", value, [("h", b"v")], meta.offset)
    ]


async def test_postgres_query(database_url):
    """A query reaches a PostgreSQL server in a database of this test's own."""
    conn = await asyncpg.connect(database_url)
    try:
        version = await conn.fetchval("SHOW server_version_num")
        tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        await conn.execute("CREATE TABLE probe (n int)")
        await conn.execute("INSERT INTO probe SELECT generate_series(1, 10)")
        total = await conn.fetchval("SELECT sum(n) FROM probe")
    finally:
        await conn.close()
    assert int(version) >= 130000
    assert tables == 0  # a fresh database per test
    assert total == 55
