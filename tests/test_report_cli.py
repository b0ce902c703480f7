"""`ocpp-consumer report uptime|outages` and `history prune` as a user runs them (a subprocess, the real database):
the output contract of docs/tables.md ("The uptime report") byte for byte, bad input refused with exit 2, and
who may run what."""

from __future__ import annotations

import io
import json
import os
from decimal import Decimal

import asyncpg
import pytest

from consumer import report
from consumer.store import apply_events
from consumer.tools.relay import free_port
from tests.conftest import connections
from tests.report_events import MAINTENANCE, hand_computed_month, heartbeats, rounding_statuses, status, t
from tests.secure_stack import error_lines, on_database, read_secret, run_command, service_env, stack_env

MONTH = ["--from", "2026-03-01", "--to", "2026-04-01", "--as-of", "2026-05-01T00:00:00Z"]

UPTIME_CSV = """\
charge_point_id,connector_id,observed_minutes,outage_minutes,excluded_minutes,uptime_percent,outages
CP-1,1,44640.00,90.00,30.00,99.866,1
CP-1,2,44640.00,0.00,0.00,100.000,0
CP-2,1,44640.00,120.00,0.00,99.731,1
CP-3,1,44640.00,0.00,0.00,100.000,0
CP-R,1,44640.00,0.67,0.00,99.999,1
CP-R,2,44640.00,1.51,0.00,99.997,1
"""
OUTAGES_CSV = """\
charge_point_id,connector_id,start,end,minutes,excluded_minutes,cause,error_code,vendor_error_code
CP-1,1,2026-03-10T10:00:00Z,2026-03-10T11:30:00Z,90.00,30.00,FAULTED,GROUND_FAILURE,E-17
CP-2,1,2026-03-15T08:00:00Z,2026-03-15T10:00:00Z,120.00,0.00,OFFLINE,,
CP-R,1,2026-03-03T12:00:00Z,2026-03-03T12:00:40.176Z,0.67,0.00,FAULTED,,
CP-R,2,2026-03-04T12:00:00Z,2026-03-04T12:01:30.3Z,1.51,0.00,FAULTED,,
"""


def rounding_ports() -> list:
    """CP-R: port 1 FAULTED for 40.176 s (0.6696 min → 0.67; uptime 99.9985 → 99.999), port 2 for 90.3 s
    (1.505 min → 1.51; 99.99663 → 99.997): half up, where half-even would give 99.998 and 1.50."""
    return heartbeats("CP-R", t("2026-02-28T23:00"), t("2026-04-01T00:30")) + rounding_statuses()


@pytest.fixture
async def month(db: str) -> str:
    """The hand-computed month (tests/report_events.py) with its maintenance window, and CP-R."""
    conn = await asyncpg.connect(db)
    try:
        await apply_events(conn, hand_computed_month() + rounding_ports())
        await conn.execute("INSERT INTO exclusions (charge_point_id, connector_id, starts_at, ends_at, reason_code, "
                           "note) VALUES ($1, $2, $3, $4, $5, $6)", *MAINTENANCE)
    finally:
        await conn.close()
    return db


def ocpp(db: str, *args: str, **env: str):
    return run_command(["consumer", *args], service_env(OCPP_DATABASE_URL=db, **env))


def test_uptime_csv(month):
    """Exactly the header, in order; minutes with two places, percent with three, half up; one row per port,
    sorted by charge point and port; nothing else on stdout."""
    done = ocpp(month, "report", "uptime", *MONTH)
    assert done.returncode == 0, done.stderr
    assert done.stdout == UPTIME_CSV
    assert done.stderr == ""


def test_outages_csv(month):
    """Each outage's own start and end in RFC 3339 UTC with Z (a fraction only when there is one), NULL as an
    empty field; csv is the default format."""
    done = ocpp(month, "report", "outages", *MONTH)
    assert done.returncode == 0, done.stderr
    assert done.stdout == OUTAGES_CSV
    assert ocpp(month, "report", "outages", *MONTH, "--format", "csv").stdout == OUTAGES_CSV


def test_ongoing_outage_has_an_empty_end(month):
    """As of 20 s into CP-R port 1's fault, it is the only outage so far, still going: no end, 0.33 minutes."""
    done = ocpp(month, "report", "outages", "--from", "2026-03-01", "--to", "2026-04-01",
                "--as-of", "2026-03-03T12:00:20Z")
    assert done.stdout.splitlines()[1:] == ["CP-R,1,2026-03-03T12:00:00Z,,0.33,0.00,FAULTED,,"]


