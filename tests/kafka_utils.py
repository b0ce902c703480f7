"""Helpers for the service tests: produce records, read a group's progress, wait for a condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from consumer.tools import support


async def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]) -> int:
    """Publish (key, value) records, keyed so that one charge point stays in one partition; return the count."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=value, key=key) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(futures)


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


async def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await support.committed_offsets(admin, group)
    finally:
        await admin.close()
    return {tp.partition: offset for tp, offset in offsets.items() if tp.topic == topic}


async def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list:
    """Read a topic from the start until `expected` records arrived (or fail after `timeout`)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            records += [r for rs in batch.values() for r in rs]
        # A little longer, to catch records that should not be there.
        batch = await consumer.getmany(timeout_ms=1000)
        records += [r for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return records


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, timeout: float, interval: float = 0.25, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def wait_drained(bootstrap: str, group: str, topic: str, *, timeout: float = 60) -> None:
    """Wait until the group has committed every partition of the topic up to its end."""
    ends = await end_offsets(bootstrap, topic)

    async def drained() -> bool:
        committed = await committed_offsets(bootstrap, group, topic)
        return all(committed.get(p, 0) >= end for p, end in ends.items())

    await wait_until(drained, timeout=timeout, what=f"group {group} to drain {topic} to {ends}")
