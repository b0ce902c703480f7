"""The benchmark: `make bench` (QUICK=1 for a short run). One run on the local stack, a table, then one JSON line.

Run from the repository root as `python -m bench.bench` (what `make bench` does), with the stack's addresses
in OCPP_KAFKA_BOOTSTRAP_SERVERS and OCPP_DATABASE_URL.

Phases, in order, all on one topic filled once with a simulated backlog:
  a. the machine's limits: aiokafka consume-only, PostgreSQL upserts of the same coalesced rows without Kafka;
  b. the naive baseline (bench/naive_consumer.py) on a slice: a transaction and an offset commit per message;
  c. the product catching up on the backlog, from the first commit to zero lag;
  d. the product live at a fixed offered rate: commit latency from its Prometheus histogram, and its lag;
  e. the product's peak RSS and CPU seconds per 1,000 events.
Everything it creates (topics, databases, the consumer process) is removed at the end, also on failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from urllib.parse import urlsplit, urlunsplit

import aiokafka
import asyncpg
import psutil
from aiokafka.admin import AIOKafkaAdminClient

from bench import limits, naive_consumer, product
from consumer.settings import Settings
from consumer.tools.simulate import Feed, FeedConfig, ensure_topic, publish
from consumer.tools.support import drop_database

QUICK = os.environ.get("QUICK", "") not in ("", "0")
BOOTSTRAP = os.environ.get("OCPP_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
ADMIN_DSN = os.environ.get("OCPP_DATABASE_URL", "postgresql://ocpp:ocpp@127.0.0.1:5433/ocpp")

CHARGE_POINTS, CONNECTORS, PARTITIONS = 10_000, 2, 6
BACKLOG = 100_000 if QUICK else 1_000_000
NAIVE_SLICE = 5_000 if QUICK else 10_000  # ~115 events/s: a larger slice only takes longer
LIVE_RATE, LIVE_SECONDS = 5_000, (20 if QUICK else 60)
POLL_SECONDS = 0.25
# A realistic backlog: some duplicates, late deliveries, wrong clocks and invalid records.
BACKLOG_FEED = dict(charge_points=CHARGE_POINTS, connectors=CONNECTORS, ocpp201_fraction=0.3, heartbeat_interval=60,
                    duplicates=0.01, out_of_order=0.005, wrong_clocks=0.01, invalid=0.001, seed=42,
                    ocpp16_charger_precision="s")  # real 1.6 chargers stamp whole seconds: same-second ties
TARGETS = {  # key: (comparison, target, label)
    "catchup_events_per_s": (">=", 50_000, "catch-up events/s"),
    "speedup_vs_naive": (">=", 25, "ours ÷ naive"),
    "fraction_of_consume_limit": (">=", 0.5, "ours ÷ consume-only"),
    "live_p99_ms": ("<=", 200, "live p99 latency, ms"),
    "peak_rss_mb": ("<=", 200, "peak RSS, MB"),
}


def log(line: str) -> None:
    print(f"bench: {line}", file=sys.stderr, flush=True)


def show_log(path: str, lines: int = 40) -> None:
    """On failure, the end of the consumer's log says why; the file itself is removed with the rest."""
    if os.path.exists(path):
        with open(path, errors="replace") as f:
            tail = f.readlines()[-lines:]
        log(f"last {len(tail)} lines of the consumer's log:\n" + "".join(tail))


def dsn_for(database: str) -> str:
    return urlunsplit(urlsplit(ADMIN_DSN)._replace(path=f"/{database}"))


