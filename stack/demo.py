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
from consumer.tools.simulate.publish import ensure_topic
from consumer.tools.support import committed_offsets

FEED = ["--charge-points", "200", "--connectors", "2", "--count", "20000", "--ocpp201-fraction", "0.4",
        "--ocpp21-fraction", "0.15", "--two-connector-fraction", "0.3", "--notify-event-fraction", "0.3",
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
        print("charge points by OCPP version (of their BootNotification):")
        for row in await conn.fetch(
            "SELECT coalesce(ocpp_version, '(no boot yet)') AS version, count(*), count(hardware_serial) AS serials "
            "FROM charge_point GROUP BY 1 ORDER BY 1"
        ):
            print(f"  {row['version']:<20} {row['count']:>6}  ({row['serials']} with a serial number)")
        print("ports by the OCPP family of their newest status:")
        for row in await conn.fetch(
            "SELECT status_family, count(*) FROM connector GROUP BY 1 ORDER BY 1"
        ):
            print(f"  {row['status_family']:<20} {row['count']:>6}")
        print("EVSEs with two connectors (first 5): the port and each connector")
        for row in await conn.fetch(
            "SELECT c.charge_point_id, c.connector_id, c.status, "
            "       string_agg(ec.connector_id || '=' || ec.status, ' ' ORDER BY ec.connector_id) AS connectors "
            "FROM connector AS c JOIN evse_connector AS ec "
            "  ON ec.charge_point_id = c.charge_point_id AND ec.evse_id = c.connector_id "
            "GROUP BY 1, 2, 3 HAVING count(*) > 1 ORDER BY (c.status = 'OCCUPIED') DESC, 1, 2 LIMIT 5"
        ):
            print(f"  {row['charge_point_id']}/{row['connector_id']}  {row['status']:<12} {row['connectors']}")
        print("ports for roaming partners (port_roaming_status):")
        for row in await conn.fetch(
            "SELECT ocpi_status, afir_operational, afir_in_use, count(*) FROM port_roaming_status "
            "GROUP BY 1, 2, 3 ORDER BY 4 DESC"
        ):
            print(f"  {row['ocpi_status']:<12} operational={row['afir_operational']!s:<5} "
                  f"in use={row['afir_in_use']!s:<5} {row['count']:>6}")
    finally:
        await conn.close()


def main() -> int:
    settings = Settings()
    dsn = settings.database_url.get_secret_value()
    applied = asyncio.run(migrate(dsn))
    print(f"migrations applied: {', '.join(applied) or 'none (up to date)'}")
    run("simulate", *FEED)
    # Made beforehand, as an operator makes it (managed brokers seldom auto-create topics): left to the broker's
    # auto-creation, the consumer's start-up check of it logs aiokafka's "not found in cluster metadata" error
    # line for the broker's first answer, which is noise in a demo.
    if asyncio.run(ensure_topic(settings.kafka_bootstrap_servers, settings.dlq_topic, 1)):
        print(f"created the dead-letter topic {settings.dlq_topic}")
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
