"""A short chaos round in `make test`: three real replicas, every fault once (replica killed, replica paused
past its session timeout, PostgreSQL restarted, the database cut, the broker restarted, a partition added),
and nothing lost, regressed or missing from the dead-letter topic. `make chaos` runs the long version."""

from __future__ import annotations

import pytest

from consumer.tools.chaos import FAULTS, Chaos

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def test_every_fault_once_loses_nothing(kafka_bootstrap, admin_dsn, tmp_path):
    result = await Chaos(bootstrap=kafka_bootstrap, admin_dsn=admin_dsn, rounds=len(FAULTS), seed=11,
                         round_seconds=15, records_per_round=800, workdir=tmp_path).run()
    assert result["faults"] == {kind: 1 for kind in FAULTS}
    assert result["published"] > result["valid"] > 0
    assert result["missing_dead_letters"] == 0
    assert result["lost"] == 0
    assert result["regressed"] == 0
    assert result["tables_equal"]