async def main() -> dict:
    figures: dict = {}
    run = uuid.uuid4().hex[:10]
    topic, dlq = f"bench-{run}", f"bench-{run}.dlq"
    settings = Settings()
    workdir = tempfile.mkdtemp(prefix="ocpp-bench-")
    consumer_log = os.path.join(workdir, "consumer.log")
    async with AsyncExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)

        def show_log_on_failure(kind, error, traceback) -> bool:
            if error is not None:
                show_log(consumer_log)
            return False  # never swallow the error

        cleanup.push(show_log_on_failure)
        admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        await admin.start()
        cleanup.push_async_callback(admin.close)
        pg = await asyncpg.connect(ADMIN_DSN)
        cleanup.push_async_callback(pg.close)

        async def new_database(name: str) -> str:
            await pg.execute(f'CREATE DATABASE "{name}"')
            cleanup.push_async_callback(drop_database, pg, name)
            product.migrate(dsn_for(name))
            return dsn_for(name)

        figures["setup"] = {
            "cpus": os.cpu_count(), "python": platform.python_version(), "aiokafka": aiokafka.__version__,
            "asyncpg": asyncpg.__version__, "postgresql": await pg.fetchval("SHOW server_version"),
            "quick": QUICK, "backlog_events": BACKLOG, "naive_events": NAIVE_SLICE, "partitions": PARTITIONS,
            "charge_points": CHARGE_POINTS, "connectors": CONNECTORS,
            "live_rate": LIVE_RATE, "live_seconds": LIVE_SECONDS, "batch_max_records": settings.batch_max_records,
        }

        # ------------------------------------------------------------------ the backlog
        await ensure_topic(BOOTSTRAP, topic, PARTITIONS)
        await ensure_topic(BOOTSTRAP, dlq, 1)
        cleanup.push_async_callback(admin.delete_topics, [topic, dlq])
        # Simulated time ends about now, so the live phase's events are newer than the backlog's.
        start = time.time() - 2 * BACKLOG / (CHARGE_POINTS * 0.028)
        backlog = FeedConfig(**BACKLOG_FEED, start=start)
        log(f"publishing a backlog of {BACKLOG:,} events to {topic} ({PARTITIONS} partitions)")
        started = time.perf_counter()
        await publish(iter(Feed(backlog)), bootstrap=BOOTSTRAP, topic=topic, count=BACKLOG)
        figures["publish_events_per_s"] = BACKLOG / (time.perf_counter() - started)

        # ------------------------------------------------------------------ a. limits
        log("consume-only limit")
        figures["consume_only_events_per_s"] = await limits.consume_only(BOOTSTRAP, topic, BACKLOG, settings)
        log("PostgreSQL upsert limit")
        dsn = await new_database(f"bench_{run}_pg")
        rows, events, seconds = await limits.pg_upsert(
            dsn, limits.decoded_batches(iter(Feed(backlog)), BACKLOG, settings)
        )
        figures["pg_upsert_rows_per_s"] = rows / seconds
        figures["pg_upsert_events_per_s"] = events / seconds

        # ------------------------------------------------------------------ b. the naive baseline
        log(f"naive baseline on {NAIVE_SLICE:,} events")
        dsn = await new_database(f"bench_{run}_naive")
        figures["naive_events_per_s"] = await naive_consumer.run(
            bootstrap=BOOTSTRAP, topic=topic, group=f"bench-{run}-naive", database_url=dsn, limit=NAIVE_SLICE,
            settings=settings,
        )

        # ------------------------------------------------------------------ c-e. the product
        dsn = await new_database(f"bench_{run}_ours")
        group, port = f"bench-{run}-ours", product.free_port()
        log("starting the consumer")
        process = product.start_consumer(
            consumer_log, kafka_bootstrap_servers=BOOTSTRAP, database_url=dsn, kafka_topics=topic,
            kafka_group_id=group, metrics_port=port, dlq_topic=dlq, log_level="WARNING",
        )
        cleanup.callback(product.stop_consumer, process)
        probe = product.LagProbe(BOOTSTRAP, topic, group)
        await probe.start()
        cleanup.push_async_callback(probe.close)
        watched = psutil.Process(process.pid)
        peak_rss = 0

        def sample():
            nonlocal peak_rss
            if process.poll() is not None:
                raise RuntimeError(f"the consumer exited with status {process.returncode}")
            peak_rss = max(peak_rss, watched.memory_info().rss)
            return watched.cpu_times()

        log("catch-up")
        spawned = time.perf_counter()
        first = None  # (time, committed, cpu seconds) when the first commit is seen
        deadline = spawned + max(300, BACKLOG / 2_000)
        while True:
            cpu = sample()
            lag, committed = await probe.lag()
            now = time.perf_counter()
            if first is None and committed > 0:
                first = (now, committed, cpu.user + cpu.system)
            if lag == 0 and committed > 0:
                break
            if now > deadline:
                raise RuntimeError(f"catch-up did not finish in {deadline - spawned:.0f}s (lag {lag})")
            await asyncio.sleep(POLL_SECONDS)
        drained = now
        # From the first commit seen, so that starting up and joining the group are not counted against the rate.
        events = committed - first[1]
        figures["catchup_events_per_s"] = events / (drained - first[0]) if events else BACKLOG / (drained - spawned)
        figures["catchup_wall_seconds_from_start"] = drained - spawned
        figures["cpu_seconds_per_1000_events"] = (cpu.user + cpu.system - first[2]) / max(events, 1) * 1000

        log(f"live: {LIVE_RATE:,} events/s for {LIVE_SECONDS}s")
        before = product.latency_buckets(port)
        live = Feed(FeedConfig(charge_points=CHARGE_POINTS, connectors=CONNECTORS, ocpp201_fraction=0.3, seed=43,
                               start=time.time(), ocpp16_charger_precision="s"))
        records = iter(live)
        while live.now < live.config.start + 120:  # past the boot storm: a fleet in its steady state
            next(records)
        live.clock = lambda _: time.time()
        offered = asyncio.create_task(
            publish(records, bootstrap=BOOTSTRAP, topic=topic, rate=LIVE_RATE, duration=LIVE_SECONDS)
        )
        max_lag = 0
        while not offered.done():
            sample()
            max_lag = max(max_lag, (await probe.lag())[0])
            await asyncio.sleep(0.5)
        sent = await offered
        settle = time.perf_counter() + 30
        while (lag := (await probe.lag())[0]) > 0 and time.perf_counter() < settle:
            sample()
            await asyncio.sleep(POLL_SECONDS)
        after = product.latency_buckets(port)
        figures["live_offered_events_per_s"] = sent / LIVE_SECONDS
        figures["live_p50_ms"] = product.quantile(before, after, 0.50) * 1000
        figures["live_p99_ms"] = product.quantile(before, after, 0.99) * 1000
        figures["live_events_observed"] = after[max(after)] - before.get(max(after), 0)
        figures["live_max_lag"] = max_lag
        figures["live_final_lag"] = lag
        sample()
        figures["peak_rss_mb"] = peak_rss / 2**20
        figures["consumer_exit_status"] = product.stop_consumer(process)

    figures["speedup_vs_naive"] = figures["catchup_events_per_s"] / figures["naive_events_per_s"]
    figures["fraction_of_consume_limit"] = figures["catchup_events_per_s"] / figures["consume_only_events_per_s"]
    return figures


