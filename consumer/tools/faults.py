"""The chaos run's fault kinds, and the faults that act on the Kafka brokers of the local stack.

Which faults a stack can take depends on its brokers: stopping a partition's leader or the group's coordinator
only tests failover when another broker can take over, so `leader_stop` and `coordinator_stop` are offered only
by the three-broker cluster (`make up BROKERS=3`), whose topics keep three replicas and accept a write once two
have it (min.insync.replicas 2).

How each broker fault stops a broker, and why:
  broker_restart     SIGTERM, then `stack/stack.sh up`: the restart operators do. On the cluster it is rolling,
                     one node after another, each stopped only once every replica of the run's topics is back
                     in sync, as a rolling upgrade waits; a controlled shutdown moves leadership away first.
  leader_stop        SIGKILL of the broker that leads one of the consumed partitions (chosen by the seed) and
  coordinator_stop   of the broker that coordinates the consumer group: a crash, not a shutdown. Nothing is
                     handed over; the controller notices only when the broker's session times out (9 s), so
                     in-flight fetches, writes and offset commits get no answer, and the new coordinator must
                     reload the group from its replica of __consumer_offsets. The broker stays down until the
                     metadata names another broker in its place, and a few seconds more, so that clients really
                     work against the successor; then `stack/stack.sh up` brings it back.

Brokers are found by node id in the cluster's metadata and stopped by the pid `stack/stack.sh brokers` lists for
that node. Before anything is stopped the listing is checked against the metadata of the bootstrap servers, so
that a run pointed at one stack never stops another stack's broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

FAULTS = ("replica_kill", "replica_pause", "postgres_restart", "database_cut", "broker_restart", "partitions_added")
CLUSTER_FAULTS = ("leader_stop", "coordinator_stop")
ALL_FAULTS = FAULTS + CLUSTER_FAULTS
CLUSTER_SIZE = 3  # what `make up BROKERS=3` starts; the replication factor of the run's topics there

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "stack" / "stack.sh"
# A crashed broker is fenced once its session times out (broker.session.timeout.ms, 9 s) and only then loses its
# leaderships and coordinators; on a busy machine that takes longer. The run waits for the takeover, up to:
TAKEOVER_TIMEOUT_SECONDS = 120
RESTART_PAUSE_SECONDS = 3  # down after the takeover (and between stop and start in broker_restart)
IN_SYNC_TIMEOUT_SECONDS = 180
STOP_TIMEOUT_SECONDS = 60  # then SIGKILL, as `stack/stack.sh down` does
UNKNOWN_TOPIC = 3  # Kafka's error code UNKNOWN_TOPIC_OR_PARTITION (__consumer_offsets before the first group)


class FaultError(Exception):
    """The faults asked for cannot be applied to this stack; the message says why and what to do."""


def available_faults(brokers: int) -> tuple[str, ...]:
    """The fault kinds a stack of `brokers` brokers can take."""
    return ALL_FAULTS if brokers >= CLUSTER_SIZE else FAULTS


def select_faults(requested: Iterable[str] | None, brokers: int) -> tuple[str, ...]:
    """The kinds to apply: all the stack can take when none are named, else the named ones, each checked."""
    if requested is None:
        return available_faults(brokers)
    kinds = tuple(dict.fromkeys(requested))
    if not kinds:
        raise FaultError("no fault named")
    unknown = [kind for kind in kinds if kind not in ALL_FAULTS]
    if unknown:
        raise FaultError(f"unknown fault(s): {', '.join(unknown)}; known: {', '.join(ALL_FAULTS)}")
    unavailable = [kind for kind in kinds if kind not in available_faults(brokers)]
    if unavailable:
        raise FaultError(f"{', '.join(unavailable)} need(s) the {CLUSTER_SIZE}-broker cluster, and this stack runs "
                         f"{brokers} broker{'s' if brokers != 1 else ''}: `make down`, then `make chaos BROKERS=3`")
    return kinds


def fault_order(kinds: tuple[str, ...], rounds: int, rng: random.Random) -> list[str]:
    """Each kind once, shuffled, then shuffled again, until `rounds` faults: every kind is covered early."""
    order: list[str] = []
    while len(order) < rounds:
        cycle = list(kinds)
        rng.shuffle(cycle)
        order += cycle
    return order[:rounds]


# ---------------------------------------------------------------------------------------------- the stack


@dataclass(frozen=True)
class Broker:
    """One broker as `stack/stack.sh brokers` lists it; pid None when the stack says it is not running."""

    node_id: int
    address: str  # host:port of its PLAINTEXT listener
    pid: int | None


def parse_brokers(text: str) -> list[Broker]:
    """`stack/stack.sh brokers` output: "NODE_ID HOST:PORT PID" a line, PID "-" for a stopped broker."""
    brokers = []
    for line in text.splitlines():
        if line.strip():
            node_id, address, pid = line.split()
            brokers.append(Broker(int(node_id), address, None if pid == "-" else int(pid)))
    return brokers


def stack_brokers(brokers: int | None = None) -> list[Broker]:
    """The stack's brokers, asked of stack.sh with this process's environment (OCPP_STACK_DIR and the ports)."""
    env = {**os.environ, **({"BROKERS": str(brokers)} if brokers else {})}
    done = subprocess.run(["bash", str(STACK), "brokers"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise FaultError(f"`stack/stack.sh brokers` failed: {done.stderr.strip()}")
    return parse_brokers(done.stdout)


def check_brokers(listed: list[Broker], metadata: list[dict]) -> None:
    """The stack's brokers must be exactly the brokers the bootstrap servers' metadata names, and all running:
    the run stops brokers by the stack's pids, so a mismatch would stop a broker of another stack."""
    stack = {(b.node_id, b.address) for b in listed}
    cluster = {(b["node_id"], f"{b['host']}:{b['port']}") for b in metadata}
    if stack != cluster:
        raise FaultError(f"the stack's brokers {sorted(stack)} are not the cluster's {sorted(cluster)}: point "
                         "OCPP_KAFKA_BOOTSTRAP_SERVERS at this stack (`stack/stack.sh env`), or set OCPP_STACK_DIR "
                         "and the OCPP_STACK_*_PORT variables to the stack's")
    stopped = [b.node_id for b in listed if b.pid is None]
    if stopped:
        raise FaultError(f"broker(s) {stopped} of the stack are not running: `make up`")


