"""The three-broker cluster mode's pure parts, which CI can check without starting three brokers: which faults
a stack of N brokers is offered, how the chaos run finds the broker to stop from metadata and the stack's
listing, and the addresses `stack/stack.sh` derives for the cluster. `make chaos BROKERS=3` runs the rest
(README, "Chaos run")."""

from __future__ import annotations

import os
import random
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from consumer.tools import chaos
from consumer.tools.faults import (ALL_FAULTS, CLUSTER_FAULTS, FAULTS, Broker, FaultError, available_faults,
                                   check_brokers, choose_leader, fault_order, out_of_sync, parse_brokers,
                                   select_faults)

ROOT = Path(__file__).resolve().parents[1]


def test_cluster_faults_are_offered_only_with_three_brokers():
    assert available_faults(1) == FAULTS
    assert available_faults(3) == FAULTS + ("leader_stop", "coordinator_stop")
    assert set(CLUSTER_FAULTS).isdisjoint(FAULTS)
    assert select_faults(None, 3) == ALL_FAULTS
    assert select_faults(["leader_stop", "replica_kill"], 3) == ("leader_stop", "replica_kill")


@pytest.mark.parametrize("asked", [["leader_stop"], ["replica_kill", "coordinator_stop"]])
def test_asking_for_a_cluster_fault_on_one_broker_is_an_error_that_says_what_to_do(asked):
    with pytest.raises(FaultError, match=r"need\(s\) the 3-broker cluster.*runs 1 broker.*BROKERS=3"):
        select_faults(asked, 1)


def test_unknown_or_no_fault_is_an_error():
    with pytest.raises(FaultError, match="unknown fault"):
        select_faults(["leader_kill"], 3)
    with pytest.raises(FaultError, match="no fault"):
        select_faults([], 3)


def test_twenty_four_rounds_on_the_cluster_apply_every_kind_three_times_each_kind_once_before_repeats():
    order = fault_order(available_faults(3), 24, random.Random(7))
    assert Counter(order) == {kind: 3 for kind in ALL_FAULTS}
    assert set(order[:8]) == set(ALL_FAULTS)


def test_the_leader_is_one_of_the_partitions_leaders_chosen_by_the_seed():
    described = [{"topic": "t", "error_code": 0, "partitions": [
        {"partition": 0, "leader": 2, "replicas": [2, 3, 1], "isr": [2, 3, 1]},
        {"partition": 1, "leader": -1, "replicas": [3, 1, 2], "isr": []},  # no leader now: not a target
        {"partition": 2, "leader": 1, "replicas": [1, 2, 3], "isr": [1, 2, 3]}]}]
    chosen = {choose_leader(described, random.Random(seed)) for seed in range(20)}
    assert chosen == {(0, 2), (2, 1)}
    assert choose_leader(described, random.Random(5)) == choose_leader(described, random.Random(5))
    with pytest.raises(FaultError, match="no partition of t has a leader"):
        choose_leader([{"topic": "t", "partitions": [{"partition": 0, "leader": -1}]}], random.Random(1))


def test_a_partition_is_out_of_sync_until_every_replica_is_in_its_isr():
    described = [
        {"topic": "t", "error_code": 0, "partitions": [
            {"partition": 0, "leader": 2, "replicas": [2, 3, 1], "isr": [3, 2, 1]},
            {"partition": 1, "leader": 3, "replicas": [3, 1, 2], "isr": [3, 2]},
            {"partition": 2, "leader": -1, "replicas": [1, 2, 3], "isr": [2, 3]}]},
        {"topic": "__consumer_offsets", "error_code": 3, "partitions": []},  # no group yet: nothing to wait for
    ]
    assert out_of_sync(described) == ["t/1", "t/2"]


def test_the_stack_listing_must_be_the_clusters_brokers():
    listed = parse_brokers("1 127.0.0.1:19092 100\n2 127.0.0.1:19102 200\n3 127.0.0.1:19112 -\n")
    assert listed == [Broker(1, "127.0.0.1:19092", 100), Broker(2, "127.0.0.1:19102", 200),
                      Broker(3, "127.0.0.1:19112", None)]
    metadata = [{"node_id": n, "host": "127.0.0.1", "port": 19082 + 10 * n} for n in (1, 2, 3)]
    with pytest.raises(FaultError, match=r"broker\(s\) \[3\] of the stack are not running"):
        check_brokers(listed, metadata)
    running = [Broker(b.node_id, b.address, b.pid or 300) for b in listed]
    check_brokers(running, metadata)
    # Another stack's broker (the default one on 9092) must never be taken for this one's.
    with pytest.raises(FaultError, match="are not the cluster's"):
        check_brokers([Broker(1, "127.0.0.1:9092", 100)], [{"node_id": 1, "host": "127.0.0.1", "port": 19092}])


def _stack(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_STACK_") and k != "BROKERS"}
    return subprocess.run(["bash", str(ROOT / "stack" / "stack.sh"), *args], env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def test_stack_env_lists_every_broker_of_the_cluster_from_overridable_base_ports(tmp_path):
    """Nothing is started: `env` and `brokers` only derive addresses (in an empty state directory)."""
    done = _stack("env", BROKERS="3", OCPP_STACK_DIR=str(tmp_path), OCPP_STACK_KAFKA_PORT="29092")
    assert "OCPP_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29092,127.0.0.1:29102,127.0.0.1:29112" in done.stdout.splitlines()
    done = _stack("brokers", BROKERS="3", OCPP_STACK_DIR=str(tmp_path), OCPP_STACK_KAFKA_PORT="29092",
                  OCPP_STACK_KAFKA_PORT_STEP="3")
    assert done.stdout.splitlines() == ["1 127.0.0.1:29092 -", "2 127.0.0.1:29095 -", "3 127.0.0.1:29098 -"]
    # Without BROKERS and with no cluster running, the single broker, exactly as before.
    done = _stack("env", OCPP_STACK_DIR=str(tmp_path))
    assert "OCPP_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092" in done.stdout.splitlines()
    done = _stack("env", BROKERS="2", OCPP_STACK_DIR=str(tmp_path))
    assert done.returncode != 0 and "1 broker or a cluster of 3" in done.stderr


def test_chaos_refuses_a_cluster_fault_on_the_single_broker_stack(capsys, monkeypatch):
    """`make test`'s stack has one broker: asking for leader_stop there stops at once, saying why, before any
    run starts (were it to start, the stub says so instead of restarting the stack's services)."""

    def no_run(**_):
        raise AssertionError("the chaos run started")

    monkeypatch.setattr(chaos, "Chaos", no_run)
    with pytest.raises(SystemExit) as exit_:
        chaos.main(["--faults", "replica_kill,leader_stop"])
    assert exit_.value.code == 2
    assert "leader_stop need(s) the 3-broker cluster, and this stack runs 1 broker" in capsys.readouterr().err
