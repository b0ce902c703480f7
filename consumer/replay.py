"""`ocpp-consumer dlq replay`: put dead-lettered records back on their source topic once the cause is fixed.

A dead letter is the original record (key, value, headers) with our `ocpp.*` headers first, its timestamp in
`ocpp.source.timestamp` (consumer/deadletter.py). Replaying sends the original back: the same key (so the same
partition and charge point), value and timestamp — the time rules judge a replayed event as they judged the
original — and its own
headers, without ours, a producer's own `ocpp.error.*`/`ocpp.source.*` headers restored from `ocpp.original.*`.
Letters without a value (too large, or a placeholder) cannot be replayed and are counted as such: their
original is at `ocpp.source.*` for as long as the source topic retains it.

The dead-letter topic is read from its beginning (or from the dead letters written since `--since`) up to its end at the moment the command
starts, with no consumer group, so a replay never moves anyone's offsets and always ends. Running it twice is
safe: the state store is idempotent, so a record applied twice changes nothing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from consumer.clients import kafka_options
from consumer.settings import Settings

_OURS = ("ocpp.error.", "ocpp.source.")
_RENAMED = "ocpp.original."
# How long one read of the dead-letter topic waits for records before it concludes the partitions are done.
READ_WAIT_MS = 1000


@dataclass
class ReplayReport:
    sent: Counter = field(default_factory=Counter)  # kind → records sent back (or that would be, with --dry-run)
    without_value: Counter = field(default_factory=Counter)  # kind → letters that carry no value
    other_kinds: int = 0  # letters of kinds not asked for


def original_headers(headers) -> list[tuple[str, bytes]]:
    """The record's own headers: ours dropped, a producer's own `ocpp.*` headers given back their names."""
    out = []
    for key, value in headers or ():
        if key.startswith(_OURS):
            continue
        out.append((key[len(_RENAMED):] if key.startswith(_RENAMED) else key, value))
    return out


async def replay(settings: Settings, *, kinds: set[str], since: datetime | None, dry_run: bool) -> ReplayReport:
    """Re-publish the dead letters of `kinds` to their source topics; return what was (or would be) sent."""
    options = kafka_options(settings)
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False, isolation_level="read_committed",
                                auto_offset_reset="earliest")
    producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
    report = ReplayReport()
    await consumer.start()
    await producer.start()
    try:
        if settings.dlq_topic not in await consumer.topics():
            raise LookupError(f"the dead-letter topic {settings.dlq_topic!r} does not exist")
        partitions = [TopicPartition(settings.dlq_topic, p)
                      for p in sorted(await producer.partitions_for(settings.dlq_topic))]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await _seek_start(consumer, partitions, since)
        pending = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(*partitions, timeout_ms=READ_WAIT_MS)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        continue
                    letter = dict(record.headers or ())
                    kind = letter.get("ocpp.error.kind", b"").decode("utf-8", "replace")
                    if kind not in kinds:
                        report.other_kinds += 1
                    elif record.value is None or "ocpp.error.original_bytes" in letter:
                        report.without_value[kind] += 1
                    else:
                        report.sent[kind] += 1
                        if not dry_run:
                            pending.append(await producer.send(
                                letter["ocpp.source.topic"].decode(), key=record.key, value=record.value,
                                headers=original_headers(record.headers), timestamp_ms=_timestamp(letter),
                            ))
        await asyncio.gather(*pending)
    finally:
        await consumer.stop()
        await producer.stop()
    return report


def _timestamp(letter: dict) -> int | None:
    """The original record's timestamp, from `ocpp.source.timestamp` (absent in letters of older versions)."""
    try:
        stamp = int(letter["ocpp.source.timestamp"])
    except (KeyError, ValueError):
        return None
    return stamp if stamp >= 0 else None


async def _seek_start(consumer: AIOKafkaConsumer, partitions: list[TopicPartition], since: datetime | None) -> None:
    """Explicit offsets rather than seek_to_beginning, whose reset can lose a race with the assignment's own."""
    starts = await consumer.beginning_offsets(partitions)
    if since is not None:
        found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in partitions})
        ends = await consumer.end_offsets(partitions)
        starts = {tp: found[tp].offset if found.get(tp) is not None else ends[tp] for tp in partitions}
    for tp in partitions:
        consumer.seek(tp, starts[tp])
