"""Exclusions: `ocpp-consumer exclusions add|list|remove` as an operator runs them, the table's own checks for rows
added with SQL, and their effect on the report."""

from __future__ import annotations

import csv
import io

import asyncpg
import pytest

from consumer.store import apply_events
from tests.report_events import hand_computed_month
from tests.secure_stack import error_lines, on_database, run_command, service_env, stack_env

MONTH = ["--from", "2026-03-01", "--to", "2026-04-01", "--as-of", "2026-05-01T00:00:00Z"]
LIST_HEADER = "id,charge_point_id,connector_id,starts_at,ends_at,reason_code,reason,note,created_at"


def ocpp(db: str, *args: str, **env: str):
    return run_command(["consumer", *args], service_env(OCPP_DATABASE_URL=db, **env))


async def count(db: str) -> int:
    conn = await asyncpg.connect(db)
    try:
        return await conn.fetchval("SELECT count(*) FROM exclusions")
    finally:
        await conn.close()


async def test_add_list_remove(db):
    """add prints the new id and nothing else; list is CSV with the reason in words; remove takes the id."""
    conn = await asyncpg.connect(db)
    try:
        await apply_events(conn, hand_computed_month())
    finally:
        await conn.close()
    first = ocpp(db, "exclusions", "add", "--charge-point", "CP-1", "--connector", "1",
                 "--from", "2026-03-10T11:00:00Z", "--to", "2026-03-10T12:00:00Z", "--reason", "3",
                 "--note", "contactor replaced, WO-1234")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().isdigit() and first.stderr == ""
    second = ocpp(db, "exclusions", "add", "--charge-point", "CP-2", "--from", "2026-03-15T07:00:00+02:00",
                  "--to", "2026-03-15T09:00:00Z", "--reason", "1")
    assert second.returncode == 0, second.stderr

    listed = ocpp(db, "exclusions", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0] == LIST_HEADER
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert [(r["id"], r["charge_point_id"], r["connector_id"], r["starts_at"], r["ends_at"], r["reason_code"],
             r["reason"], r["note"]) for r in rows] == [
        (first.stdout.strip(), "CP-1", "1", "2026-03-10T11:00:00Z", "2026-03-10T12:00:00Z", "3",
         "scheduled maintenance", "contactor replaced, WO-1234"),
        (second.stdout.strip(), "CP-2", "", "2026-03-15T05:00:00Z", "2026-03-15T09:00:00Z", "1",
         "utility interruption", ""),
    ]
    assert all(r["created_at"].endswith("Z") for r in rows)

    # The report counts them: CP-1 port 1's 30 minutes of maintenance, CP-2's 60 minutes of its 120 offline.
    report = ocpp(db, "report", "uptime", *MONTH).stdout.splitlines()
    assert "CP-1,1,44640.00,90.00,30.00,99.866,1" in report
    assert "CP-2,1,44640.00,120.00,60.00,99.866,1" in report

    removed = ocpp(db, "exclusions", "remove", first.stdout.strip())
    assert (removed.returncode, removed.stdout) == (0, f"removed exclusion {first.stdout.strip()}\n")
    assert "CP-1,1,44640.00,90.00,0.00,99.798,1" in ocpp(db, "report", "uptime", *MONTH).stdout.splitlines()
    again = ocpp(db, "exclusions", "remove", first.stdout.strip())
    assert again.returncode == 1
    (line,) = error_lines(again.stderr)
    assert f"no exclusion with id {first.stdout.strip()}" in line
    assert await count(db) == 1


@pytest.mark.parametrize(("args", "names"), [
    (["--from", "2026-03-10T11:00:00Z", "--to", "2026-03-10T11:00:00Z", "--reason", "3"], ["empty", "--to", "--from"]),
    (["--from", "2026-03-10T12:00:00Z", "--to", "2026-03-10T11:00:00Z", "--reason", "3"],
     ["reversed", "--to 2026-03-10T11:00:00+00:00", "--from 2026-03-10T12:00:00+00:00"]),
    (["--from", "2026-03-10T11:00:00Z", "--to", "2026-03-10T12:00:00Z", "--reason", "7"],
     ["--reason 7", "3 scheduled maintenance"]),
    (["--from", "2026-03-10T11:00:00Z", "--to", "2026-03-10T12:00:00Z", "--reason", "0"], ["--reason 0"]),
    (["--from", "2026-03-10T11:00:00Z", "--to", "2026-03-10T12:00:00Z", "--reason", "x"], ["--reason", "'x'"]),
    (["--from", "yesterday", "--to", "2026-03-10T12:00:00Z", "--reason", "3"], ["--from", "'yesterday'"]),
    (["--from", "2026-03-10T11:00:00Z", "--to", "2026-03-10T12:00:00Z", "--reason", "3", "--connector", "0"],
     ["--connector 0"]),
    (["--from", "2026-03-10T11:00:00Z", "--to", "2026-03-10T12:00:00Z"], ["--reason"]),
])
async def test_bad_exclusion_exits_2_and_writes_nothing(db, args, names):
    done = ocpp(db, "exclusions", "add", "--charge-point", "CP-1", *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert all(name in done.stderr for name in names), done.stderr
    assert "Traceback" not in done.stderr
    assert await count(db) == 0


def test_unknown_charge_point_is_kept_with_a_note(db):
    """A charge point the database has not heard of may be one about to be installed, or a typo: the
    exclusion is kept and the operator told, on stderr (stdout has the id only)."""
    done = ocpp(db, "exclusions", "add", "--charge-point", "CP-NEW", "--from", "2026-03-10T11:00:00Z",
                "--to", "2026-03-10T12:00:00Z", "--reason", "6")
    assert done.returncode == 0
    assert done.stdout.strip().isdigit()
    assert "no charge point 'CP-NEW' is known yet" in done.stderr


async def test_the_table_checks_rows_added_with_sql(db):
    """Analysts may fill the table with SQL: an empty or reversed window, a reason outside 1..6 or port 0 is
    refused by the table itself."""
    conn = await asyncpg.connect(db)
    try:
        insert = ("INSERT INTO exclusions (charge_point_id, connector_id, starts_at, ends_at, reason_code) "
                  "VALUES ('CP-1', $1, $2::text::timestamptz, $3::text::timestamptz, $4)")
        for args in ((None, "2026-03-10T11:00Z", "2026-03-10T11:00Z", 3),
                     (None, "2026-03-10T12:00Z", "2026-03-10T11:00Z", 3),
                     (None, "2026-03-10T11:00Z", "2026-03-10T12:00Z", 7),
                     (0, "2026-03-10T11:00Z", "2026-03-10T12:00Z", 3)):
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(insert, *args)
        await conn.execute(insert, None, "2026-03-10T11:00Z", "2026-03-10T12:00Z", 5)
        assert await conn.fetchval("SELECT count(*) FROM exclusions") == 1
    finally:
        await conn.close()


def test_the_service_login_cannot_remove_exclusions(db):
    """The writer login has no DELETE: removing is for the owner or a role granted it, and is refused in one
    line with exit 2."""
    env = stack_env("--secure")
    done = ocpp(on_database(env["OCPP_DATABASE_URL"], db), "exclusions", "remove", "1",
                OCPP_DATABASE_PASSWORD_FILE=env["OCPP_DATABASE_PASSWORD_FILE"])
    assert done.returncode == 2
    (line,) = error_lines(done.stderr)
    assert line.startswith("ocpp-consumer: exclusions remove: the user of") and "owner" in line
