"""The machine's raw limits, each with the other half taken away: Kafka without PostgreSQL, PostgreSQL without Kafka.

They bound what any consumer can reach here, so the product's figure is read as a fraction of them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from consumer import store
from consumer.coalesce import coalesce
from consumer.decode import decode
from consumer.settings import Settings
from schemas.events import Ignored, Rejection


async def consume_only(bootstrap: str, topic: str, expected: int, settings: Settings) -> float:
    """Events/s of aiokafka reading the topic from the start, fetch settings as the product's; no decoding."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
        max_poll_records=settings.batch_max_records, max_partition_fetch_bytes=settings.batch_max_bytes,
        fetch_max_bytes=max(settings.batch_max_bytes, 52_428_800), fetch_max_wait_ms=settings.batch_max_wait_ms,
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen = 0
        started = time.perf_counter()
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=1000, max_records=settings.batch_max_records)
            seen += sum(len(records) for records in batch.values())
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def decoded_batches(records: Iterator[tuple[bytes, bytes]], total: int, settings: Settings) -> Iterator[list]:
    """The valid events of `total` records, in batches of the product's batch size."""
    batch: list = []
    for _ in range(total):
        key, value = next(records)
        result = decode(
            value, key, max_clock_skew_seconds=settings.max_clock_skew_seconds,
            max_record_bytes=settings.max_record_bytes,
        )
        if not isinstance(result, (Rejection, Ignored)):
            batch.append(result)
        if len(batch) >= settings.batch_max_records:
            yield batch
            batch = []
    if batch:
        yield batch


async def pg_upsert(database_url: str, batches: Iterator[list]) -> tuple[int, int, float]:
    """(rows, events, seconds) of writing the coalesced batches, one transaction each; only the writes are timed."""
    conn = await asyncpg.connect(database_url)
    rows_written = events = 0
    elapsed = 0.0
    try:
        for batch in batches:
            rows = coalesce(batch)
            events += len(batch)
            rows_written += len(rows)
            started = time.perf_counter()
            await store.make_history_partitions(conn, rows)
            async with conn.transaction():
                await store.write_batch(conn, rows)
            elapsed += time.perf_counter() - started
    finally:
        await conn.close()
    return rows_written, events, elapsed
