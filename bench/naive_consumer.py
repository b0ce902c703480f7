"""The naive baseline the benchmark compares against (not the product): the consumer one writes first.

Per message: decode (the product's own validation), the product's own upserts for that one event in a
transaction of its own, then an offset commit for that message. Same tables, same SQL, same last-writer-wins
rule, so the difference measured is batching and coalescing, nothing else — and the baseline follows every
change of the schema by itself (it once had SQL of its own, which a new version column broke).
"""

from __future__ import annotations

import time

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from consumer.decode import decode
from consumer.settings import Settings
from consumer.store import apply_events
from schemas.events import Rejection

async def run(*, bootstrap: str, topic: str, group: str, database_url: str, limit: int, settings: Settings) -> float:
    """Consume `limit` records of the topic from the start, the naive way; events/s from the first record."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    conn = await asyncpg.connect(database_url)
    await consumer.start()
    try:
        done = 0
        started = None
        async for record in consumer:
            if started is None:
                started = time.perf_counter()  # joining the group is not the consumer's throughput
            event = decode(
                record.value, record.key, max_clock_skew_seconds=settings.max_clock_skew_seconds,
                max_record_bytes=settings.max_record_bytes,
            )
            if not isinstance(event, Rejection):  # ignored actions create their charge point row too
                await apply_events(conn, [event])  # one transaction per message
            await consumer.commit({TopicPartition(record.topic, record.partition): record.offset + 1})
            done += 1
            if done >= limit:
                break
        return done / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await conn.close()
