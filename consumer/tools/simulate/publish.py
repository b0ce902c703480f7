"""Putting a feed on Kafka fast: create the topic, then publish records flat out or at a fixed rate.

`publish` fills aiokafka's per-partition batch builders itself (the per-message `send()` coroutine costs more
than generating the record), so a laptop core reaches well over 100k events/s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner


async def ensure_topic(bootstrap: str, topic: str, partitions: int, *, security: dict | None = None) -> bool:
    """Create the topic with `partitions` partitions unless it exists; True when it was created.

    `security` is consumer.clients.kafka_security_options(settings): the simulator reaches a secured broker with
    the service's own OCPP_KAFKA_* settings.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(security or {}))
    await admin.start()
    try:
        if topic in await admin.list_topics():
            return False
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        except TopicAlreadyExistsError:
            return False
        return True
    finally:
        await admin.close()


async def publish(
    records: Iterator[tuple[bytes, bytes]],
    *,
    bootstrap: str,
    topic: str,
    count: int | None = None,
    rate: float | None = None,
    duration: float | None = None,
    compression: str | None = None,
    progress_seconds: float = 5.0,
    progress: Callable[[str], None] | None = None,
    security: dict | None = None,
) -> int:
    """Send records until `count` are sent or `duration` seconds pass; at `rate` per second, or flat out.

    Records are partitioned like the Java client (murmur2 of the key), so one charge point stays in one
    partition; each record's Kafka timestamp is the moment it joined its batch. Returns the number of records
    the broker acknowledged (all of them, or it raises).
    """
    if count is None and duration is None:
        raise ValueError("give a count or a duration")
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, **(security or {}), acks="all", enable_idempotence=True, compression_type=compression,
        linger_ms=5, max_batch_size=1_048_576, request_timeout_ms=60_000,
    )
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        partition_of: dict[bytes, int] = {}
        partitioner = DefaultPartitioner()
        builders: dict[int, object] = {}
        in_flight: list[asyncio.Future] = []

        async def submit(partition: int) -> None:
            builder = builders.pop(partition)
            in_flight.append(await producer.send_batch(builder, topic, partition=partition))

        started = last_report = time.monotonic()
        reported = sent = 0
        limit = count if count is not None else float("inf")
        deadline = started + duration if duration is not None else float("inf")
        while sent < limit:
            now = time.monotonic()
            if now >= deadline:
                break
            if rate:
                due = min(int(rate * (now - started)) + 1, limit) - sent
                if due <= 0:
                    await asyncio.sleep(min(0.002, deadline - now))
                    continue
            else:
                due = min(5000, limit - sent)
            for _ in range(int(due)):
                key, value = next(records)
                partition = partition_of.get(key)
                if partition is None:
                    partition = partition_of[key] = partitioner(key, partitions, partitions)
                builder = builders.get(partition)
                if builder is None:
                    builder = builders[partition] = producer.create_batch()
                if builder.append(key=key, value=value, timestamp=None) is None:
                    await submit(partition)
                    builder = builders[partition] = producer.create_batch()
                    builder.append(key=key, value=value, timestamp=None)
            sent += int(due)
            if rate:
                # Live mode: nothing waits in a half-full batch, so received_at ≈ the time it reaches Kafka.
                for partition in list(builders):
                    await submit(partition)
            else:
                await asyncio.sleep(0)  # let the sender run
            for future in [f for f in in_flight if f.done()]:
                future.result()  # raise a delivery failure now, not at the end
                in_flight.remove(future)
            now = time.monotonic()
            if progress and now - last_report >= progress_seconds:
                progress(f"sent {sent} records, {(sent - reported) / (now - last_report):,.0f}/s")
                last_report, reported = now, sent
        for partition in list(builders):
            await submit(partition)
        await asyncio.gather(*in_flight)
    finally:
        await producer.stop()
    return sent