def test_json_has_the_csv_names_and_numbers_as_numbers(month):
    """An array of objects whose keys are the CSV's columns in order and whose values are the CSV's: numbers as
    JSON numbers written with the same places (90.00, 99.866), NULL as null."""
    for kind, expected in (("uptime", UPTIME_CSV), ("outages", OUTAGES_CSV)):
        done = ocpp(month, "report", kind, *MONTH, "--format", "json")
        assert done.returncode == 0, done.stderr
        objects = json.loads(done.stdout, parse_float=Decimal)
        header, *lines = expected.splitlines()
        assert [list(o) for o in objects] == [header.split(",")] * len(lines)
        for obj, line in zip(objects, lines):
            assert ["" if v is None else str(v) for v in obj.values()] == line.split(",")
            for name in ("connector_id", "outages", "minutes", "observed_minutes", "uptime_percent"):
                if obj.get(name) is not None:
                    assert isinstance(obj[name], (int, Decimal)), (name, obj)
        assert '"outage_minutes": 90.00' in done.stdout or kind == "outages"


@pytest.mark.parametrize(("chunk", "jobs"), [(1, 1), (4, 1), (10_000, 1), (1, 3), (10_000, 2), (10_000, 6)])
async def test_the_report_streamed_in_chunks_and_slices_is_the_same_document(month, monkeypatch, chunk, jobs):
    """The command writes the report as it fetches it, CHUNK_ROWS rows at a time through a cursor (over a fleet
    of millions of ports its memory must not grow with the report), from `jobs` slices computed at once:
    wherever a chunk or a slice ends (6 jobs over 4 charge points: empty slices too), the CSV is the contract's
    and the JSON the same document as from all rows at once."""
    monkeypatch.setattr(report, "CHUNK_ROWS", chunk)
    period = (t("2026-03-01T00:00"), t("2026-04-01T00:00"), t("2026-05-01T00:00"))
    async with connections(month, jobs) as conns:
        for kind, expected_csv in (("uptime", UPTIME_CSV), ("outages", OUTAGES_CSV)):
            out = io.StringIO()
            assert await report.write_report(conns, kind, *period, out, "csv") == expected_csv.count("\n") - 1
            assert out.getvalue() == expected_csv
            statement, columns = report.REPORTS[kind]
            at_once = io.StringIO()
            report.write_rows(columns, await conns[0].fetch(statement, *period, None, None), at_once, "json")
            out = io.StringIO()
            await report.write_report(conns, kind, *period, out, "json")
            assert out.getvalue() == at_once.getvalue()
            assert len(json.loads(out.getvalue())) == expected_csv.count("\n") - 1


def test_empty_period_json_is_an_empty_array(month):
    done = ocpp(month, "report", "uptime", "--from", "2020-01-01", "--to", "2020-02-01", "--format", "json")
    assert (done.returncode, done.stdout) == (0, "[]\n")


@pytest.mark.parametrize(("args", "names"), [
    (["--from", "2026-03-01", "--to", "2026-03-01"], ["empty", "--to", "--from"]),
    (["--from", "2026-04-01", "--to", "2026-03-01"], ["reversed", "--to 2026-03-01", "--from 2026-04-01"]),
    (["--from", "2026-03-01", "--to", "2026-04-01", "--format", "xml"], ["--format", "'xml'"]),
    (["--from", "2026-03-32", "--to", "2026-04-01"], ["--from", "'2026-03-32'", "YYYY-MM-DD"]),
    (["--from", "2026-03-01", "--to", "2026-04-01", "--as-of", "soon"], ["--as-of", "'soon'"]),
    (["--from", "2026-03-01", "--to", "2026-04-01", "--jobs", "0"], ["--jobs", "'0'", "1 or more"]),
])
def test_bad_input_exits_2_naming_what_is_wrong(month, args, names):
    """Refused before connecting: nothing on stdout, a message on stderr that names the option at fault."""
    for kind in ("uptime", "outages"):
        done = ocpp(month, "report", kind, *args)
        assert done.returncode == 2
        assert done.stdout == ""
        assert all(name in done.stderr for name in names), done.stderr
        assert "Traceback" not in done.stderr


def test_unreachable_database_is_one_line():
    done = ocpp(f"postgresql://ocpp:secret@127.0.0.1:{free_port()}/ocpp", "report", "uptime", *MONTH)
    assert done.returncode == 1
    (line,) = error_lines(done.stderr)
    assert line.startswith("ocpp-consumer: report uptime: cannot reach PostgreSQL at postgresql://ocpp:***@127.0.0.1")
    assert done.stdout == ""


