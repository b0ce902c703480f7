"""A short chaos round in `make test`: three real replicas, every fault once (replica killed, replica paused
past its session timeout, PostgreSQL restarted, the database cut, the broker restarted, a partition added),
and nothing lost, regressed or missing from the dead-letter topic. `make chaos` runs the long version; the
three-broker faults are in tests/test_cluster.py (their pure parts) and `make chaos BROKERS=3`."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from consumer.tools.chaos import FAULTS, Chaos, older, versions


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.slow
async def test_every_fault_once_loses_nothing(kafka_bootstrap, admin_dsn, tmp_path):
    result = await Chaos(bootstrap=kafka_bootstrap, admin_dsn=admin_dsn, rounds=len(FAULTS), seed=11,
                         round_seconds=15, records_per_round=800, workdir=tmp_path).run()
    assert result["faults"] == {kind: 1 for kind in FAULTS}
    assert result["published"] > result["valid"] > 0
    assert result["missing_dead_letters"] == 0
    assert result["lost"] == 0
    assert result["regressed"] == 0
    assert result["tables_equal"]


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(1_796_148_000 + seconds, timezone.utc)


def test_a_newer_status_with_an_older_receipt_is_no_regression():
    """Seen in a 24-round run: a 1.6 port at (last_updated 16.000, received 16.687) then a later-effective
    status corrected to its record timestamp (16.256, 16.256). The write order says newer (sql/queries/state.sql:
    effective time first); only received_at went back, which the version order allows."""
    event = [uuid.UUID(int=1), uuid.UUID(int=2)]
    before = versions("c", [_at(16.0), _at(16.687)], event)
    now = versions("c", [_at(16.256), _at(16.256)], event)
    assert not older(before, now)
    assert older(now, before)


def test_an_older_version_or_a_lost_value_is_a_regression():
    ids = [uuid.UUID(int=n) for n in range(4)]
    row = versions("cp", [_at(1), _at(2), _at(10), _at(11), _at(20), _at(30)], ids)
    assert not older(row, row)
    assert older(row, versions("cp", [_at(1), _at(2), _at(10), _at(11), _at(19), _at(30)], ids))  # heartbeat
    assert older(row, versions("cp", [_at(1), _at(2), _at(10), _at(11), _at(20), None], ids))  # value gone
    assert older(row, versions("cp", [_at(1), _at(2), _at(10), _at(10.5), _at(20), _at(30)], ids))  # a tie lost
    assert not older(versions("cp", [None, None, _at(10), _at(11), None, _at(30)], [None, None, *ids[2:]]), row)
    # Same times, another event: the event id decides, as in the writes.
    assert older(row, versions("cp", [_at(1), _at(2), _at(10), _at(11), _at(20), _at(30)],
                               [ids[0], ids[1], uuid.UUID(int=0), ids[3]]))
