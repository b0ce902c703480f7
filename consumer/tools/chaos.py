"""`make chaos`: three replicas consume a live feed while every fault production brings is applied, in a
random order fixed by a seed; at the end the tables must equal those the same valid events give when written
once, cleanly, and every invalid record must be in the dead-letter topic.

Faults (one per round, each kind once before any repeats):
  replica_kill       SIGKILL a replica; a supervisor restarts it
  replica_pause      SIGSTOP a replica for longer than the session timeout, then SIGCONT: a zombie that must not
                     commit over its successor
  postgres_restart   `pg_ctlcluster … restart -m fast` of the stack's cluster
  database_cut       the replicas' database connections cut, then restored, through a TCP relay
  broker_restart     the Kafka broker stopped (SIGTERM) and started again (`stack/stack.sh up`); on the
                     three-broker cluster a rolling restart of every broker
  partitions_added   the consumed topic grows a partition
and with the three-broker cluster (`make up BROKERS=3`; with one broker they are not offered):
  leader_stop        the leader of one of the consumed partitions SIGKILLed, restarted once another leads it
  coordinator_stop   the consumer group's coordinator SIGKILLed, restarted once another coordinates it
(consumer/tools/faults.py says how brokers are found and stopped, and why so.)

Between rounds every row's version is sampled; a row whose version went back is a regression. The feed has
duplicates, late and invalid records, and hostile ones (1 MB of NaN, forged dead-letter headers, a received_at
in the year 9999, untracked actions by the thousand). The reference tables come from writing every valid event
once into a scratch database with the product's own coalesce and SQL; that those agree with an independent
oracle under any order, duplication and batching is what tests/test_store_property.py proves.

The run prints a table and, last, one JSON line: rounds, faults (count per kind), published, valid,
missing_dead_letters, lost, regressed, tables_equal, restarts, brokers. Everything goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic

from consumer.decode import decode
from consumer.migrate import migrate
from consumer.store import apply_events
from consumer.tools.faults import (ALL_FAULTS, CLUSTER_SIZE, FAULTS, Brokers, FaultError, fault_order,
                                   select_faults, stack_brokers)
from consumer.tools.relay import TcpProxy
from consumer.tools.simulate import Feed, FeedConfig
from consumer.tools.support import drop_database
from schemas.events import Ignored, Rejection

__all__ = ["FAULTS", "ALL_FAULTS", "Chaos", "main"]
ROOT = Path(__file__).resolve().parents[2]
SESSION_TIMEOUT_SECONDS = 10  # aiokafka's default session.timeout.ms; a pause must outlast it
BIG = 3 * 1024 * 1024


@dataclass
class Published:
    """Every record sent, by where it landed, and which of them the contract accepts."""

    valid: list = field(default_factory=list)  # (key, value)
    invalid: set = field(default_factory=set)  # (partition, offset)
    count: int = 0


class Replica:
    """One `python -m consumer run` process, restarted by `supervise` whenever it exits unasked."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env, self.log_path, self.process = env, log_path, None
        self.start()

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "consumer", "run"], env=self.env, cwd=ROOT,
                                            stdout=log, stderr=log)

    def alive(self) -> bool:
        return self.process.poll() is None


def hostile_records(rng: random.Random) -> list[dict]:
    """The records of the issue "Nothing stuck" that a producer client can write (producer.send arguments)."""
    at = "2026-11-24T12:00:00Z"

    def env(action: str, payload: dict, received_at: str = at) -> bytes:
        return orjson.dumps({"event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                             "charge_point_id": "CP-HOSTILE", "ocpp_version": "1.6", "action": action,
                             "received_at": received_at, "payload": payload})

    nan = env("MeterValues", {"v": list(range(150_000))}).replace(b'"v":[', b'"v":[NaN,')
    return [
        {"key": None, "value": b"x" * 1_200_000},
        {"key": b"CP-HOSTILE", "value": nan},
        {"key": b"CP-HOSTILE", "value": b"{", "headers": [("ocpp.error.kind", b"forged")]},
        {"key": b"CP-HOSTILE", "value": env("Heartbeat", {}, "9999-01-01T00:00:00Z")},
        *[{"key": b"CP-HOSTILE", "value": env(f"Vendor{rng.getrandbits(32)}", {})} for _ in range(200)],
    ]