def test_an_analyst_may_run_the_report(month):
    """The report needs only what ocpp_reader has: SELECT on the tables (the functions are everyone's)."""
    env = stack_env("--analyst")
    done = ocpp(on_database(env["OCPP_DATABASE_URL"], month), "report", "uptime", *MONTH,
                OCPP_DATABASE_PASSWORD=read_secret(env, "OCPP_DATABASE_PASSWORD_FILE"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == UPTIME_CSV


def test_the_report_runs_behind_pgbouncer(month):
    """The command reads the report through a cursor; in transaction pooling a cursor lives only as long as its
    transaction (one held across transactions, WITH HOLD, would land on another server connection), so the
    command must read it inside one; so must the slices import the first's snapshot (--jobs 3: three server
    connections, each held by its transaction). Through the stack's PgBouncer, the report is the contract's CSV."""
    env = stack_env("--pgbouncer")
    done = ocpp(on_database(env["OCPP_DATABASE_URL"], month), "report", "uptime", *MONTH, "--jobs", "3",
                OCPP_DATABASE_STATEMENT_CACHE_SIZE=env["OCPP_DATABASE_STATEMENT_CACHE_SIZE"])
    assert done.returncode == 0, done.stderr
    assert done.stdout == UPTIME_CSV


# ------------------------------------------------------------------------------------------ history prune


async def test_prune_drops_whole_months(month):
    """--before 2026-03-15 drops February (it ends before) and keeps March (cut, so kept whole); a later
    status of February still updates the port's state but adds no history row, and is counted."""
    conn = await asyncpg.connect(month)
    try:
        rows_before = await conn.fetchval("SELECT count(*) FROM status_history WHERE effective_at >= '2026-03-01'")
        done = ocpp(month, "history", "prune", "--before", "2026-03-15")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[0] == "dropped status_history_2026_02"
        assert "1 month(s) dropped" in done.stdout
        # Before the horizon only what was in force at it: one row per series, in the default partition.
        carried = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT (charge_point_id, connector_id, evse_connector_id)) AS series, "
            "bool_and(tableoid = 'status_history_before_horizon'::regclass) AS all_carried "
            "FROM status_history WHERE effective_at < '2026-03-01'")
        assert carried["n"] == carried["series"] > 0 and carried["all_carried"]
        assert await conn.fetchval("SELECT count(*) FROM status_history WHERE effective_at >= '2026-03-01'") == (
            rows_before)
        assert await conn.fetchval("SELECT to_regclass('status_history_2026_02')") is None

        late = status("CP-9", 1, t("2026-02-10T00:00"), "FAULTED", received=t("2026-03-20T00:00"))
        assert await apply_events(conn, [late]) == 1
        assert await conn.fetchval("SELECT status FROM connector WHERE charge_point_id = 'CP-9'") == "FAULTED"
        assert await conn.fetchval("SELECT count(*) FROM status_history WHERE charge_point_id = 'CP-9'") == 0
        assert await conn.fetchval("SELECT to_regclass('status_history_2026_02')") is None

        again = ocpp(month, "history", "prune", "--before", "2026-03-15")
        assert again.returncode == 0 and "0 month(s) dropped" in again.stdout
    finally:
        await conn.close()


def test_prune_refuses_a_future_date(month):
    done = ocpp(month, "history", "prune", "--before", "2999-01-01")
    assert done.returncode == 2
    assert "--before 2999-01-01 is in the future" in done.stderr and done.stdout == ""


def test_prune_as_the_writer_is_refused_in_one_line(month):
    """Only the owner may erase history: the service's writer login gets exit 2 and one line saying so."""
    env = stack_env("--secure")
    done = ocpp(on_database(env["OCPP_DATABASE_URL"], month), "history", "prune", "--before", "2026-03-15",
                OCPP_DATABASE_PASSWORD_FILE=env["OCPP_DATABASE_PASSWORD_FILE"])
    assert done.returncode == 2
    (line,) = error_lines(done.stderr)
    assert line.startswith("ocpp-consumer: history prune: the user of") and "owner" in line


def test_a_reader_that_stops_early_is_not_an_error(month):
    """`report … | head -1`: the pipe closes after the first line; the command stops quietly with a shell's
    status for it (141), no traceback on stderr."""
    import subprocess
    import sys

    from tests.secure_stack import ROOT

    read, write = os.pipe()
    with subprocess.Popen([sys.executable, "-m", "consumer", "report", "outages", *MONTH], stdout=write,
                          stderr=subprocess.PIPE, env=service_env(OCPP_DATABASE_URL=month), cwd=ROOT) as process:
        os.close(write)
        os.close(read)  # before reading a byte: every write the report makes finds the pipe closed
        _, stderr = process.communicate(timeout=90)
    assert process.returncode == 141
    assert stderr.decode() == ""
