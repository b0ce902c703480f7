"""The benchmark: `make bench` (QUICK=1 for a short run, FLEET=1 to add the fleet, SWEEP=1 for the fleet sweep).
One run on the local stack, a table per scenario, then one JSON line.

Run from the repository root as `python -m bench.bench` (what `make bench` does), with the stack's addresses
in OCPP_KAFKA_BOOTSTRAP_SERVERS and OCPP_DATABASE_URL.

Scenarios, each on a topic of its own filled once with a simulated backlog:
  * the default: 10,000 charge points × 2 connectors (always, except in a SWEEP-only run);
  * FLEET=1: also a fleet of 1,000,000 charge points × 3 connectors whose backlog is its boot storm, in the same
    run, so that every ratio between the two (CPU growth, fraction of the limit) is measured side by side;
  * SWEEP=1: 10,000, 100,000 and 1,000,000 charge points with one backlog size, catch-up only, plotted to a PNG.
Phases of a scenario, in order (a sweep point has only c and e):
  a. the pipeline's limits on the same records: aiokafka consume-only, pydantic validation-only, PostgreSQL
     upserts of the same coalesced rows without Kafka; their minimum is the pipeline limit (bench/limits.py);
  b. the naive baseline (bench/naive_consumer.py) on a slice: a transaction and an offset commit per message
     (default scenario only: its figure does not depend on the fleet);
  c. the product catching up on the backlog, from the first commit to zero lag;
  d. the product live at a fixed offered rate: commit latency from its Prometheus histogram, and its lag;
  e. the product's peak RSS and CPU seconds per 1,000 events; for the fleet also its database's size.
Everything it creates (topics, databases, the consumer process) is removed at the end of each scenario, also on
failure: at fleet scale a scenario's topic and database take gigabytes.

Sizes can be made smaller for a smoke run of the code (the figures of such a run mean little):
FLEET_CHARGE_POINTS, FLEET_EVENTS, FLEET_LIVE_RATE, FLEET_LIVE_SECONDS; SWEEP_CHARGE_POINTS (comma-separated),
SWEEP_EVENTS, and SWEEP_PNG (where the figure goes; its JSON goes beside it).
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
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aiokafka
import asyncpg
import psutil
from aiokafka.admin import AIOKafkaAdminClient

from bench import limits, naive_consumer, product, report_bench
from consumer.report import DEFAULT_JOBS as REPORT_JOBS
from consumer.settings import Settings
from consumer.tools.simulate import Feed, FeedConfig, ensure_topic, publish
from consumer.tools.support import drop_database


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def _size(name: str, default: int) -> int:
    """A size from the environment (underscores allowed: 1_000_000), else the default."""
    text = os.environ.get(name, "").strip()
    return int(text.replace("_", "")) if text else default


QUICK, FLEET, SWEEP = _flag("QUICK"), _flag("FLEET"), _flag("SWEEP")
BOOTSTRAP = os.environ.get("OCPP_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
ADMIN_DSN = os.environ.get("OCPP_DATABASE_URL", "postgresql://ocpp:ocpp@127.0.0.1:5433/ocpp")

CHARGE_POINTS, CONNECTORS, PARTITIONS = 10_000, 2, 6
BACKLOG = 100_000 if QUICK else 1_000_000
NAIVE_SLICE = 5_000 if QUICK else 10_000  # ~115 events/s: a larger slice only takes longer
LIVE_RATE, LIVE_SECONDS = 5_000, (20 if QUICK else 60)
POLL_SECONDS = 0.25
# A realistic backlog: some duplicates, late deliveries, wrong clocks and invalid records.
DEFECTS = dict(duplicates=0.01, out_of_order=0.005, wrong_clocks=0.01, invalid=0.001)
BACKLOG_FEED = dict(charge_points=CHARGE_POINTS, connectors=CONNECTORS, ocpp201_fraction=0.3, heartbeat_interval=60,
                    **DEFECTS, seed=42,
                    ocpp16_charger_precision="s")  # real 1.6 chargers stamp whole seconds: same-second ties

# The fleet (issue 15): a network's worst hour is its boot storm, when every charger reconnects, boots and reports
# each connector, so nearly every event is a new key. 1,000,000 charge points × 3 connectors boot within a minute,
# with about 5.6 records each (the boot, connectors 0-3, the pairs of two-connector EVSEs, duplicates and defects):
# 6,000,000 events are that whole storm, so every charge point and port is in the database, then the first
# heartbeats and status changes.
FLEET_CHARGE_POINTS = _size("FLEET_CHARGE_POINTS", 1_000_000)
FLEET_EVENTS = _size("FLEET_EVENTS", 6_000_000)
FLEET_LIVE_RATE = _size("FLEET_LIVE_RATE", 10_000)  # ~ the fleet's average (issue 15), with headroom
FLEET_LIVE_SECONDS = _size("FLEET_LIVE_SECONDS", 60)
# 30 % of charge points on 2.x: the simulator draws 2.1 over every charge point after 2.0.1, so 2/9 on 2.0.1 then
# 10 % on 2.1 leaves 70 % on 1.6 (7/9 × 9/10), 20 % on 2.0.1 and 10 % on 2.1. A quarter of the 2.x charge points
# have two-connector EVSEs (a DC charger's CCS and CHAdeMO, which report in pairs), a tenth report by NotifyEvent.
FLEET_FEED = dict(BACKLOG_FEED, charge_points=FLEET_CHARGE_POINTS, connectors=3, ocpp201_fraction=2 / 9,
                  ocpp21_fraction=0.1, two_connector_fraction=0.25, notify_event_fraction=0.1)
SWEEP_CHARGE_POINTS = [int(n.replace("_", "")) for n in
                       os.environ.get("SWEEP_CHARGE_POINTS", "10000,100000,1000000").split(",") if n.strip()]
SWEEP_EVENTS = _size("SWEEP_EVENTS", FLEET_EVENTS)  # so that its largest point is the fleet's catch-up
SWEEP_PNG = os.environ.get("SWEEP_PNG", "docs/fleet-sweep.png")

TARGETS = {  # key: (comparison, target, label); issue 15's targets
    "catchup_events_per_s": (">=", 50_000, "catch-up events/s"),
    "speedup_vs_naive": (">=", 25, "ours ÷ naive"),
    "fraction_of_pipeline_limit": (">=", 0.7, "ours ÷ pipeline limit"),
    "live_p99_ms": ("<=", 200, "live p99 latency, ms"),
    "peak_rss_mb": ("<=", 200, "peak RSS, MB"),
    "fleet_catchup_events_per_s": (">=", 50_000, "fleet catch-up events/s"),
    "fleet_fraction_of_pipeline_limit": (">=", 0.7, "fleet ours ÷ pipeline limit"),
    "fleet_peak_rss_mb": ("<=", 200, "fleet peak RSS, MB"),
    "fleet_cpu_growth": ("<=", 1.5, "fleet CPU per event ÷ the default scenario's"),
    "fleet_live_p99_ms": ("<=", 200, "fleet live p99 latency, ms"),
    "fleet_live_final_lag": ("<=", 0, "fleet live lag back to 0 after the phase (bounded)"),
    "fleet_report_seconds": ("<=", 60, "the month's uptime report over the fleet, s"),
    "sweep_peak_rss_mb": ("<=", 200, "peak RSS at every fleet size, MB"),
    "sweep_cpu_growth": ("<=", 1.5, "CPU per event, largest fleet ÷ smallest"),
}


@dataclass(frozen=True)
class Scenario:
    """One fleet, one backlog and what to measure on it."""

    name: str  # "default", "fleet", "sweep-<charge points>": names the topic and databases too
    feed: dict  # FeedConfig fields but `start`
    backlog: int
    limits: bool = True  # phase a
    naive: int = 0  # phase b's slice; 0: no naive baseline
    live_rate: int = 0  # phase d; 0: none
    live_seconds: int = 0
    sizes: bool = False  # the database's size after the run


STARTED = time.monotonic()


def log(line: str) -> None:
    """Progress, with the seconds since the run began: a fleet run is long, and its phases' durations are what
    one needs to plan the next."""
    print(f"bench: {time.monotonic() - STARTED:7.1f}s {line}", file=sys.stderr, flush=True)


def show_log(path: str, lines: int = 40) -> None:
    """On failure, the end of the consumer's log says why; the file itself is removed with the rest."""
    if os.path.exists(path):
        with open(path, errors="replace") as f:
            tail = f.readlines()[-lines:]
        log(f"last {len(tail)} lines of the consumer's log:\n" + "".join(tail))


