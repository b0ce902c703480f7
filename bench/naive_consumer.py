"""The naive baseline the benchmark compares against (not the product): the consumer one writes first.

Per message: decode (the product's own validation, so only the write path differs), one single-row
INSERT … ON CONFLICT in its own transaction, then an offset commit for that message. Same tables, same
last-writer-wins rule, so the difference measured is batching and coalescing, nothing else.
"""

from __future__ import annotations

import time

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from consumer.decode import decode
from consumer.settings import Settings
from schemas.events import BootNotification, Heartbeat, StatusNotification

# The connector's charge point row must exist first (the foreign key), hence the first statement.
ENSURE_CHARGE_POINT = """
INSERT INTO charge_point (serial_number, last_updated) VALUES ($1, $2)
ON CONFLICT (serial_number) DO UPDATE SET last_updated = GREATEST(charge_point.last_updated, EXCLUDED.last_updated)
"""


def _newer_wins(columns: list[str], at: str, event_id: str) -> str:
    """SET clauses that take each column from the new row only if its version (at, event_id) is greater."""
    newer = (f"charge_point.{at} IS NULL OR (EXCLUDED.{at}, EXCLUDED.{event_id}) > "
             f"(charge_point.{at}, charge_point.{event_id})")
    return ",\n    ".join(
        f"{c} = CASE WHEN {newer} THEN EXCLUDED.{c} ELSE charge_point.{c} END" for c in [*columns, event_id, at]
    )


BOOT = f"""
INSERT INTO charge_point (serial_number, vendor, model, firmware_version, last_updated, boot_effective_at, boot_event_id)
VALUES ($1, $2, $3, $4, $5, $5, $6)
ON CONFLICT (serial_number) DO UPDATE SET
    last_updated = GREATEST(charge_point.last_updated, EXCLUDED.last_updated),
    {_newer_wins(["vendor", "model", "firmware_version"], "boot_effective_at", "boot_event_id")}
"""
HEARTBEAT = """
INSERT INTO charge_point (serial_number, last_heartbeat, last_updated) VALUES ($1, $2, $3)
ON CONFLICT (serial_number) DO UPDATE SET
    last_heartbeat = GREATEST(charge_point.last_heartbeat, EXCLUDED.last_heartbeat),
    last_updated = GREATEST(charge_point.last_updated, EXCLUDED.last_updated)
"""
CHARGE_POINT_STATUS = f"""
INSERT INTO charge_point (serial_number, status, last_updated, status_effective_at, status_event_id)
VALUES ($1, $2, $3, $3, $4)
ON CONFLICT (serial_number) DO UPDATE SET
    last_updated = GREATEST(charge_point.last_updated, EXCLUDED.last_updated),
    {_newer_wins(["status"], "status_effective_at", "status_event_id")}
"""
CONNECTOR_STATUS = """
INSERT INTO connector (id, charge_point_id, connector_id, status, error_code, last_updated, status_event_id)
VALUES (md5($1 || '/' || $2::int::text)::uuid, $1, $2, $3, $4, $5, $6)
ON CONFLICT (charge_point_id, connector_id) DO UPDATE SET
    status = EXCLUDED.status, error_code = EXCLUDED.error_code,
    last_updated = EXCLUDED.last_updated, status_event_id = EXCLUDED.status_event_id
WHERE (EXCLUDED.last_updated, EXCLUDED.status_event_id) > (connector.last_updated, connector.status_event_id)
"""


async def write(conn: asyncpg.Connection, event) -> None:
    cp, at = event.charge_point_id, event.effective_at
    if isinstance(event, Heartbeat):
        await conn.execute(HEARTBEAT, cp, event.received_at, at)
    elif isinstance(event, BootNotification):
        await conn.execute(BOOT, cp, event.vendor, event.model, event.firmware_version, at, event.event_id)
    elif isinstance(event, StatusNotification) and event.connector_id == 0:
        await conn.execute(CHARGE_POINT_STATUS, cp, event.status, at, event.event_id)
    elif isinstance(event, StatusNotification):
        await conn.execute(ENSURE_CHARGE_POINT, cp, at)
        await conn.execute(
            CONNECTOR_STATUS, cp, event.connector_id, event.status, event.error_code, at, event.event_id
        )


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
            if isinstance(event, (BootNotification, Heartbeat, StatusNotification)):
                async with conn.transaction():
                    await write(conn, event)
            await consumer.commit({TopicPartition(record.topic, record.partition): record.offset + 1})
            done += 1
            if done >= limit:
                break
        return done / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await conn.close()
