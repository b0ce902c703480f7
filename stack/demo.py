"""`make demo`: the main job end to end on the local stack, then a look at what landed.

migrate → publish a simulated gateway feed → run the consumer until it has caught up → stop it with SIGTERM
→ print the tables as an analyst would query them. Uses the configured topic, group and database, so running
it twice continues where the first run stopped, as a real deployment would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from consumer.migrate import migrate
from consumer.settings import Settings
from consumer.tools.support import committed_offsets

FEED = ["--charge-points", "200", "--connectors", "2", "--count", "20000", "--ocpp201-fraction", "0.4",
        "--duplicates", "0.02", "--out-of-order", "0.02", "--wrong-clocks", "0.02", "--invalid", "0.005",
        "--partitions", "3"]


def run(*args: str) -> None:
    print(f"$ ocpp-consumer {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "consumer", *args], check=True)


async def lag(settings: Settings) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    # Subscribed (without a group) only so that its metadata covers the topics' partitions.
    consumer = AIOKafkaConsumer(*settings.topics, bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    await consumer.start()
    try:
        done = await committed_offsets(admin, settings.kafka_group_id)
        partitions = [TopicPartition(t, p) for t in settings.topics for p in consumer.partitions_for_topic(t) or ()]
        if not partitions:
            raise RuntimeError(f"no partitions found for {settings.topics}")
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
        await admin.close()
    return sum(end - done.get(tp, 0) for tp, end in ends.items())


async def report(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        print("\ncharge points by status:")
        for row in await conn.fetch(
            "SELECT coalesce(status, '(none yet)') AS status, count(*) FROM charge_point GROUP BY 1 ORDER BY 2 DESC"
        ):
            print(f"  {row['status']:<20} {row['count']:>6}")
        print("connectors by status:")
        for row in await conn.fetch("SELECT status, count(*) FROM connector GROUP BY 1 ORDER BY 2 DESC"):
            print(f"  {row['status']:<20} {row['count']:>6}")
        print("faulted connectors (first 5):")
        for row in await conn.fetch(
            "SELECT charge_point_id, connector_id, error_code, last_updated FROM connector "
            "WHERE status = 'FAULTED' ORDER BY last_updated DESC LIMIT 5"
        ):
            print(f"  {row['charge_point_id']}/{row['connector_id']}  {row['error_code']}  {row['last_updated']:%Y-%m-%d %H:%M:%S%z}")
        row = await conn.fetchrow(
            "SELECT count(*) AS cps, count(model) AS booted, max(last_heartbeat) AS hb FROM charge_point"
        )
        print(f"{row['cps']} charge points, {row['booted']} with a BootNotification, newest heartbeat {row['hb']}")
    finally:
        await conn.close()


def main() -> int:
    settings = Settings()
    dsn = settings.database_url.get_secret_value()
    applied = asyncio.run(migrate(dsn))
    print(f"migrations applied: {', '.join(applied) or 'none (up to date)'}")
    run("simulate", *FEED)
    print("$ ocpp-consumer run   (until it has caught up, then SIGTERM)", flush=True)
    consumer = subprocess.Popen([sys.executable, "-m", "consumer", "run"], env={**os.environ, "OCPP_METRICS_PORT": "0"})
    try:
        deadline = time.monotonic() + 300
        while (remaining := asyncio.run(lag(settings))) > 0:
            if consumer.poll() is not None or time.monotonic() > deadline:
                print(f"consumer stopped or stalled with {remaining} records to go", file=sys.stderr)
                return 1
            time.sleep(0.5)
    finally:
        consumer.send_signal(signal.SIGTERM)
        consumer.wait(timeout=60)
    print(f"consumer exited with status {consumer.returncode}")
    asyncio.run(report(dsn))
    return consumer.returncode


if __name__ == "__main__":
    sys.exit(main())