class Chaos:
    def __init__(self, *, bootstrap: str, admin_dsn: str, rounds: int, seed: int, round_seconds: float,
                 records_per_round: int, workdir: Path, faults: tuple[str, ...] | None = None) -> None:
        """`faults`: the kinds to apply; None for every kind the stack can take (select_faults)."""
        self.bootstrap, self.admin_dsn, self.rounds = bootstrap, admin_dsn, rounds
        self.rng = random.Random(seed)
        self.requested = faults
        self.kinds: tuple[str, ...] = ()
        self.round_seconds, self.records_per_round, self.workdir = round_seconds, records_per_round, workdir
        self.tag = uuid.uuid4().hex[:8]
        self.topic, self.dlq, self.group = f"chaos-{self.tag}", f"chaos-{self.tag}.dlq", f"chaos-{self.tag}"
        self.database = f"chaos_{self.tag}"
        self.reference = f"chaos_ref_{self.tag}"
        self.published = Published()
        self.faults: Counter = Counter()
        self.restarts = 0
        self.regressed = 0
        self.replicas: list[Replica] = []
        self.feed = iter(Feed(FeedConfig(charge_points=200, connectors=2, ocpp201_fraction=0.3,
                                         heartbeat_interval=30, duplicates=0.05, out_of_order=0.02, invalid=0.01,
                                         seed=seed, start=time.time() - 3600, ocpp16_charger_precision="s")))
        self._versions: dict = {}
        self._producer: AIOKafkaProducer | None = None

    def dsn(self, database: str, port: int | None = None) -> str:
        parts = urlsplit(self.admin_dsn)
        netloc = parts.netloc if port is None else f"{parts.username}:{parts.password}@127.0.0.1:{port}"
        return urlunsplit(parts._replace(netloc=netloc, path=f"/{database}"))

    # ------------------------------------------------------------------------------------------ the run

    async def run(self) -> dict:
        kafka = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await kafka.start()
        self.brokers = Brokers(kafka, [self.topic, self.dlq], self._wait)
        try:
            self.kinds = select_faults(self.requested, await self.brokers.check())
        except BaseException:
            await kafka.close()
            raise
        factor = min(self.brokers.count, CLUSTER_SIZE)  # replication: 3 on the cluster, any one broker may go
        target = urlsplit(self.admin_dsn)
        self.relay = TcpProxy(target.hostname, target.port)
        await self.relay.start()
        try:
            admin = await asyncpg.connect(self.admin_dsn)
            try:
                for name in (self.database, self.reference):
                    await admin.execute(f'CREATE DATABASE "{name}"')
                    await migrate(self.dsn(name))
            finally:
                await admin.close()
            await kafka.create_topics([NewTopic(self.topic, 3, factor, topic_configs={"max.message.bytes": str(BIG)}),
                                       NewTopic(self.dlq, 1, factor)])
            self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                                              max_request_size=BIG, linger_ms=5)
            await self._producer.start()
            self.replicas = [Replica(self._replica_env(i), self.workdir / f"replica-{i}.log") for i in range(3)]
            order = fault_order(self.kinds, self.rounds, self.rng)
            for number, fault in enumerate(order, 1):
                await self._round(number, fault, kafka)
            await self._publish(self.records_per_round)  # a last round with no fault
            await self._drain()
            return await self._verdict()
        finally:
            for replica in self.replicas:
                if replica.alive():
                    replica.process.send_signal(signal.SIGCONT)
                    replica.process.kill()
            if self._producer is not None:
                await self._producer.stop()
            self.relay.thaw()
            await self.relay.cut()
            with _quiet():
                await kafka.delete_topics([self.topic, self.dlq])
            await kafka.close()
            admin = await asyncpg.connect(self.admin_dsn)  # a new one: the run restarts the server
            try:
                for name in (self.database, self.reference):
                    await drop_database(admin, name)
            finally:
                await admin.close()

    def _replica_env(self, index: int) -> dict[str, str]:
        return {**os.environ, "OCPP_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "OCPP_KAFKA_TOPICS": self.topic,
                "OCPP_KAFKA_GROUP_ID": self.group, "OCPP_DLQ_TOPIC": self.dlq,
                "OCPP_DATABASE_URL": self.dsn(self.database, self.relay.port), "OCPP_METRICS_PORT": "0",
                "OCPP_BATCH_MAX_WAIT_MS": "100", "OCPP_RETRY_MAX_SECONDS": "2", "OCPP_BATCH_MAX_RECORDS": "2000",
                "OCPP_SHUTDOWN_TIMEOUT_SECONDS": "10"}

    async def _round(self, number: int, fault: str, kafka: AIOKafkaAdminClient) -> None:
        started = time.monotonic()
        publishing = asyncio.create_task(self._publish(self.records_per_round, with_hostile=number % 2 == 1))
        await asyncio.sleep(self.round_seconds / 4)
        detail = await self._inject(fault, kafka)
        await publishing
        self.faults[fault] += 1
        while time.monotonic() - started < self.round_seconds:
            await self._supervise()
            await asyncio.sleep(0.5)
        await self._sample()
        print(f"chaos: round {number:3d} {fault:<17} published {self.published.count:>7,}  "
              f"restarts {self.restarts}  regressed {self.regressed}"
              f"{f'  ({detail})' if detail else ''}", flush=True)

    async def _inject(self, fault: str, kafka: AIOKafkaAdminClient) -> str | None:
        """Apply one fault; what it hit, when that is worth printing (which broker, and who took over)."""
        if fault == "replica_kill":
            victim = self.rng.choice(self.replicas)
            victim.process.kill()
            victim.process.wait()
            victim.start()
        elif fault == "replica_pause":
            victim = self.rng.choice(self.replicas)
            victim.process.send_signal(signal.SIGSTOP)
            await self._wait(SESSION_TIMEOUT_SECONDS + 3)
            victim.process.send_signal(signal.SIGCONT)
        elif fault == "postgres_restart":
            cluster = _pg_cluster(urlsplit(self.admin_dsn).port)
            await asyncio.to_thread(subprocess.run, ["pg_ctlcluster", *cluster, "restart", "-m", "fast"], check=True,
                                    capture_output=True)
        elif fault == "database_cut":
            await self.relay.cut()
            await self._wait(5)
            await self.relay.restore()
        elif fault == "broker_restart":
            return await self.brokers.restart()
        elif fault == "leader_stop":
            return await self.brokers.leader_stop(self.topic, self.rng)
        elif fault == "coordinator_stop":
            return await self.brokers.coordinator_stop(self.group)
        elif fault == "partitions_added":
            described = await kafka.describe_topics([self.topic])
            await kafka.create_partitions({self.topic: NewPartitions(len(described[0]["partitions"]) + 1)})
        else:
            raise ValueError(fault)
        return None

    async def _wait(self, seconds: float) -> None:
        """Wait while still restarting replicas that exit (a fault may make one stop: it must come back)."""
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            await self._supervise()
            await asyncio.sleep(0.2)

    async def _supervise(self) -> None:
        for replica in self.replicas:
            if not replica.alive():
                self.restarts += 1
                replica.start()

    # ------------------------------------------------------------------------------------------ the feed

    async def _publish(self, count: int, *, with_hostile: bool = False) -> None:
        sends = [{"key": key, "value": value} for key, value in (next(self.feed) for _ in range(count))]
        if with_hostile:
            sends += hostile_records(self.rng)
        self.rng.shuffle(sends)
        pace = self.round_seconds / 2 / max(len(sends), 1)
        for record in sends:
            while True:
                try:
                    future = await self._producer.send(self.topic, **record)
                    metadata = await future
                    break
                except Exception:  # the broker is restarting: the gateway would retry too
                    await asyncio.sleep(0.5)
            self.published.count += 1
            result = decode(record["value"], record["key"], record_timestamp_ms=metadata.timestamp)
            if isinstance(result, Rejection):
                self.published.invalid.add((metadata.partition, metadata.offset))
            elif not isinstance(result, Ignored):
                self.published.valid.append((record["key"], record["value"], metadata.timestamp))
            await asyncio.sleep(pace)

    # ------------------------------------------------------------------------------------------ checks

    async def _sample(self) -> None:
        """Every row's version must only ever move forward, in the order the writes themselves use."""
        conn = await asyncpg.connect(self.dsn(self.database))
        try:
            rows = await conn.fetch(
                "SELECT 'cp' AS t, serial_number AS k, ARRAY[boot_effective_at, boot_received_at, status_effective_at,"
                " status_received_at, last_heartbeat, last_updated] AS v, ARRAY[boot_event_id, boot_digest,"
                " status_event_id, status_digest] AS i FROM charge_point UNION ALL "
                "SELECT 'c', charge_point_id || '/' || connector_id, ARRAY[last_updated, status_received_at], "
                "ARRAY[status_event_id, status_digest] FROM connector")
        except (OSError, asyncpg.PostgresError):
            return  # the database is being restarted by this very round; the next sample covers it
        finally:
            await conn.close()
        for row in rows:
            key, now = (row["t"], row["k"]), versions(row["t"], row["v"], row["i"])
            before = self._versions.get(key)
            if before is not None and older(before, now):
                self.regressed += 1
                shown = [[[str(value) for _, value in part] for part in version] for version in (before, now)]
                print(f"chaos: regressed {key}: {shown[0]} -> {shown[1]}", flush=True)
            self._versions[key] = now

    async def _drain(self) -> None:
        """Everything restored, wait until the group has committed every partition to its end."""
        self.relay.thaw()
        await self.relay.restore()
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        consumer_group = self.group
        deadline = time.monotonic() + 300
        try:
            while time.monotonic() < deadline:
                await self._supervise()
                from aiokafka import AIOKafkaConsumer

                probe = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
                await probe.start()
                try:
                    partitions = [p for p in (await admin.describe_topics([self.topic]))[0]["partitions"]]
                    from aiokafka import TopicPartition

                    tps = [TopicPartition(self.topic, p["partition"]) for p in partitions]
                    ends = await probe.end_offsets(tps)
                finally:
                    await probe.stop()
                offsets = await admin.list_consumer_group_offsets(consumer_group)
                committed = {tp: meta.offset for tp, meta in offsets.items()}
                behind = {tp.partition: (committed.get(tp), end) for tp, end in ends.items()
                          if end > 0 and (committed.get(tp) or 0) < end}
                if not behind:
                    return
                await asyncio.sleep(1)
            raise TimeoutError(f"the replicas did not drain the topic within 300 s after the last fault; "
                               f"partition: (committed, end) {behind}")
        finally:
            await admin.close()

    async def _verdict(self) -> dict:
        reference = await asyncpg.connect(self.dsn(self.reference))
        actual = await asyncpg.connect(self.dsn(self.database))
        try:
            events = [decode(value, key, record_timestamp_ms=stamp) for key, value, stamp in self.published.valid]
            await apply_events(reference, events)
            expected_rows, actual_rows = await _rows(reference), await _rows(actual)
        finally:
            await reference.close()
            await actual.close()
        lost = sum(1 for key, row in expected_rows.items() if actual_rows.get(key) != row)
        letters = await _dead_letters(self.bootstrap, self.dlq)
        missing = len(self.published.invalid - letters)
        return {
            "rounds": self.rounds, "faults": dict(self.faults), "published": self.published.count,
            "valid": len(self.published.valid), "missing_dead_letters": missing, "lost": lost,
            "regressed": self.regressed, "tables_equal": expected_rows == actual_rows, "restarts": self.restarts,
            "brokers": self.brokers.count,
        }


