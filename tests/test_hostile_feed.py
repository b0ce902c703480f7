"""Every hostile record of "Nothing stuck" at once, against two real replicas that a supervisor would restart:
none exits, every invalid record is dead-lettered with its kind, every valid one is written, /metrics stays small.
"""

from __future__ import annotations

import asyncio
import urllib.request
import uuid
from collections import Counter
from datetime import datetime, timezone

import pytest
from aiokafka import AIOKafkaProducer

from tests.feed import envelope, valid_records
from tests.kafka_utils import consume_all, produce, wait_drained
from consumer.tools.relay import free_port
from tests.test_nothing_stuck import BIG_TOPIC, produce_raw
from tests.test_records import HOSTILE_KEY, _batch, _produce_batches, _RawKey
from tests.service import expected_from, tables

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

AT = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)


def hostile_records() -> list[tuple[dict, bytes | None]]:
    """(producer.send keyword arguments, the dead-letter kind it must get, or None if it is valid or ignored)."""
    nan = envelope("CP-S", "1.6", "MeterValues", AT, {"v": list(range(150_000))}).replace(b'"v":[', b'"v":[NaN,')
    nul = envelope("CP-S", "1.6", "MeterValues", AT, {"pad": ["\\\\u0000" * 10] * 9000, "z": "\u0000"})
    fields = envelope("CP-S", "1.6", "StatusNotification", AT, {f"f{i}": 1 for i in range(60_000)})
    future = envelope("CP-T", "1.6", "Heartbeat", datetime(9999, 1, 1, tzinfo=timezone.utc), {})
    return [
        ({"key": None, "value": b"x" * 1_200_000}, b"too_large"),
        ({"key": b"CP-H", "value": b"not json", "headers": [(f"h{i}", b"y" * 100_000) for i in range(15)]},
         b"not_json"),
        ({"key": b"CP-F", "value": b"{", "headers": [("ocpp.error.kind", b"forged")]}, b"not_json"),
        *[({"key": b"CP-S", "value": value}, kind) for value, kind in
          [(nan, b"not_json"), (nul, b"payload"), (fields, b"payload")] * 5],
        ({"key": b"CP-T", "value": future}, None),
    ]


async def test_two_replicas_survive_every_hostile_record(kafka_bootstrap, topic_factory, db, replicas):
    """The whole hostile feed, interleaved with valid records, on a two-partition topic read by two replicas."""
    big_topic = await topic_factory("big", partitions=2, configs=BIG_TOPIC)
    dlq = await topic_factory("dlq")
    group = f"g-{uuid.uuid4().hex[:8]}"
    valid = valid_records(600, seed=30)
    hostile = hostile_records()
    untracked = [(b"CP-A", envelope("CP-A", "1.6", f"Vendor{i:05d}", AT, {})) for i in range(10_000)]
    await produce(kafka_bootstrap, big_topic, valid[:200])
    await produce_raw(kafka_bootstrap, big_topic, [record for record, _ in hostile])
    await produce(kafka_bootstrap, big_topic, untracked + valid[200:400])
    bad_header = (b"CP-1", b"{}", [(_RawKey(HOSTILE_KEY), b"v")])
    keyless_null = (None, None, [])  # aiokafka's producer refuses it; other clients write it
    await _produce_batches(kafka_bootstrap, big_topic, 0, [_batch([bad_header, keyless_null])])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"tx-{uuid.uuid4().hex[:8]}")
    await producer.start()
    try:
        await producer.begin_transaction()
        await producer.send_and_wait(big_topic, b"{", key=b"CP-X")  # would be a dead letter, were it read
        await producer.abort_transaction()
    finally:
        await producer.stop()
    await produce(kafka_bootstrap, big_topic, valid[400:])

    ports = [free_port(), free_port()]
    settings = dict(OCPP_DLQ_TOPIC=dlq, OCPP_MAX_RECORD_BYTES="1000000", OCPP_BATCH_MAX_RECORDS="500")
    running = [replicas(db, big_topic, group, OCPP_METRICS_PORT=str(port), **settings) for port in ports]
    restarts = 0

    async def supervise_until_drained() -> None:
        nonlocal restarts
        drained = asyncio.create_task(wait_drained(kafka_bootstrap, group, big_topic, timeout=180))
        while not drained.done():
            for i, replica in enumerate(running):
                if replica.process.poll() is not None:  # as Kubernetes would: restart it, and count
                    restarts += 1
                    running[i] = replicas(db, big_topic, group, OCPP_METRICS_PORT=str(ports[i]), **settings)
            await asyncio.sleep(0.2)
        await drained

    await supervise_until_drained()
    sizes = [len(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()) for port in ports]
    for replica in running:
        replica.signal(15)
    assert [await replica.wait(40) for replica in running] == [0, 0]
    assert restarts == 0
    assert max(sizes) < 1_000_000

    expected_kinds = Counter(kind for _, kind in hostile if kind) + Counter({b"bad_header": 1, b"empty": 1})
    dead = await consume_all(kafka_bootstrap, dlq, expected=sum(expected_kinds.values()), timeout=60)
    kinds = Counter(next(v for k, v in (r.headers or ()) if k == "ocpp.error.kind") for r in dead)
    assert kinds == expected_kinds
    written = await tables(db)
    assert {k: v for k, v in written[1].items()} == expected_from(valid)[1]
    assert written[0]["CP-T"]["last_updated"].year < 9999
    assert "CP-X" not in written[0]
