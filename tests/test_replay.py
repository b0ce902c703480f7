"""`ocpp-consumer dlq replay`: after the cause of a dead letter is fixed, the records go back to their source
topic, once or twice, and the tables end as if they had never been refused."""

from __future__ import annotations

import os
import subprocess
import sys

import asyncpg
import pytest

from consumer.worker import Worker
from tests.feed import valid_records
from tests.kafka_utils import consume_all, end_offsets, produce, wait_drained
from tests.service import ROOT, expected_from, running, tables

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def replay_cli(settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OCPP_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
           "OCPP_DLQ_TOPIC": settings.dlq_topic}
    return subprocess.run([sys.executable, "-m", "consumer", "dlq", "replay", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


async def test_database_refusals_are_replayed_after_the_fix(kafka_bootstrap, topic_factory, db, make_settings):
    """A constraint a DBA added refuses some events (kind `database`); once it is dropped, a replay puts them back,
    the next run writes them, and a second replay changes nothing."""
    topic, dlq = await topic_factory("events"), await topic_factory("dlq")
    conn = await asyncpg.connect(db)
    try:
        await conn.execute("ALTER TABLE connector ADD CONSTRAINT test_no_faults CHECK (status <> 'FAULTED')")
        records = valid_records(300, seed=50)
        await produce(kafka_bootstrap, topic, records + [(b"CP-BAD", b"{")])
        settings = make_settings(db, topic, dlq, batch_max_records=50)
        async with running(Worker(settings)):
            await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
        refused = [r for r in await consume_all(kafka_bootstrap, dlq, expected=2)
                   if dict(r.headers)["ocpp.error.kind"] == b"database"]
        assert refused, "some FAULTED status must have won its batch and been refused"
        assert await tables(db) != expected_from(records)

        before = await end_offsets(kafka_bootstrap, topic)
        dry = replay_cli(settings, "--kind", "database", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert f"database: would send {len(refused)}" in dry.stdout
        assert await end_offsets(kafka_bootstrap, topic) == before

        await conn.execute("ALTER TABLE connector DROP CONSTRAINT test_no_faults")
        for attempt in range(2):  # safe to run twice
            done = replay_cli(settings, "--kind", "database")
            assert done.returncode == 0, done.stderr
            assert f"database: sent {len(refused)}" in done.stdout
            assert "1 dead letter(s) of other kinds left alone" in done.stdout
            async with running(Worker(settings)):
                await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
            assert await tables(db) == expected_from(records)
    finally:
        await conn.close()

    replayed = (await consume_all(kafka_bootstrap, topic, expected=len(records) + 1 + 2 * len(refused)))[-len(refused):]
    originals = {(r.key, r.value, int(dict(r.headers)["ocpp.source.timestamp"])) for r in refused}
    assert {(r.key, r.value, r.timestamp) for r in replayed} == originals
    assert all(not k.startswith("ocpp.") for r in replayed for k, _ in r.headers or ())