def versions(table: str, times: list, ids: list) -> tuple:
    """A row's versions as sql/queries/state.sql orders them, each a tuple compared left to right: for a
    charge point (boot effective, received, event id, digest), the same for its status, last_heartbeat and
    last_updated; for a port (last_updated, status_received_at, event id, digest). A newer version may carry an
    older received_at (a later effective time wins whatever its receipt), so no column alone must only grow."""
    if table == "cp":
        boot_at, boot_received, status_at, status_received, heartbeat, updated = times
        boot_id, boot_digest, status_id, status_digest = ids
        parts = [(boot_at, boot_received, boot_id, boot_digest), (status_at, status_received, status_id, status_digest),
                 (heartbeat,), (updated,)]
    else:
        parts = [(*times, *ids)]
    # NULL sorts first, as the writes' coalesce(…, '-infinity') does; (False, None) pairs never compare None.
    return tuple(tuple((value is not None, value) for value in part) for part in parts)


def older(before: tuple, now: tuple) -> bool:
    """Whether any of a row's versions went back between two samples: a regression."""
    return any(n < b for b, n in zip(before, now))


async def _rows(conn: asyncpg.Connection) -> dict:
    """Every row of the state tables by key, without charge_point.id (numbered in arrival order)."""
    out = {}
    for row in await conn.fetch("SELECT * FROM charge_point"):
        out[("charge_point", row["serial_number"])] = {k: v for k, v in row.items() if k != "id"}
    for row in await conn.fetch("SELECT * FROM connector"):
        out[("connector", row["charge_point_id"], row["connector_id"])] = dict(row)
    return out


