"""The pipeline's limits, each stage alone: Kafka without the rest, validation without the rest, PostgreSQL without
Kafka.

A consumer of this design reads every record, validates it against the contract and writes its rows, so it cannot
be faster than the slowest of those three done alone on the same records: their minimum is "the pipeline limit",
and the product's catch-up is read as a fraction of it. Consume-only alone was the old yardstick, but no Python
consumer can approach it (validating a record costs more than consuming it), so a ratio to it said nothing about
how much of the reachable speed is left.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from consumer import store
from consumer.coalesce import coalesce
from consumer.decode import decode
from consumer.settings import Settings
from schemas.envelope import tracked_adapter
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


class ValidationOnly:
    """The validation-only limit: pydantic's own `validate_json` of the records into the contract's models.

    The adapter is the one consumer/decode.py validates with (schemas.envelope.tracked_adapter: the union picked
    by ocpp_version, then action), called in a bare loop on one core with nothing of ours around it, so it is
    the part of decoding no change to our code can remove. A record the contract refuses raises; it is counted
    all the same, since the product validates it too (then dead-letters it). Only the loop is timed: the
    records are generated before it.
    """

    def __init__(self) -> None:
        self.records = 0
        self.seconds = 0.0

    def time(self, values: list[bytes]) -> None:
        validate = tracked_adapter.validate_json
        started = time.perf_counter()
        for value in values:
            try:
                validate(value)
            except ValidationError:
                pass
        self.seconds += time.perf_counter() - started
        self.records += len(values)

    @property
    def events_per_s(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def decoded_batches(records: Iterator[tuple[bytes, bytes]], total: int, settings: Settings,
                    validation: ValidationOnly | None = None) -> Iterator[list]:
    """The valid events of `total` records, in batches of the product's batch size.

    With `validation`, each chunk of raw records is also validated by it (timed) before it is decoded
    (untimed): one pass of the feed serves both limits, which at fleet scale saves regenerating millions of
    records.
    """
    batch: list = []
    left = total
    while left > 0:
        chunk = [next(records) for _ in range(min(left, settings.batch_max_records))]
        left -= len(chunk)
        if validation is not None:
            validation.time([value for _, value in chunk])
        for key, value in chunk:
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