def dsn_for(database: str) -> str:
    return urlunsplit(urlsplit(ADMIN_DSN)._replace(path=f"/{database}"))


def backlog_span(scenario: Scenario) -> float:
    """How far before now the backlog's simulated time starts, so that it ends in the past (a gateway cannot
    receive an event after Kafka stamped its record).

    The default scenario keeps the estimate its figures were measured with. A fleet's is an upper bound instead:
    every charge point heartbeats, and boots within the first heartbeat interval (at most 60 s), so the feed
    makes at least charge_points / heartbeat_interval events per simulated second; the minutes added cover the
    boot storm's announcements.
    """
    feed = scenario.feed
    if scenario.name == "default":
        return 2 * scenario.backlog / (feed["charge_points"] * 0.028)
    return 120 + scenario.backlog * feed["heartbeat_interval"] / feed["charge_points"]


async def run_scenario(scenario: Scenario, pg: asyncpg.Connection, settings: Settings) -> dict:
    """Every phase of one scenario (module doc); returns its figures, keys without the scenario's prefix."""
    f: dict = {}
    run = uuid.uuid4().hex[:10]
    label = scenario.name.replace("-", "_")
    topic, dlq = f"bench-{scenario.name}-{run}", f"bench-{scenario.name}-{run}.dlq"
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

        async def new_database(stack: AsyncExitStack, name: str) -> str:
            await pg.execute(f'CREATE DATABASE "{name}"')
            stack.push_async_callback(drop_database, pg, name)
            product.migrate(dsn_for(name))
            return dsn_for(name)

        # ------------------------------------------------------------------ the backlog
        await ensure_topic(BOOTSTRAP, topic, PARTITIONS)
        await ensure_topic(BOOTSTRAP, dlq, 1)
        cleanup.push_async_callback(admin.delete_topics, [topic, dlq])
        # Simulated time ends before now, so the live phase's events are newer than the backlog's.
        backlog = FeedConfig(**scenario.feed, start=time.time() - backlog_span(scenario))
        log(f"[{scenario.name}] publishing a backlog of {scenario.backlog:,} events over "
            f"{scenario.feed['charge_points']:,} charge points to {topic} ({PARTITIONS} partitions)")
        started = time.perf_counter()
        feed = Feed(backlog)
        await publish(iter(feed), bootstrap=BOOTSTRAP, topic=topic, count=scenario.backlog)
        f["publish_events_per_s"] = scenario.backlog / (time.perf_counter() - started)
        f["backlog_counts"] = dict(feed.counts)
        f["backlog_simulated_seconds"] = feed.now - backlog.start
        del feed  # a fleet's feed holds hundreds of MB

        # ------------------------------------------------------------------ a. limits
        if scenario.limits:
            log(f"[{scenario.name}] consume-only limit")
            f["consume_only_events_per_s"] = await limits.consume_only(BOOTSTRAP, topic, scenario.backlog, settings)
            log(f"[{scenario.name}] validation-only and PostgreSQL upsert limits")
            async with AsyncExitStack() as scratch:  # dropped at once: at fleet scale it takes gigabytes
                dsn = await new_database(scratch, f"bench_{run}_{label}_pg")
                validation = limits.ValidationOnly()
                rows, events, seconds = await limits.pg_upsert(
                    dsn, limits.decoded_batches(iter(Feed(backlog)), scenario.backlog, settings, validation)
                )
            f["validation_only_events_per_s"] = validation.events_per_s
            f["pg_upsert_rows"] = rows
            f["pg_upsert_rows_per_s"] = rows / seconds
            f["pg_upsert_events_per_s"] = events / seconds
            f["pipeline_limit_events_per_s"] = min(
                f["consume_only_events_per_s"], f["validation_only_events_per_s"], f["pg_upsert_events_per_s"]
            )

        # ------------------------------------------------------------------ b. the naive baseline
        if scenario.naive:
            log(f"[{scenario.name}] naive baseline on {scenario.naive:,} events")
            dsn = await new_database(cleanup, f"bench_{run}_{label}_naive")
            f["naive_events_per_s"] = await naive_consumer.run(
                bootstrap=BOOTSTRAP, topic=topic, group=f"bench-{run}-naive", database_url=dsn,
                limit=scenario.naive, settings=settings,
            )

        # ------------------------------------------------------------------ c-e. the product
        dsn = await new_database(cleanup, f"bench_{run}_{label}_ours")
        group, port = f"bench-{run}-ours", product.free_port()
        log(f"[{scenario.name}] starting the consumer")
        process = product.start_consumer(
            consumer_log, kafka_bootstrap_servers=BOOTSTRAP, database_url=dsn, kafka_topics=topic,
            kafka_group_id=group, metrics_port=port, dlq_topic=dlq, log_level="WARNING",
            # The product's environment has no OCPP_* of the bench's own: the batch settings the limits and the
            # setup line use are passed on, so that a run with other settings measures them everywhere.
            batch_max_records=settings.batch_max_records, batch_max_bytes=settings.batch_max_bytes,
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

        log(f"[{scenario.name}] catch-up")
        spawned = time.perf_counter()
        first = None  # (time, committed, cpu seconds) when the first commit is seen
        deadline = spawned + max(300, scenario.backlog / 2_000)
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
        f["catchup_events_per_s"] = (events / (drained - first[0]) if events
                                     else scenario.backlog / (drained - spawned))
        f["catchup_wall_seconds_from_start"] = drained - spawned
        f["cpu_seconds_per_1000_events"] = (cpu.user + cpu.system - first[2]) / max(events, 1) * 1000
        f["cpu_ms_per_1000"] = f["cpu_seconds_per_1000_events"] * 1000
        f["catchup_peak_rss_mb"] = peak_rss / 2**20

        if scenario.live_rate:
            log(f"[{scenario.name}] live: {scenario.live_rate:,} events/s for {scenario.live_seconds}s")
            before = product.latency_buckets(port)
            # The same fleet (charge point ids, versions, connectors), without injected defects: a held-back
            # record's age is the gateway's delay, not ours.
            clean = {k: v for k, v in scenario.feed.items() if k not in DEFECTS}
            live = Feed(FeedConfig(**dict(clean, seed=43), start=time.time()))
            records = iter(live)
            while live.now < live.config.start + 120:  # past the boot storm: a fleet in its steady state
                next(records)
            live.clock = lambda _: time.time()
            offered = asyncio.create_task(
                publish(records, bootstrap=BOOTSTRAP, topic=topic, rate=scenario.live_rate,
                        duration=scenario.live_seconds)
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
            f["live_offered_events_per_s"] = sent / scenario.live_seconds
            f["live_p50_ms"] = product.quantile(before, after, 0.50) * 1000
            f["live_p99_ms"] = product.quantile(before, after, 0.99) * 1000
            f["live_events_observed"] = after[max(after)] - before.get(max(after), 0)
            f["live_max_lag"] = max_lag
            f["live_final_lag"] = lag
            del live, records
        sample()
        f["peak_rss_mb"] = peak_rss / 2**20
        f["consumer_exit_status"] = product.stop_consumer(process)
        if scenario.sizes:
            f["db"] = await product.database_sizes(dsn)
            f["db_bytes"] = f["db"]["db_bytes"]
            f.update(await time_uptime_report(dsn))

    if "naive_events_per_s" in f:
        f["speedup_vs_naive"] = f["catchup_events_per_s"] / f["naive_events_per_s"]
    if "pipeline_limit_events_per_s" in f:
        f["fraction_of_pipeline_limit"] = f["catchup_events_per_s"] / f["pipeline_limit_events_per_s"]
        # Kept as a figure, no longer a target: no Python consumer can approach consume-only (bench/limits.py).
        f["fraction_of_consume_limit"] = f["catchup_events_per_s"] / f["consume_only_events_per_s"]
    return f


async def time_uptime_report(dsn: str) -> dict:
    """The month's uptime report over every port the scenario wrote, as `ocpp-consumer report uptime` writes it
    (its default --jobs: REPORT_JOBS slices at once, each on a connection of its own; CSV, here to /dev/null),
    for the calendar month the backlog falls in, as of now."""
    conn = await asyncpg.connect(dsn)
    try:
        # received_at, not effective_at: a charger's wrong clock can put an effective time years off.
        first, end = await conn.fetchrow("SELECT m, m + interval '1 month' FROM "
                                         "(SELECT date_trunc('month', min(received_at), 'UTC') AS m "
                                         "FROM status_history) AS s")
    finally:
        await conn.close()
    seconds, ports = await report_bench.time_command(dsn, REPORT_JOBS, (first, end, None))
    return {"report_seconds": seconds, "report_ports": ports, "report_month": first.strftime("%Y-%m"),
            "report_jobs": REPORT_JOBS}


async def main() -> dict:
    figures: dict = {}
    settings = Settings()
    pg = await asyncpg.connect(ADMIN_DSN)
    try:
        setup = {
            "cpus": os.cpu_count(), "python": platform.python_version(), "aiokafka": aiokafka.__version__,
            "asyncpg": asyncpg.__version__, "postgresql": await pg.fetchval("SHOW server_version"),
            "batch_max_records": settings.batch_max_records, "batch_max_bytes": settings.batch_max_bytes,
            "partitions": PARTITIONS,
        }
        if FLEET or not SWEEP:
            figures["setup"] = {
                **setup, "quick": QUICK, "backlog_events": BACKLOG, "naive_events": NAIVE_SLICE,
                "charge_points": CHARGE_POINTS, "connectors": CONNECTORS, "live_rate": LIVE_RATE,
                "live_seconds": LIVE_SECONDS,
            }
            default = Scenario("default", BACKLOG_FEED, BACKLOG, naive=NAIVE_SLICE, live_rate=LIVE_RATE,
                               live_seconds=LIVE_SECONDS)
            figures.update(await run_scenario(default, pg, settings))
        if FLEET:
            figures["fleet_setup"] = {
                **setup, "backlog_events": FLEET_EVENTS, "charge_points": FLEET_CHARGE_POINTS,
                "feed": {k: v for k, v in FLEET_FEED.items() if k != "charge_points"},
                "live_rate": FLEET_LIVE_RATE, "live_seconds": FLEET_LIVE_SECONDS,
            }
            fleet = Scenario("fleet", FLEET_FEED, FLEET_EVENTS, live_rate=FLEET_LIVE_RATE,
                             live_seconds=FLEET_LIVE_SECONDS, sizes=True)
            measured = await run_scenario(fleet, pg, settings)
            figures.update({f"fleet_{k}": v for k, v in measured.items()})
            figures["db_bytes"] = measured["db_bytes"]
            figures["fleet_cpu_growth"] = measured["cpu_ms_per_1000"] / figures["cpu_ms_per_1000"]
        if SWEEP:
            figures["sweep_setup"] = {
                **setup, "backlog_events": SWEEP_EVENTS, "charge_points": SWEEP_CHARGE_POINTS,
                "feed": {k: v for k, v in FLEET_FEED.items() if k != "charge_points"},
            }
            points = []
            for size in SWEEP_CHARGE_POINTS:
                point = Scenario(f"sweep-{size}", dict(FLEET_FEED, charge_points=size), SWEEP_EVENTS, limits=False)
                measured = await run_scenario(point, pg, settings)
                points.append({"charge_points": size, **{k: measured[k] for k in (
                    "catchup_events_per_s", "cpu_ms_per_1000", "peak_rss_mb", "publish_events_per_s",
                    "catchup_wall_seconds_from_start", "backlog_simulated_seconds", "backlog_counts",
                    "consumer_exit_status")}})
            figures["sweep"] = points
            figures["sweep_peak_rss_mb"] = max(p["peak_rss_mb"] for p in points)
            figures["sweep_cpu_growth"] = points[-1]["cpu_ms_per_1000"] / points[0]["cpu_ms_per_1000"]
            from bench.plot import sweep_png

            title = (f"Catch-up of a {SWEEP_EVENTS:,}-event backlog by fleet size ({FLEET_FEED['connectors']} "
                     f"connectors, 30 % OCPP 2.x; {setup['cpus']} CPUs shared with the broker and PostgreSQL)")
            figures["sweep_json"] = sweep_png(points, SWEEP_PNG, title=title,
                                              rss_bound_mb=TARGETS["sweep_peak_rss_mb"][1])
            figures["sweep_png"] = SWEEP_PNG
    finally:
        await pg.close()
    return figures


def _row(f: dict, label: str, value: str, key: str | None = None) -> str:
    target = result = ""
    if key in TARGETS and key in f:
        op, goal, _ = TARGETS[key]
        target = f"{op} {goal:,}"
        met = f[key] >= goal if op == ">=" else f[key] <= goal
        result = "pass" if met else "MISS"
    return f"{label:<34} {value:<44} {target:<12} {result}"


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


def scenario_rows(f: dict, p: str = "") -> list[tuple[str, str, str | None]]:
    """The table rows of one scenario's figures, `p` the prefix of its keys."""
    rows = [("backlog publish (simulator)", f"{f[p + 'publish_events_per_s']:,.0f} events/s", None)]
    if p + "pipeline_limit_events_per_s" in f:
        limit = f[p + "pipeline_limit_events_per_s"]
        rows += [
            ("consume-only limit (aiokafka)", f"{f[p + 'consume_only_events_per_s']:,.0f} events/s", None),
            ("validation-only limit (pydantic)", f"{f[p + 'validation_only_events_per_s']:,.0f} events/s", None),
            ("PostgreSQL upsert limit", f"{f[p + 'pg_upsert_rows_per_s']:,.0f} rows/s "
                                        f"({f[p + 'pg_upsert_events_per_s']:,.0f} events/s)", None),
            ("pipeline limit (the slowest)", f"{limit:,.0f} events/s", None),
        ]
    if p + "naive_events_per_s" in f:
        rows.append(("naive consumer", f"{f[p + 'naive_events_per_s']:,.0f} events/s", None))
    rows += [
        ("ours, catch-up", f"{f[p + 'catchup_events_per_s']:,.0f} events/s", p + "catchup_events_per_s"),
        ("ours, catch-up wall time", f"{f[p + 'catchup_wall_seconds_from_start']:,.1f} s from process start", None),
    ]
    if p + "speedup_vs_naive" in f:
        rows.append(("ours ÷ naive", f"{f[p + 'speedup_vs_naive']:,.1f}×", p + "speedup_vs_naive"))
    if p + "fraction_of_pipeline_limit" in f:
        rows += [
            ("ours ÷ pipeline limit", f"{f[p + 'fraction_of_pipeline_limit']:.2f}",
             p + "fraction_of_pipeline_limit"),
            ("ours ÷ consume-only", f"{f[p + 'fraction_of_consume_limit']:.2f}", None),
        ]
    if p + "live_p99_ms" in f:
        rows += [
            ("ours, live offered", f"{f[p + 'live_offered_events_per_s']:,.0f} events/s", None),
            ("ours, live p50", f"{f[p + 'live_p50_ms']:,.1f} ms", None),
            ("ours, live p99", f"{f[p + 'live_p99_ms']:,.1f} ms", p + "live_p99_ms"),
            ("ours, live lag", f"max {f[p + 'live_max_lag']:,} events, {f[p + 'live_final_lag']:,} at the end",
             p + "live_final_lag"),
        ]
    rows += [
        ("ours, peak RSS", f"{f[p + 'peak_rss_mb']:,.0f} MB", p + "peak_rss_mb"),
        ("ours, CPU per 1,000 events", f"{f[p + 'cpu_ms_per_1000']:,.1f} ms", None),
    ]
    if p + "cpu_growth" in f:
        rows.append(("ours, CPU per event ÷ default's", f"{f[p + 'cpu_growth']:.2f}×", p + "cpu_growth"))
    if p + "report_seconds" in f:
        rows.append((f"uptime report, {f[p + 'report_month']}", f"{f[p + 'report_seconds']:,.1f} s for "
                                                               f"{f[p + 'report_ports']:,} ports "
                                                               f"(--jobs {f[p + 'report_jobs']})",
                     p + "report_seconds"))
    if p + "db" in f:
        db = f[p + "db"]
        tables = db["tables"]
        rows.append(("database after the run", f"{_mb(db['db_bytes'])} (tables {_mb(db['table_bytes'])}, "
                                               f"indexes {_mb(db['index_bytes'])})", None))
        for name in ("charge_point", "connector", "evse_connector", "status_history", "charge_point_presence"):
            if name in tables:
                rows.append((f"  {name}", f"{_mb(tables[name]['table_bytes'])} + indexes "
                                          f"{_mb(tables[name]['index_bytes'])}", None))
    return rows


def report(f: dict) -> None:
    header = f"{'figure':<34} {'value':<44} {'target':<12} result"
    if "setup" in f:
        s = f["setup"]
        print(f"setup: {s['cpus']} CPUs, Python {s['python']}, aiokafka {s['aiokafka']}, asyncpg {s['asyncpg']}, "
              f"PostgreSQL {s['postgresql']}; {'QUICK' if s['quick'] else 'full'} run")
        print(f"       backlog {s['backlog_events']:,} events over {s['charge_points']:,} charge points × "
              f"{s['connectors']} connectors, {s['partitions']} partitions; naive slice {s['naive_events']:,}; "
              f"live {s['live_rate']:,}/s for {s['live_seconds']}s; "
              f"consumer batches of ≤ {s['batch_max_records']:,}, fetches of ≤ {s['batch_max_bytes'] / 2**20:g} MiB "
              f"per partition")
        print(header)
        for label, value, key in scenario_rows(f):
            print(_row(f, label, value, key))
    if "fleet_setup" in f:
        s = f["fleet_setup"]
        feed = s["feed"]
        print()
        print(f"fleet: backlog {s['backlog_events']:,} events over {s['charge_points']:,} charge points × "
              f"{feed['connectors']} connectors (its boot storm first), 30 % on OCPP 2.0.1/2.1, "
              f"{s['partitions']} partitions; live {s['live_rate']:,}/s for {s['live_seconds']}s")
        counts = f["fleet_backlog_counts"]
        print("       backlog made of " + ", ".join(f"{counts[k]:,} {k}" for k in sorted(counts))
              + f"; {f['fleet_backlog_simulated_seconds']:,.0f} s of simulated time")
        print(header)
        for label, value, key in scenario_rows(f, "fleet_"):
            print(_row(f, label, value, key))
    if "sweep" in f:
        s = f["sweep_setup"]
        print()
        print(f"sweep: backlog {s['backlog_events']:,} events per fleet size, "
              f"{s['feed']['connectors']} connectors, 30 % on OCPP 2.0.1/2.1, catch-up only; "
              f"figure {f['sweep_png']}, figures {f['sweep_json']}")
        print(f"{'charge points':>14} {'catch-up events/s':>18} {'CPU ms per 1,000':>17} {'peak RSS MB':>12} "
              f"{'publish events/s':>17}")
        for point in f["sweep"]:
            print(f"{point['charge_points']:>14,} {point['catchup_events_per_s']:>18,.0f} "
                  f"{point['cpu_ms_per_1000']:>17,.1f} {point['peak_rss_mb']:>12,.0f} "
                  f"{point['publish_events_per_s']:>17,.0f}")
        print(header)
        print(_row(f, "peak RSS, largest of the sweep", f"{f['sweep_peak_rss_mb']:,.0f} MB", "sweep_peak_rss_mb"))
        print(_row(f, "CPU per event, largest ÷ smallest", f"{f['sweep_cpu_growth']:.2f}×", "sweep_cpu_growth"))


def _rounded(value):
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


if __name__ == "__main__":
    figures = asyncio.run(main())
    report(figures)
    print(json.dumps(_rounded(figures)))
