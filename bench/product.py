"""The product under test, seen from outside: its process, its consumer group's lag, its /metrics.

The benchmark runs `ocpp-consumer run` as a subprocess, exactly as an operator would, and measures it only
through what an operator can see (committed offsets, the Prometheus endpoint, the OS process), so the figures
cannot be flattered by shortcuts inside the process.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from consumer.tools.support import committed_offsets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# `python -m consumer` is the `ocpp-consumer` entry point, without needing the console script installed.
OCPP_CONSUMER = [sys.executable, "-m", "consumer"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def product_env(**ocpp: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_")}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update({f"OCPP_{k.upper()}": str(v) for k, v in ocpp.items()})
    return env


def migrate(database_url: str) -> None:
    """`ocpp-consumer migrate` on a database, as a deployment would."""
    subprocess.run(
        [*OCPP_CONSUMER, "migrate"], env=product_env(database_url=database_url), cwd=ROOT, check=True,
        stdout=subprocess.DEVNULL, timeout=120,
    )


def start_consumer(log_path: str, **ocpp: str) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [*OCPP_CONSUMER, "run"], env=product_env(**ocpp), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )


def stop_consumer(process: subprocess.Popen, timeout: float = 30) -> int:
    """SIGTERM (the graceful stop), then SIGKILL if it does not leave in time; returns the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class LagProbe:
    """The group's lag as an operator computes it: end offsets minus committed offsets, summed over partitions."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.topic, self.group = topic, group
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        self._partitions: list[TopicPartition] = []

    async def start(self) -> None:
        await self._admin.start()
        await self._consumer.start()
        await self._consumer._client.force_metadata_update()
        self._partitions = [TopicPartition(self.topic, p) for p in sorted(self._consumer.partitions_for_topic(self.topic))]

    async def close(self) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def committed(self) -> int:
        offsets = await committed_offsets(self._admin, self.group)
        return sum(offset for tp, offset in offsets.items() if tp.topic == self.topic)

    async def end(self) -> int:
        return sum((await self._consumer.end_offsets(self._partitions)).values())

    async def lag(self) -> tuple[int, int]:
        """(lag, committed)."""
        committed, end = await asyncio.gather(self.committed(), self.end())
        return end - committed, committed


# Every table of the schema with what it takes on disk: heap and TOAST, and its indexes, a partitioned table summed
# over its partitions (status_history's months and its DEFAULT partition), as an operator sizing a disk adds it.
SIZES = """
    WITH tables AS (
        SELECT coalesce(root.relname, c.relname) AS name, c.oid
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        LEFT JOIN pg_class AS root ON root.oid = pg_partition_root(c.oid)  -- NULL unless in a partition tree
        WHERE n.nspname = current_schema() AND c.relkind = 'r'
    )
    SELECT name, sum(pg_table_size(oid))::bigint AS table_bytes, sum(pg_indexes_size(oid))::bigint AS index_bytes
    FROM tables GROUP BY name ORDER BY name
"""


async def database_sizes(database_url: str) -> dict:
    """What the product's database takes on disk: {"db_bytes", "table_bytes", "index_bytes", "tables": {name:
    {"table_bytes", "index_bytes"}}}. Read after a run, to size the disk a fleet needs."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(SIZES)
        db_bytes = await conn.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await conn.close()
    tables = {r["name"]: {"table_bytes": r["table_bytes"], "index_bytes": r["index_bytes"]} for r in rows}
    return {
        "db_bytes": db_bytes,
        "table_bytes": sum(t["table_bytes"] for t in tables.values()),
        "index_bytes": sum(t["index_bytes"] for t in tables.values()),
        "tables": tables,
    }


BUCKET = re.compile(r'^ocpp_event_commit_latency_seconds_bucket\{(?:[^}]*,)?le="([^"]+)"[^}]*\}\s+(\S+)', re.M)


def latency_buckets(port: int) -> dict[float, float]:
    """Cumulative counts of the commit-latency histogram, by upper bound (le), from /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    buckets: dict[float, float] = {}
    for le, count in BUCKET.findall(text):
        bound = math.inf if le == "+Inf" else float(le)
        buckets[bound] = buckets.get(bound, 0.0) + float(count)
    if not buckets:
        raise RuntimeError("the consumer exports no ocpp_event_commit_latency_seconds histogram")
    return buckets


def quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The q-quantile of the observations made between two readings, interpolated within its bucket.

    The same estimate Prometheus' histogram_quantile makes; a quantile in the +Inf bucket is reported as the
    largest finite bound (a lower bound of the truth).
    """
    bounds = sorted(after)
    cumulative = [after[b] - before.get(b, 0.0) for b in bounds]
    total = cumulative[-1]
    if total <= 0:
        return math.nan
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in zip(bounds, cumulative):
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (count - previous_count)
        previous_bound, previous_count = bound, count
    return previous_bound
