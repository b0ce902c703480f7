"""The `ocpp-consumer run` process as an operator sizes it: its memory and CPU on /metrics, and a garbage
collector tuned for batches (consumer/service.py)."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumer.tools.relay import free_port
from tests.feed import valid_records
from tests.kafka_utils import produce, wait_until
from tests.test_dashboards_metrics import http_get

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

RECORDS = 6000


async def _samples(port: int) -> dict:
    status, body = await http_get(port, "/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


async def test_a_replica_collects_garbage_rarely_and_exports_its_memory(kafka_bootstrap, topic_factory, db,
                                                                        replicas):
    """A replica consumes 6,000 records in batches of 2,000, which it holds until they are written: CPython's
    default thresholds collect the young generation every 700 objects kept (35 times here, measured). The tuned
    process collects at most a few times, and says so in python_gc_collections_total; its resident memory is on
    /metrics too."""
    topic = await topic_factory("events")
    port = free_port()
    replicas(db, topic, f"gc-{uuid.uuid4().hex[:8]}", OCPP_METRICS_PORT=str(port), OCPP_BATCH_MAX_RECORDS="2000")

    async def serving() -> bool:
        try:
            return (await http_get(port, "/readyz"))[0] == 200
        except OSError:
            return False

    await wait_until(serving, timeout=60, what="the replica's /readyz")
    before = await _samples(port)
    await produce(kafka_bootstrap, topic, valid_records(RECORDS, seed=5))

    async def consumed() -> bool:
        nonlocal after
        after = await _samples(port)
        return sum(value for (name, _), value in after.items() if name == "ocpp_events_total") >= RECORDS

    after = before
    await wait_until(consumed, timeout=120, what=f"{RECORDS} records counted on /metrics")

    young = ("python_gc_collections_total", (("generation", "0"),))
    collections = after[young] - before[young]
    assert collections <= 3, f"{collections:.0f} young collections for {RECORDS} records"
    assert after[("process_resident_memory_bytes", ())] > 20e6