# ---------------------------------------------------------------------------------------------- metadata


def choose_leader(described: list[dict], rng: random.Random) -> tuple[int, int]:
    """(partition, leader node id) of a partition of the first described topic that has a leader, by the seed."""
    led = sorted((p["partition"], p["leader"]) for p in described[0]["partitions"] if p["leader"] >= 0)
    if not led:
        raise FaultError(f"no partition of {described[0]['topic']} has a leader")
    return rng.choice(led)


def out_of_sync(described: list[dict]) -> list[str]:
    """"topic/partition" of every partition some replica of which is not in sync (topics not yet made ignored)."""
    return [f"{topic['topic']}/{p['partition']}" for topic in described if topic["error_code"] != UNKNOWN_TOPIC
            for p in topic["partitions"] if p["leader"] < 0 or set(p["isr"]) != set(p["replicas"])]


# ---------------------------------------------------------------------------------------------- acting


class Brokers:
    """Stops and restarts the stack's brokers. `wait(seconds)` is the run's own sleep, which keeps supervising
    the replicas meanwhile (a broker fault may make one exit: it must come back)."""

    def __init__(self, admin: AIOKafkaAdminClient, topics: list[str],
                 wait: Callable[[float], Awaitable[None]]) -> None:
        self.admin, self.topics, self.wait = admin, [*topics, "__consumer_offsets"], wait
        self.count = 0

    async def check(self) -> int:
        """Check the stack against the cluster's metadata; the number of brokers."""
        listed = stack_brokers()
        check_brokers(listed, (await self.admin.describe_cluster())["brokers"])
        self.count = len(listed)
        return self.count

    async def restart(self) -> str:
        """broker_restart: SIGTERM and start again; on the cluster every node in turn, each once all in sync."""
        for broker in stack_brokers(self.count):
            await self.in_sync()
            await self._stop(broker.node_id, signal.SIGTERM)
            await self.wait(RESTART_PAUSE_SECONDS)
            await self._start()
        return "all brokers, rolling" if self.count > 1 else ""

    async def leader_stop(self, topic: str, rng: random.Random) -> str:
        """SIGKILL the leader of one of `topic`'s partitions; restart it once another broker leads it."""
        await self.in_sync()
        partition, node = choose_leader(await self.admin.describe_topics([topic]), rng)

        async def leader() -> int:
            described = await self.admin.describe_topics([topic])
            return next(p["leader"] for p in described[0]["partitions"] if p["partition"] == partition)

        successor, seconds = await self._crash(node, leader)
        return f"broker {node}, leader of partition {partition}; led by {successor} after {seconds:.0f} s"

    async def coordinator_stop(self, group: str) -> str:
        """SIGKILL the consumer group's coordinator; restart it once another broker coordinates the group."""
        await self.in_sync()
        node = await self._retry(lambda: self.admin.find_coordinator(group))
        successor, seconds = await self._crash(node, lambda: self.admin.find_coordinator(group))
        return f"broker {node}, coordinator of the group; coordinated by {successor} after {seconds:.0f} s"

    async def _crash(self, node: int, holder: Callable[[], Awaitable[int]]) -> tuple[int, float]:
        """SIGKILL `node`, wait until `holder()` names another broker, a little longer, then restart it.
        (successor, seconds from the kill to the takeover)."""
        await self._stop(node, signal.SIGKILL)
        killed = time.monotonic()
        while (successor := await self._retry(holder)) in (node, -1):
            if time.monotonic() - killed > TAKEOVER_TIMEOUT_SECONDS:
                raise RuntimeError(f"no broker took over from broker {node} within {TAKEOVER_TIMEOUT_SECONDS} s")
            await self.wait(1)
        seconds = time.monotonic() - killed
        await self.wait(RESTART_PAUSE_SECONDS)
        await self._start()
        return successor, seconds

    async def in_sync(self) -> None:
        """Wait until every replica of the run's topics is in sync: stopping one broker then leaves two of three
        in sync, enough for acks=all writes (min.insync.replicas 2). Immediate on a single broker."""
        if self.count < 2:
            return
        lagging: list[str] = []
        for _ in range(IN_SYNC_TIMEOUT_SECONDS):
            lagging = out_of_sync(await self._retry(lambda: self.admin.describe_topics(self.topics)))
            if not lagging:
                return
            await self.wait(1)
        raise RuntimeError(f"replicas not back in sync within {IN_SYNC_TIMEOUT_SECONDS} s: {lagging}")

    async def _stop(self, node_id: int, how: signal.Signals) -> None:
        pid = next((b.pid for b in stack_brokers(self.count) if b.node_id == node_id), None)
        if pid is None:
            raise FaultError(f"the stack lists no running broker with node id {node_id}")
        os.kill(pid, how)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while _alive(pid):
            if how != signal.SIGKILL and time.monotonic() > deadline:
                how = signal.SIGKILL  # a controlled shutdown that hangs ends as stack.sh's would: once
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, how)
            await self.wait(0.2)

    async def _start(self) -> None:
        """`stack/stack.sh up`: starts what is not running and returns once every broker lists all of them."""
        env = {**os.environ, "BROKERS": str(self.count)}
        done = await asyncio.to_thread(subprocess.run, ["bash", str(STACK), "up"], env=env, capture_output=True,
                                       text=True)
        if done.returncode != 0:
            raise RuntimeError(f"`stack/stack.sh up` failed (exit {done.returncode}): {done.stderr[-3000:]}")

    async def _retry(self, call: Callable[[], Awaitable], attempts: int = 30):
        """An admin request while a broker is away may go to that very broker: ask again."""
        for attempt in range(attempts):
            try:
                return await call()
            except Exception:
                if attempt == attempts - 1:
                    raise
                await self.wait(1)


def _alive(pid: int) -> bool:
    """Whether the process runs. A broker outlives the `stack.sh up` that started it, so it is nobody's child
    here; where the init process is slow to reap orphans, a dead one shows as a zombie ("Z") for a while."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")