def report(f: dict) -> None:
    s = f["setup"]
    print(f"setup: {s['cpus']} CPUs, Python {s['python']}, aiokafka {s['aiokafka']}, asyncpg {s['asyncpg']}, "
          f"PostgreSQL {s['postgresql']}; {'QUICK' if s['quick'] else 'full'} run")
    print(f"       backlog {s['backlog_events']:,} events over {s['charge_points']:,} charge points × "
          f"{s['connectors']} connectors, {s['partitions']} partitions; naive slice {s['naive_events']:,}; "
          f"live {s['live_rate']:,}/s for {s['live_seconds']}s; consumer batches of ≤ {s['batch_max_records']:,}")
    rows = [
        ("backlog publish (simulator)", f"{f['publish_events_per_s']:,.0f} events/s", None),
        ("consume-only limit (aiokafka)", f"{f['consume_only_events_per_s']:,.0f} events/s", None),
        ("PostgreSQL upsert limit", f"{f['pg_upsert_rows_per_s']:,.0f} rows/s "
                                    f"({f['pg_upsert_events_per_s']:,.0f} events/s)", None),
        ("naive consumer", f"{f['naive_events_per_s']:,.0f} events/s", None),
        ("ours, catch-up", f"{f['catchup_events_per_s']:,.0f} events/s", "catchup_events_per_s"),
        ("ours, catch-up wall time", f"{f['catchup_wall_seconds_from_start']:,.1f} s from process start", None),
        ("ours ÷ naive", f"{f['speedup_vs_naive']:,.1f}×", "speedup_vs_naive"),
        ("ours ÷ consume-only", f"{f['fraction_of_consume_limit']:.2f}", "fraction_of_consume_limit"),
        ("ours, live offered", f"{f['live_offered_events_per_s']:,.0f} events/s", None),
        ("ours, live p50", f"{f['live_p50_ms']:,.1f} ms", None),
        ("ours, live p99", f"{f['live_p99_ms']:,.1f} ms", "live_p99_ms"),
        ("ours, live lag", f"max {f['live_max_lag']:,} events, {f['live_final_lag']:,} at the end", None),
        ("ours, peak RSS", f"{f['peak_rss_mb']:,.0f} MB", "peak_rss_mb"),
        ("ours, CPU per 1,000 events", f"{f['cpu_seconds_per_1000_events'] * 1000:,.1f} ms", None),
    ]
    print(f"{'figure':<32} {'value':<40} {'target':<12} result")
    for label, value, key in rows:
        target = result = ""
        if key:
            op, goal, _ = TARGETS[key]
            target = f"{op} {goal:,}"
            met = f[key] >= goal if op == ">=" else f[key] <= goal
            result = "pass" if met else "MISS"
        print(f"{label:<32} {value:<40} {target:<12} {result}")


if __name__ == "__main__":
    figures = asyncio.run(main())
    report(figures)
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in figures.items()}))
