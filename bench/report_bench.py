"""How long the uptime report takes for a month of a large fleet: `port_uptime` and `port_outages` over
10,000 charge points × 2 ports with a month of status history and presence, and `ocpp-consumer report uptime`
over the same with one job and with its default (slices on several connections).

The fleet's month is generated in SQL (seeded, so every run has the same shape), shaped as the write path
stores it: history rows with their versions, one presence row per charge point and UTC day, and the state
tables' rows that list the series. Writing the same through the consumer would take tens of minutes of
heartbeats and is what bench/store_bench.py and the main benchmark measure; here only the report is timed.
Not a test: it prints the setup and the figures. Uses OCPP_DATABASE_URL's server; creates and drops a
database of its own.

    OCPP_DATABASE_URL=postgresql://ocpp:ocpp@127.0.0.1:5433/ocpp .venv/bin/python -m bench.report_bench
    REPORT_STORM=300000 …  # instead, a fleet of 300,000 charge points just after its boot storm
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import sys
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from consumer.migrate import migrate
from consumer.report import DEFAULT_JOBS, write_report
from consumer.tools.support import drop_database

CHARGE_POINTS = 10_000
PORTS = 2
RUNS = 3
FROM = datetime(2026, 3, 1, tzinfo=timezone.utc)
TO = datetime(2026, 4, 1, tzinfo=timezone.utc)
AS_OF = datetime(2026, 5, 1, tzinfo=timezone.utc)

# One statement per step; each says what a month of this fleet looks like. 70 % of charge points speak OCPP
# 1.6 (two ports), 30 % OCPP 2.0.1 (two EVSEs of two physical connectors each). Everything starts AVAILABLE
# on 02-28, so each series has a row in force when the month begins.
FLEET = [
    "SELECT setseed(0.20260301)",
    "SELECT ocpp_ensure_status_history_partitions(ARRAY['2026-02-28Z', '2026-03-15Z', '2026-04-01Z']::timestamptz[])",
    """CREATE TEMPORARY TABLE fleet AS
       SELECT format('CP-%s', lpad(n::text, 5, '0')) AS cp, n % 10 < 3 AS is_2x FROM generate_series(0, 9999) AS n""",
    # 1 % of 1.6 ports out of order for one to three days: no session while out of order (below 97 % for March).
    """CREATE TEMPORARY TABLE long_faults AS
       SELECT cp, port, f, f + interval '1 day' + random() * interval '2 days' AS until
       FROM (SELECT cp, port, '2026-03-02Z'::timestamptz + random() * interval '25 days' AS f
             FROM fleet, generate_series(1, 2) AS port WHERE NOT is_2x AND random() < 0.01) AS chosen""",
    """INSERT INTO status_history (charge_point_id, connector_id, evse_connector_id, effective_at, received_at,
                                  event_id, ocpp_version, source_action, status, error_code)
       SELECT cp, port, NULL, e.at, e.at, gen_random_uuid(), '1.6', 'StatusNotification', e.status, e.code
       FROM long_faults
       CROSS JOIN LATERAL (VALUES (f, 'FAULTED', 'POWER_SWITCH_FAILURE'), (until, 'AVAILABLE', NULL))
                   AS e(at, status, code)""",
    """INSERT INTO charge_point (serial_number, last_updated, ocpp_version, status, status_effective_at,
                                status_received_at, status_event_id, status_digest, last_seen_at)
       SELECT cp, '2026-04-01Z', CASE WHEN is_2x THEN '2.0.1' ELSE '1.6' END, 'AVAILABLE', '2026-02-28Z',
              '2026-02-28Z', gen_random_uuid(), ocpp_content_digest('AVAILABLE'), '2026-04-01Z'
       FROM fleet""",
    """INSERT INTO connector (id, charge_point_id, connector_id, status, last_updated, status_received_at,
                             status_event_id, status_digest, status_family)
       SELECT md5(cp || '/' || port)::uuid, cp, port, 'AVAILABLE', '2026-02-28Z', '2026-02-28Z', gen_random_uuid(),
              ocpp_content_digest('AVAILABLE'), CASE WHEN is_2x THEN '2.x' ELSE '1.6' END
       FROM fleet, generate_series(1, 2) AS port""",
    """INSERT INTO evse_connector
       SELECT cp, evse, c, 'AVAILABLE', '2026-02-28Z', '2026-02-28Z', gen_random_uuid(),
              ocpp_content_digest('AVAILABLE')
       FROM fleet, generate_series(1, 2) AS evse, generate_series(1, 2) AS c WHERE is_2x""",
    # The rows in force on March 1st: every series AVAILABLE since 02-28.
    """INSERT INTO status_history (charge_point_id, connector_id, evse_connector_id, effective_at, received_at,
                                  event_id, ocpp_version, source_action, status)
       SELECT cp, 0, NULL::int, '2026-02-28Z'::timestamptz, '2026-02-28Z'::timestamptz, gen_random_uuid(), '1.6',
              'StatusNotification', 'AVAILABLE'
       FROM fleet
       UNION ALL
       SELECT cp, port, NULL, '2026-02-28Z', '2026-02-28Z', gen_random_uuid(), '1.6', 'StatusNotification', 'AVAILABLE'
       FROM fleet, generate_series(1, 2) AS port WHERE NOT is_2x
       UNION ALL
       SELECT cp, evse, c, '2026-02-28Z', '2026-02-28Z', gen_random_uuid(), '2.0.1', 'StatusNotification', 'AVAILABLE'
       FROM fleet, generate_series(1, 2) AS evse, generate_series(1, 2) AS c WHERE is_2x""",
    # 1.6: a charging session per port and day (PREPARING, CHARGING, FINISHING, AVAILABLE), none while out of order.
    """INSERT INTO status_history (charge_point_id, connector_id, evse_connector_id, effective_at, received_at,
                                  event_id, ocpp_version, source_action, status)
       SELECT s.cp, s.port, NULL, e.at, e.at + interval '150 ms', gen_random_uuid(), '1.6', 'StatusNotification',
              e.status
       FROM (SELECT cp, port, '2026-03-01Z'::timestamptz + d * interval '1 day' + random() * interval '22 hours' AS h,
                    30 + random() * 120 AS minutes
             FROM fleet, generate_series(1, 2) AS port, generate_series(0, 30) AS d WHERE NOT is_2x) AS s
       CROSS JOIN LATERAL (VALUES (s.h, 'PREPARING'), (s.h + interval '1 minute', 'CHARGING'),
                                  (s.h + s.minutes * interval '1 minute', 'FINISHING'),
                                  (s.h + (s.minutes + 2) * interval '1 minute', 'AVAILABLE')) AS e(at, status)
       WHERE NOT EXISTS (SELECT FROM long_faults AS lf WHERE lf.cp = s.cp AND lf.port = s.port
                         AND s.h < lf.until AND s.h + interval '3 hours' > lf.f)""",
    # 1.6: a fault on 3 % of port-days, 30 minutes to 3 hours.
    """INSERT INTO status_history (charge_point_id, connector_id, evse_connector_id, effective_at, received_at,
                                  event_id, ocpp_version, source_action, status, error_code, vendor_id,
                                  vendor_error_code)
       SELECT s.cp, s.port, NULL, e.at, e.at, gen_random_uuid(), '1.6', 'StatusNotification', e.status, e.code,
              e.vendor, e.vendor_code
       FROM (SELECT cp, port, '2026-03-01Z'::timestamptz + d * interval '1 day' + random() * interval '20 hours' AS f,
                    30 + random() * 150 AS minutes
             FROM fleet, generate_series(1, 2) AS port, generate_series(0, 30) AS d
             WHERE NOT is_2x AND random() < 0.03) AS s
       CROSS JOIN LATERAL (VALUES (s.f, 'FAULTED', 'GROUND_FAILURE', 'com.example', 'E-17'),
                                  (s.f + s.minutes * interval '1 minute', 'AVAILABLE', NULL, NULL, NULL))
                   AS e(at, status, code, vendor, vendor_code)""",
    # 2.x: a session per EVSE and day on one of its connectors; on 3 % of EVSE-days one connector faulted (the
    # port stays up: its other connector is AVAILABLE); on 0.5 % both connectors UNAVAILABLE for 1 to 4 hours.
    """INSERT INTO status_history (charge_point_id, connector_id, evse_connector_id, effective_at, received_at,
                                  event_id, ocpp_version, source_action, status)
       SELECT s.cp, s.evse, s.c, e.at, e.at, gen_random_uuid(), '2.0.1', 'StatusNotification', e.status
       FROM (SELECT cp, evse, 1 + (random() < 0.5)::int AS c,
                    '2026-03-01Z'::timestamptz + d * interval '1 day' + random() * interval '22 hours' AS h,
                    30 + random() * 120 AS minutes
             FROM fleet, generate_series(1, 2) AS evse, generate_series(0, 30) AS d WHERE is_2x) AS s
       CROSS JOIN LATERAL (VALUES (s.h, 'OCCUPIED'), (s.h + s.minutes * interval '1 minute', 'AVAILABLE'))
                   AS e(at, status)
       UNION ALL
       SELECT s.cp, s.evse, s.c, e.at, e.at, gen_random_uuid(), '2.0.1', 'StatusNotification', e.status
       FROM (SELECT cp, evse, 1 + (random() < 0.5)::int AS c,
                    '2026-03-01Z'::timestamptz + d * interval '1 day' + random() * interval '20 hours' AS f,
                    30 + random() * 150 AS minutes
             FROM fleet, generate_series(1, 2) AS evse, generate_series(0, 30) AS d
             WHERE is_2x AND random() < 0.03) AS s
       CROSS JOIN LATERAL (VALUES (s.f, 'FAULTED'), (s.f + s.minutes * interval '1 minute', 'AVAILABLE'))
                   AS e(at, status)
       UNION ALL
       SELECT s.cp, s.evse, c, e.at, e.at, gen_random_uuid(), '2.0.1', 'StatusNotification', e.status
       FROM (SELECT cp, evse, '2026-03-01Z'::timestamptz + d * interval '1 day' + random() * interval '20 hours' AS u,
                    60 + random() * 180 AS minutes
             FROM fleet, generate_series(1, 2) AS evse, generate_series(0, 30) AS d
             WHERE is_2x AND random() < 0.005) AS s
       CROSS JOIN generate_series(1, 2) AS c
       CROSS JOIN LATERAL (VALUES (s.u, 'UNAVAILABLE'), (s.u + s.minutes * interval '1 minute', 'AVAILABLE'))
                   AS e(at, status)""",
    # The charge point itself UNAVAILABLE on 0.3 % of days, 1 to 3 hours.
    """INSERT INTO status_history (charge_point_id, connector_id, evse_connector_id, effective_at, received_at,
                                  event_id, ocpp_version, source_action, status)
       SELECT s.cp, 0, NULL, e.at, e.at, gen_random_uuid(), '1.6', 'StatusNotification', e.status
       FROM (SELECT cp, '2026-03-01Z'::timestamptz + d * interval '1 day' + random() * interval '20 hours' AS u,
                    60 + random() * 120 AS minutes
             FROM fleet, generate_series(0, 30) AS d WHERE random() < 0.003) AS s
       CROSS JOIN LATERAL (VALUES (s.u, 'UNAVAILABLE'), (s.u + s.minutes * interval '1 minute', 'AVAILABLE'))
                   AS e(at, status)""",
    # Presence: connected all day, every day from 02-28 to 04-01, except a silence of 20 minutes to 3 hours on
    # 1 % of charge-point-days.
    """INSERT INTO charge_point_presence (charge_point_id, day, present)
       SELECT cp, day::date,
              tstzmultirange(tstzrange(day, day + interval '1 day'))
              - CASE WHEN silent THEN tstzmultirange(tstzrange(silent_from, silent_from + silence)) ELSE '{}' END
       FROM (SELECT cp, day, random() < 0.01 AS silent,
                    day + interval '2 hours' + random() * interval '18 hours' AS silent_from,
                    interval '20 minutes' + random() * interval '160 minutes' AS silence
             FROM fleet, generate_series('2026-02-28Z'::timestamptz, '2026-04-01Z', interval '1 day') AS day) AS d""",
    "ANALYZE",
]

# REPORT_STORM=N: instead of the month, N charge points × 3 ports shaped as the fleet benchmark's (`make bench
# FLEET=1`) database after its boot storm: every series two status rows on the day of its boot, the 1.6 charge
# points' own status too, one presence row each (present 40 minutes); the report for December 2026 as of its
# 2nd. There the cost is per port, not per history row (BENCHMARKS.md, "the uptime report over the fleet").
STORM_CHARGE_POINTS = int(os.environ.get("REPORT_STORM", "0"))
STORM_PERIOD = (datetime(2026, 12, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc),
                datetime(2026, 12, 2, tzinfo=timezone.utc))


def storm(charge_points: int) -> list[str]:
    return [
        "SELECT setseed(0.5)",
        "SELECT ocpp_ensure_status_history_partitions(ARRAY['2026-11-30Z', '2026-12-01Z', '2027-01-01Z']::timestamptz[])",
        f"""CREATE TEMPORARY TABLE fleet AS
            SELECT format('CP-%s', lpad(n::text, 7, '0')) AS cp, n % 10 < 3 AS is_2x,
                   '2026-12-01 10:00Z'::timestamptz + random() * interval '20 minutes' AS boot
            FROM generate_series(0, {charge_points - 1}) AS n""",
        """INSERT INTO charge_point (serial_number, last_updated, ocpp_version, status, status_effective_at,
                                    status_received_at, status_event_id, status_digest, last_seen_at)
           SELECT cp, boot, CASE WHEN is_2x THEN '2.0.1' ELSE '1.6' END, 'AVAILABLE', boot, boot, gen_random_uuid(),
                  ocpp_content_digest('AVAILABLE'), boot FROM fleet""",
        """INSERT INTO connector (id, charge_point_id, connector_id, status, last_updated, status_received_at,
                                 status_event_id, status_digest, status_family)
           SELECT md5(cp || '/' || port)::uuid, cp, port, 'AVAILABLE', boot, boot, gen_random_uuid(),
                  ocpp_content_digest('AVAILABLE'), CASE WHEN is_2x THEN '2.x' ELSE '1.6' END
           FROM fleet, generate_series(1, 3) AS port""",
        """INSERT INTO evse_connector
           SELECT cp, evse, 1, 'AVAILABLE', boot, boot, gen_random_uuid(), ocpp_content_digest('AVAILABLE')
           FROM fleet, generate_series(1, 3) AS evse WHERE is_2x""",
        # Port 0 of a 1.6 charge point is its own status. 2 % of 1.6 ports fault a few minutes after boot.
        """INSERT INTO status_history (charge_point_id, connector_id, evse_connector_id, effective_at, received_at,
                                      event_id, ocpp_version, source_action, status)
           SELECT cp, port, NULL, boot + k * interval '3 minutes' + random() * interval '1 minute',
                  boot + interval '1 second', gen_random_uuid(), '1.6', 'StatusNotification',
                  CASE WHEN k = 1 AND random() < 0.02 THEN 'FAULTED' WHEN k = 1 THEN 'CHARGING' ELSE 'AVAILABLE' END
           FROM fleet, generate_series(0, 3) AS port, generate_series(0, 1) AS k WHERE NOT is_2x
           UNION ALL
           SELECT cp, evse, 1, boot + k * interval '3 minutes', boot, gen_random_uuid(), '2.0.1',
                  'StatusNotification', CASE WHEN k = 1 THEN 'OCCUPIED' ELSE 'AVAILABLE' END
           FROM fleet, generate_series(1, 3) AS evse, generate_series(0, 1) AS k WHERE is_2x""",
        """INSERT INTO charge_point_presence (charge_point_id, day, present)
           SELECT cp, '2026-12-01', tstzmultirange(tstzrange(boot, boot + interval '40 minutes')) FROM fleet""",
        "ANALYZE",
    ]


def scenario() -> tuple[str, list[str], tuple[datetime, datetime, datetime]]:
    """What to generate and report on, chosen once: its description, its statements and the report's period
    (from, to, as of). The month of CHARGE_POINTS by default; with REPORT_STORM, the fleet after its storm."""
    if STORM_CHARGE_POINTS:
        return (f"{STORM_CHARGE_POINTS:,} charge points × 3 ports after their boot storm", storm(STORM_CHARGE_POINTS),
                STORM_PERIOD)
    return f"{CHARGE_POINTS:,} charge points × {PORTS} ports, a month", FLEET, (FROM, TO, AS_OF)


async def print_setup(conn: asyncpg.Connection) -> None:
    print(f"PostgreSQL: {await conn.fetchval('SELECT version()')}")
    for name in ("shared_buffers", "work_mem", "effective_cache_size", "max_parallel_workers_per_gather", "jit"):
        print(f"  {name} = {await conn.fetchval(f'SHOW {name}')}")
    print("  (port_uptime and port_outages set jit = off and enable_memoize = off for themselves: "
          "sql/migrations/0006_uptime_report.sql to 0008_report_in_slices.sql)")
    print(f"Client: Python {platform.python_version()}, asyncpg {asyncpg.__version__}, "
          f"CPUs {os.cpu_count()} (shared by client and server), {platform.machine()}, "
          f"load average before the run {os.getloadavg()[0]:.2f}")


async def print_fleet(conn: asyncpg.Connection, shape: str, seconds: float) -> None:
    counts = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM status_history) AS history, "
        "(SELECT count(*) FROM charge_point_presence) AS presence, "
        "(SELECT count(*) FROM connector) AS ports, (SELECT count(*) FROM evse_connector) AS physical, "
        "pg_size_pretty(pg_database_size(current_database())) AS size")
    print(f"Fleet: {shape} ({counts['ports']:,} ports, 30 % OCPP 2.0.1 with {counts['physical']:,} physical "
          f"connectors); status_history {counts['history']:,} rows, charge_point_presence {counts['presence']:,} "
          f"rows, database {counts['size']}; generated in {seconds:.0f} s")


async def time_report(conn: asyncpg.Connection, function: str, period: tuple, session: str = "") -> None:
    """RUNS runs of the whole result fetched by the client."""
    statement = f"SELECT * FROM {function}($1, $2, $3)"
    seconds = []
    rows: list = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        rows = await conn.fetch(statement, *period)
        seconds.append(time.perf_counter() - t0)
    print(f"{function}('{period[0]:%Y-%m-%d}', '{period[1]:%Y-%m-%d}'){session}: {len(rows):,} rows; "
          f"median {statistics.median(seconds):.2f} s, best {min(seconds):.2f} s, runs "
          + ", ".join(f"{s:.2f}" for s in seconds))
    if function == "port_uptime":
        below = sum(1 for r in rows if r["uptime_percent"] is not None and r["uptime_percent"] < 97)
        print(f"  ports below 97 %: {below:,}; outages: {sum(r['outages'] for r in rows):,}")


async def time_command(dsn: str, jobs: int, period: tuple) -> tuple[float, int]:
    """`ocpp-consumer report uptime` for `period` (from, to, as of) as the command writes it: write_report with
    `jobs` slices, each on a connection of its own, CSV to /dev/null. Its seconds and rows."""
    conns = [await asyncpg.connect(dsn) for _ in range(jobs)]
    try:
        with open(os.devnull, "w") as sink:
            t0 = time.perf_counter()
            rows = await write_report(conns, "uptime", *period, sink)
            return time.perf_counter() - t0, rows
    finally:
        for conn in conns:
            await conn.close()


async def compare_jobs(dsn: str, period: tuple) -> None:
    """The command with one job and with its default, alternated RUNS times: the slices' gain, side by side."""
    seconds: dict[int, list[float]] = {1: [], DEFAULT_JOBS: []}
    for _ in range(RUNS):
        for jobs in seconds:
            seconds[jobs].append((await time_command(dsn, jobs, period))[0])
    for jobs, runs in seconds.items():
        print(f"ocpp-consumer report uptime --jobs {jobs} (CSV to /dev/null): median {statistics.median(runs):.2f} s, "
              "runs " + ", ".join(f"{s:.2f}" for s in runs))


async def run(dsn: str) -> None:
    parts = urlsplit(dsn)
    name = f"report_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        bench_dsn = urlunsplit(parts._replace(path=f"/{name}"))
        await migrate(bench_dsn)
        conn = await asyncpg.connect(bench_dsn)
        try:
            await print_setup(conn)
            t0 = time.perf_counter()
            shape, statements, period = scenario()
            for statement in statements:
                await conn.execute(statement)
            await print_fleet(conn, shape, time.perf_counter() - t0)
            for function in ("port_uptime", "port_outages"):
                await time_report(conn, function, period)
            # An analyst's session may have a larger work_mem; the functions' plans must not depend on it.
            await conn.execute("SET work_mem = '64MB'")
            await time_report(conn, "port_uptime", period, " with work_mem 64MB")
            await compare_jobs(bench_dsn, period)
        finally:
            await conn.close()
    finally:
        await drop_database(admin, name)
        await admin.close()


def main() -> None:
    dsn = os.environ.get("OCPP_DATABASE_URL")
    if not dsn:
        sys.exit("set OCPP_DATABASE_URL to the server to benchmark against (an admin DSN: it creates a database)")
    asyncio.run(run(dsn))


if __name__ == "__main__":
    main()