async def _dead_letters(bootstrap: str, topic: str) -> set:
    """(source partition, source offset) of every dead letter."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    found = set()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=2000)
            if not batch:
                return found
            for records in batch.values():
                for record in records:
                    headers = dict(record.headers or ())
                    found.add((int(headers["ocpp.source.partition"]), int(headers["ocpp.source.offset"])))
    finally:
        await consumer.stop()


def _pg_cluster(port: int) -> list[str]:
    """The (version, name) of the Debian cluster listening on `port`."""
    out = subprocess.run(["pg_lsclusters", "-h"], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        version, name, cluster_port, *_ = line.split()
        if int(cluster_port) == port:
            return [version, name]
    raise RuntimeError(f"no PostgreSQL cluster listens on port {port}")


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS") or 0) or None,
                        help="default: two of each fault kind")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SEED") or 7))
    parser.add_argument("--round-seconds", type=float, default=20)
    parser.add_argument("--records-per-round", type=int, default=2000)
    parser.add_argument("--faults", help="comma-separated subset of: " + ", ".join(ALL_FAULTS) + f" (the last "
                        f"{len(ALL_FAULTS) - len(FAULTS)} only with the {CLUSTER_SIZE}-broker cluster); default: all "
                        "the stack can take")
    args = parser.parse_args(argv)
    requested = None if args.faults is None else [f.strip() for f in args.faults.split(",") if f.strip()]
    try:
        faults = select_faults(requested, len(stack_brokers()))
    except FaultError as exc:
        parser.error(str(exc))
    rounds = args.rounds or 2 * len(faults)
    workdir = Path(os.environ.get("OCPP_STACK_DIR") or ROOT / ".stack") / "chaos"
    workdir.mkdir(parents=True, exist_ok=True)
    chaos = Chaos(bootstrap=os.environ["OCPP_KAFKA_BOOTSTRAP_SERVERS"], admin_dsn=os.environ["OCPP_DATABASE_URL"],
                  rounds=rounds, seed=args.seed, round_seconds=args.round_seconds,
                  records_per_round=args.records_per_round, workdir=workdir, faults=faults)
    result = asyncio.run(chaos.run())
    print(f"{'rounds':<22}{result['rounds']}")
    for kind in faults:
        print(f"  {kind:<20}{result['faults'].get(kind, 0)}")
    for key in ("published", "valid", "missing_dead_letters", "lost", "regressed", "tables_equal", "restarts",
                "brokers"):
        print(f"{key:<22}{result[key]}")
    print(json.dumps(result))
    ok = not result["missing_dead_letters"] and not result["lost"] and not result["regressed"] and result["tables_equal"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
