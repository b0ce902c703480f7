"""The uptime report's SQL functions, port_uptime and port_outages, against real PostgreSQL, fed through the write
path: the issue's hand-computed month, the rule of docs/tables.md ("Port status over time") case by case, and
the rule checked against the state tables on random fleets."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from consumer.store import apply_events
from schemas.events import Heartbeat, NotifyEvent
from tests.report_events import (
    APRIL, MAINTENANCE, MARCH, MARCH_MINUTES, UTC, hand_computed_month, heartbeats, rounding_statuses, status,
    status_2x, t,
)

AFTER = t("2026-05-01T00:00")  # an as-of time after the month: all of it has happened
D = Decimal


async def add_exclusion(conn, cp: str, connector: int | None, start: datetime, end: datetime, reason: int,
                        note: str | None = None) -> int:
    return await conn.fetchval(
        "INSERT INTO exclusions (charge_point_id, connector_id, starts_at, ends_at, reason_code, note) "
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id", cp, connector, start, end, reason, note)


async def uptime(conn, start=MARCH, end=APRIL, as_of=AFTER) -> dict[tuple[str, int], tuple]:
    rows = await conn.fetch("SELECT * FROM port_uptime($1, $2, $3)", start, end, as_of)
    return {(r["charge_point_id"], r["connector_id"]): tuple(r)[2:] for r in rows}


async def outages(conn, start=MARCH, end=APRIL, as_of=AFTER) -> list[tuple]:
    return [tuple(r) for r in await conn.fetch("SELECT * FROM port_outages($1, $2, $3)", start, end, as_of)]


def present_throughout(*cps: str, start: datetime = t("2026-02-20T00:00"), end: datetime = t("2026-06-01T00:00"),
                       gaps=()) -> list[Heartbeat]:
    return [beat for cp in cps for beat in heartbeats(cp, start, end, gaps=gaps)]


# ------------------------------------------------------------------------------------------ the month


async def test_hand_computed_month(conn):
    """March 2026 has 31 × 1,440 = 44,640 minutes, all observed (every port and charge point exists and is
    present before March 1, and the as-of time is after the month).

    - CP-1 port 1: FAULTED 10:00-11:30 on the 10th = 90 outage minutes; the maintenance window 11:00-12:00
      covers 11:00-11:30 of it = 30 excluded. uptime = (44,640 - (90 - 30)) / 44,640 × 100
      = 44,580 / 44,640 × 100 = 99.86559…, 99.866 to three places. One outage.
    - CP-1 port 2: a charging session is not an outage: 0 outage minutes, 100.000.
    - CP-2 port 1: its charge point silent 08:00-10:00 on the 15th = 120 outage minutes, none excluded.
      uptime = 44,520 / 44,640 × 100 = 99.73118…, 99.731. One outage.
    - CP-3 port 1 (EVSE 1): connector 1 FAULTED for a day while connector 2 is AVAILABLE: the port is
      AVAILABLE, so 0 outage minutes, 100.000.
    """
    await apply_events(conn, hand_computed_month())
    await add_exclusion(conn, *MAINTENANCE)
    assert await uptime(conn) == {
        ("CP-1", 1): (D("44640.00"), D("90.00"), D("30.00"), D("99.866"), 1),
        ("CP-1", 2): (D("44640.00"), D("0.00"), D("0.00"), D("100.000"), 0),
        ("CP-2", 1): (D("44640.00"), D("120.00"), D("0.00"), D("99.731"), 1),
        ("CP-3", 1): (D("44640.00"), D("0.00"), D("0.00"), D("100.000"), 0),
    }
    assert MARCH_MINUTES == 44640


async def test_hand_computed_month_outage_list(conn):
    """The two outages of the month, each with its own start and end, minutes, excluded minutes, the cause at
    its start (FAULTED: the port's own status; OFFLINE: the charge point was not present) and the 1.6 fault
    details in force at its start."""
    await apply_events(conn, hand_computed_month())
    await add_exclusion(conn, *MAINTENANCE)
    assert await outages(conn) == [
        ("CP-1", 1, t("2026-03-10T10:00"), t("2026-03-10T11:30"), D("90.00"), D("30.00"), "FAULTED",
         "GROUND_FAILURE", "E-17"),
        ("CP-2", 1, t("2026-03-15T08:00"), t("2026-03-15T10:00"), D("120.00"), D("0.00"), "OFFLINE", None, None),
    ]


async def test_outage_minutes_are_the_sum_of_the_list(conn):
    """Per port, the outage list's minutes and excluded minutes add up to the uptime row's (same observed part,
    same exclusions), here on a month with outages cut by both ends of the period and by the as-of time."""
    events = hand_computed_month() + [
        status("CP-1", 2, t("2026-02-28T23:30"), "FAULTED"),
        status("CP-1", 2, t("2026-03-01T02:00"), "AVAILABLE"),
        status("CP-2", 1, t("2026-03-31T20:00"), "UNAVAILABLE"),
    ]
    await apply_events(conn, events)
    await add_exclusion(conn, *MAINTENANCE)
    await add_exclusion(conn, "CP-2", None, t("2026-03-15T09:00"), t("2026-04-02T00:00"), 1)
    for as_of in (AFTER, t("2026-03-31T21:00")):
        figures = await uptime(conn, as_of=as_of)
        listed = await outages(conn, as_of=as_of)
        for port, (observed, outage, excluded, _, count) in figures.items():
            mine = [o for o in listed if (o[0], o[1]) == port]
            assert len(mine) == count
            assert sum(o[4] for o in mine) == outage
            assert sum(o[5] for o in mine) == excluded


# ------------------------------------------------------------------------------------------ the rule, case by case


async def test_half_up_rounding(conn):
    """Minutes to two places and percent to three, half up (a half-even rounding would give 1.50 and 99.998).

    Port 1: FAULTED for 40.176 s = 0.6696 min → 0.67; uptime = (44,640 - 0.6696) / 44,640 × 100
    = 100 - 0.0015 = 99.9985 exactly → 99.999.
    Port 2: FAULTED for 90.3 s = 1.505 min → 1.51; uptime = 100 - 1.505 / 446.4 = 99.99662… → 99.997.
    """
    await apply_events(conn, present_throughout("CP-R") + rounding_statuses())
    assert await uptime(conn) == {
        ("CP-R", 1): (D("44640.00"), D("0.67"), D("0.00"), D("99.999"), 1),
        ("CP-R", 2): (D("44640.00"), D("1.51"), D("0.00"), D("99.997"), 1),
    }


async def test_spans_keep_their_own_start_and_end(conn):
    """An outage that began before the period keeps its own start; one that ends after it keeps its own end;
    one still going at the as-of time has no end. Minutes count only the part inside the period and before
    the as-of time."""
    await apply_events(conn, present_throughout("CP-X") + [
        status("CP-X", 1, t("2026-02-20T00:00"), "AVAILABLE"),
        status("CP-X", 1, t("2026-02-27T12:00"), "UNAVAILABLE"),
        status("CP-X", 1, t("2026-03-02T00:00"), "AVAILABLE"),
        status("CP-X", 1, t("2026-03-31T23:00"), "FAULTED", "OTHER_ERROR", vendor_error="V-9"),
        status("CP-X", 1, t("2026-04-01T01:00"), "AVAILABLE"),
    ])
    before = ("CP-X", 1, t("2026-02-27T12:00"), t("2026-03-02T00:00"), D("1440.00"), D("0.00"), "UNAVAILABLE",
              None, None)
    assert await outages(conn) == [
        before, ("CP-X", 1, t("2026-03-31T23:00"), t("2026-04-01T01:00"), D("60.00"), D("0.00"), "FAULTED",
                 "OTHER_ERROR", "V-9")]
    # As of 00:30 on April 1st the fault is still going on: no end, yet only March's 60 minutes count.
    assert (await outages(conn, as_of=t("2026-04-01T00:30")))[1][3:5] == (None, D("60.00"))
    # As of 23:30 on March 31st: no end, 30 minutes; and the month is observed up to then only.
    assert (await outages(conn, as_of=t("2026-03-31T23:30")))[1][3:5] == (None, D("30.00"))
    assert (await uptime(conn, as_of=t("2026-03-31T23:30")))[("CP-X", 1)][:2] == (D("44610.00"), D("1470.00"))


async def test_cause_is_the_first_that_applies_at_the_start(conn):
    """FAULTED before UNAVAILABLE before OFFLINE, at the span's own start; a span goes on while any reason
    holds (a fault followed without a gap by the charge point going silent is one outage)."""
    await apply_events(conn, present_throughout("CP-C", gaps=((t("2026-03-05T10:00"), t("2026-03-05T12:00")),)) + [
        status("CP-C", 1, t("2026-02-28T00:00"), "AVAILABLE"),
        status("CP-C", 2, t("2026-02-28T00:00"), "AVAILABLE"),
        # Port 1 faulted 09:00-10:30 while the charge point is silent 10:00-12:00: one span 09:00-12:00.
        # (The charger reports its 10:30 status when it is heard from again, at 12:00.)
        status("CP-C", 1, t("2026-03-05T09:00"), "FAULTED", "GROUND_FAILURE"),
        status("CP-C", 1, t("2026-03-05T10:30"), "AVAILABLE", received=t("2026-03-05T12:00")),
        # The charge point itself UNAVAILABLE 06:00-07:00 on the 7th while port 2 is FAULTED from the same
        # instant: port 2's cause is FAULTED, port 1's UNAVAILABLE.
        status("CP-C", 0, t("2026-03-07T06:00"), "UNAVAILABLE"),
        status("CP-C", 2, t("2026-03-07T06:00"), "FAULTED", "OVER_VOLTAGE"),
        status("CP-C", 0, t("2026-03-07T07:00"), "AVAILABLE"),
        status("CP-C", 2, t("2026-03-07T07:00"), "AVAILABLE"),
    ])
    assert [(o[1], o[2], o[3], o[6], o[7]) for o in await outages(conn)] == [
        (1, t("2026-03-05T09:00"), t("2026-03-05T12:00"), "FAULTED", "GROUND_FAILURE"),
        (1, t("2026-03-07T06:00"), t("2026-03-07T07:00"), "UNAVAILABLE", None),
        (2, t("2026-03-05T10:00"), t("2026-03-05T12:00"), "OFFLINE", None),
        (2, t("2026-03-07T06:00"), t("2026-03-07T07:00"), "FAULTED", "OVER_VOLTAGE"),
    ]


async def test_evse_port_is_the_highest_of_its_connectors(conn):
    """A 2.x port is down only when its best connector is FAULTED or UNAVAILABLE: connector 1 FAULTED from
    the 3rd is not an outage while connector 2 is AVAILABLE; from the 4th 00:00 connector 2 is UNAVAILABLE,
    so the port is FAULTED (FAULTED ranks above UNAVAILABLE) until connector 1 is OCCUPIED at 06:00. The
    NotifyEvent's items are statuses like any other."""
    notify = NotifyEvent(uuid.uuid4(), "CP-E", "2.0.1", t("2026-03-04T06:00"), t("2026-03-04T06:00"), False,
                         statuses=(status_2x("CP-E", 1, 1, t("2026-03-04T06:00"), "OCCUPIED"),), ignored_items=0)
    await apply_events(conn, present_throughout("CP-E") + [
        status_2x("CP-E", 1, 1, t("2026-02-28T00:00"), "AVAILABLE"),
        status_2x("CP-E", 1, 2, t("2026-02-28T00:00"), "AVAILABLE"),
        status_2x("CP-E", 1, 1, t("2026-03-03T00:00"), "FAULTED"),
        status_2x("CP-E", 1, 2, t("2026-03-04T00:00"), "UNAVAILABLE"),
        notify,
    ])
    assert [o[2:7] for o in await outages(conn)] == [
        (t("2026-03-04T00:00"), t("2026-03-04T06:00"), D("360.00"), D("0.00"), "FAULTED")]


async def test_port_in_both_families_shows_its_newest(conn):
    """A charger upgraded in place: port 1 FAULTED in 1.6 from the 2nd; its first 2.x status, AVAILABLE, on the
    3rd makes the port show 2.x (up), although the 1.6 state is still FAULTED; a late-arriving 1.6 event of the
    5th (received on the 9th) makes it show 1.6 again from the 5th, UNAVAILABLE, until the next 2.x event. And
    the other way round: its 2.x connector FAULTED on the 7th, then a 1.6 AVAILABLE on the 8th: up from the 8th,
    though the 2.x state is still FAULTED (no 1.6 fault details for a span that began in 2.x)."""
    await apply_events(conn, present_throughout("CP-U") + [
        status("CP-U", 1, t("2026-02-28T00:00"), "AVAILABLE"),
        status("CP-U", 1, t("2026-03-02T00:00"), "FAULTED", "INTERNAL_ERROR", vendor_error="K-1"),
        status_2x("CP-U", 1, 1, t("2026-03-03T00:00"), "AVAILABLE"),
        status("CP-U", 1, t("2026-03-05T00:00"), "UNAVAILABLE", received=t("2026-03-09T00:00")),
        status_2x("CP-U", 1, 1, t("2026-03-06T00:00"), "OCCUPIED"),
        status_2x("CP-U", 1, 1, t("2026-03-07T00:00"), "FAULTED"),
        status("CP-U", 1, t("2026-03-08T00:00"), "AVAILABLE"),
    ])
    assert [o[2:9] for o in await outages(conn)] == [
        (t("2026-03-02T00:00"), t("2026-03-03T00:00"), D("1440.00"), D("0.00"), "FAULTED", "INTERNAL_ERROR", "K-1"),
        (t("2026-03-05T00:00"), t("2026-03-06T00:00"), D("1440.00"), D("0.00"), "UNAVAILABLE", None, None),
        (t("2026-03-07T00:00"), t("2026-03-08T00:00"), D("1440.00"), D("0.00"), "FAULTED", None, None),
    ]


async def test_same_effective_time_last_writer_wins(conn):
    """Two statuses stamped with the same second: the one the gateway received later holds (the version
    order), whatever order they are written in, even though the other has the greater event id; the other holds
    for no time at all. The same for a 1.6 port (the 10th), the charge point's own status (the 12th) and a 2.x
    port's physical connector (the 14th)."""
    def tie(day: str, make) -> list:
        """(the earlier-received AVAILABLE with the greatest event id, the later-received down status, back up an
        hour later), newest first."""
        at = t(f"2026-03-{day}T10:00")
        return [make(t(f"2026-03-{day}T11:00"), "AVAILABLE", at + timedelta(hours=1), uuid.uuid4()),
                make(at, "FAULTED", at + timedelta(seconds=0.2), uuid.UUID(int=1)),
                make(at, "AVAILABLE", at + timedelta(seconds=0.1), uuid.UUID(int=2**128 - 1))]

    await apply_events(conn, present_throughout("CP-T") + [status("CP-T", 1, t("2026-02-28T00:00"), "AVAILABLE"),
                                                          status_2x("CP-T", 2, 1, t("2026-02-28T00:00"), "AVAILABLE")])
    events = (tie("10", lambda at, s, r, e: status("CP-T", 1, at, s, received=r, event_id=e))
              + tie("12", lambda at, s, r, e: status("CP-T", 0, at, s, received=r, event_id=e))
              + tie("14", lambda at, s, r, e: status_2x("CP-T", 2, 1, at, s, received=r, event_id=e)))
    for event in events:  # one batch each, newest first
        await apply_events(conn, [event])
    assert [o[1:5] for o in await outages(conn)] == [
        (1, t("2026-03-10T10:00"), t("2026-03-10T11:00"), D("60.00")),
        (1, t("2026-03-12T10:00"), t("2026-03-12T11:00"), D("60.00")),
        (2, t("2026-03-12T10:00"), t("2026-03-12T11:00"), D("60.00")),
        (2, t("2026-03-14T10:00"), t("2026-03-14T11:00"), D("60.00")),
    ]


async def test_observed_from_first_status_and_first_presence(conn):
    """A port is observed from the latest of the period's start, its first status event and its charge point's
    first presence; before its first status event it does not exist (no row at all for a period before it).
    A charge point never present has nothing observed: its ports' uptime is NULL, not 100. An outage that began
    before its charge point was first present keeps its own start, but only its observed minutes count, in the
    list as in outage_minutes."""
    await apply_events(conn, [
        # CP-N first heard from on the 11th at 00:00 (heartbeats), its port's first status on the 21st.
        *heartbeats("CP-N", t("2026-03-11T00:00"), t("2026-05-01T00:00")),
        status("CP-N", 1, t("2026-03-21T00:00"), "AVAILABLE"),
        # CP-H: a port status, then present only from the 11th: OFFLINE before that, but not observed.
        status("CP-H", 1, t("2026-03-01T00:00"), "AVAILABLE", received=t("2026-03-11T00:00")),
        *heartbeats("CP-H", t("2026-03-11T00:00"), t("2026-05-01T00:00")),
        # CP-H port 2 FAULTED from the 1st to the 12th: observed from the 11th, so 1,440 minutes count.
        status("CP-H", 2, t("2026-03-01T00:00"), "FAULTED", received=t("2026-03-11T00:00")),
        status("CP-H", 2, t("2026-03-12T00:00"), "AVAILABLE"),
    ])
    figures = await uptime(conn)
    assert figures[("CP-N", 1)] == (D(11 * 1440), D(0), D(0), D(100), 0)  # 21st to the end: 11 days
    assert figures[("CP-H", 1)] == (D(21 * 1440), D(0), D(0), D(100), 0)  # 11th to the end: 21 days
    # (30,240 - 1,440) / 30,240 × 100 = 95.238…
    assert figures[("CP-H", 2)] == (D(21 * 1440), D(1440), D(0), D("95.238"), 1)
    assert await outages(conn) == [
        ("CP-H", 2, t("2026-03-01T00:00"), t("2026-03-12T00:00"), D("1440.00"), D("0.00"), "FAULTED", None, None)]
    nothing = (D(0), D(0), D(0), None, 0)
    assert await uptime(conn, MARCH, t("2026-03-11T00:00")) == {("CP-H", 1): nothing, ("CP-H", 2): nothing}
    assert await uptime(conn, MARCH, t("2026-03-02T00:00")) == {("CP-H", 1): nothing, ("CP-H", 2): nothing}
    assert ("CP-N", 1) not in await uptime(conn, MARCH, t("2026-03-21T00:00"))


async def test_exclusions_apply_to_their_port_or_the_whole_charge_point(conn):
    """An exclusion with a port applies to that port only; one without applies to every port of its charge
    point; overlapping windows count each minute once; another charge point's window does nothing."""
    await apply_events(conn, present_throughout("CP-1", "CP-2") + [
        status("CP-1", 1, t("2026-02-28T00:00"), "AVAILABLE"),
        status("CP-1", 2, t("2026-02-28T00:00"), "AVAILABLE"),
        status("CP-1", 0, t("2026-03-10T10:00"), "UNAVAILABLE"),  # both ports down 10:00-12:00
        status("CP-1", 0, t("2026-03-10T12:00"), "AVAILABLE"),
        status("CP-2", 1, t("2026-02-28T00:00"), "AVAILABLE"),
    ])
    await add_exclusion(conn, "CP-1", 1, t("2026-03-10T09:00"), t("2026-03-10T10:30"), 1)   # 30 min of port 1
    await add_exclusion(conn, "CP-1", None, t("2026-03-10T10:15"), t("2026-03-10T10:45"), 5)  # 15 more of port 1
    await add_exclusion(conn, "CP-2", None, t("2026-03-10T00:00"), t("2026-03-11T00:00"), 5)
    figures = await uptime(conn)
    assert figures[("CP-1", 1)][:3] == (D("44640.00"), D("120.00"), D("45.00"))
    assert figures[("CP-1", 2)][:3] == (D("44640.00"), D("120.00"), D("30.00"))
    assert figures[("CP-1", 2)][3] == round((D(44640) - D(90)) / D(44640) * 100, 3)
    assert figures[("CP-2", 1)][:3] == (D("44640.00"), D("0.00"), D("0.00"))


async def test_empty_or_reversed_period_is_an_error(conn):
    for start, end in ((MARCH, MARCH), (APRIL, MARCH)):
        for function in ("port_uptime", "port_outages"):
            with pytest.raises(asyncpg.InvalidParameterValueError, match="empty or reversed"):
                await conn.fetch(f"SELECT * FROM {function}($1, $2)", start, end)


async def test_the_report_plans_the_same_in_every_session(conn):
    """The planner settings the report's speed depends on are the functions' own, not the caller's: an analyst's
    session with a larger work_mem made the planner memoize every series probe, and the report ~4× slower
    (migration 0007; BENCHMARKS.md, "The report's SQL (migration 0007)")."""
    rows = await conn.fetch("SELECT proname, proconfig FROM pg_proc WHERE proname IN ('port_uptime', 'port_outages')")
    assert {row["proname"]: sorted(row["proconfig"] or []) for row in rows} == {
        "port_uptime": ["enable_memoize=off", "jit=off"], "port_outages": ["enable_memoize=off", "jit=off"]}


async def rows_read(conn, partition: str) -> int:
    """Rows and index entries the server has read from a table: by its scans, and by scans of its indexes (which
    count index-only scans too, unlike idx_tup_fetch), with this session's counts flushed first."""
    await conn.execute("SELECT pg_stat_force_next_flush()")  # flushed as the session goes idle after it
    return await conn.fetchval(
        "SELECT t.seq_tup_read + (SELECT coalesce(sum(i.idx_tup_read), 0)::bigint FROM pg_stat_user_indexes AS i "
        "                         WHERE i.relid = t.relid) "
        "FROM pg_stat_user_tables AS t WHERE t.relname = $1", partition)


@pytest.mark.parametrize("function", ["port_uptime", "port_outages"])
async def test_the_status_in_force_is_found_without_reading_the_ports_past(conn, function):
    """The lookups of a 1.6 port's status in force at a moment (the period's start; an outage's start, for its
    fault details) read the newest rows before it, not every row the port has in retained history: the report's
    cost must not grow with the months kept (migration 0008). Here two ports with 3,000 statuses each in
    February; the March report reads a handful of February's rows, with or without the planner's statistics of
    them (none here: a month just written may not have been analyzed yet). What it finds is still the version
    order's winner: at the period's start two statuses share the second, and the one received later holds
    (AVAILABLE), though the other has the greater event id; the port faults a day later, until after the month."""
    every_10_minutes = [t("2026-02-01T00:00") + timedelta(minutes=10 * i) for i in range(3000)]
    past = [status("CP-1", 1, at, ("AVAILABLE", "CHARGING")[i % 2]) for i, at in enumerate(every_10_minutes)]
    # and a 2.x port's connector, whose rows the index gives in order already
    past += [status_2x("CP-1", 2, 1, at, ("AVAILABLE", "OCCUPIED")[i % 2]) for i, at in enumerate(every_10_minutes)]
    tie = [status("CP-1", 1, MARCH, "AVAILABLE", received=MARCH + timedelta(seconds=0.2), event_id=uuid.UUID(int=1)),
           status("CP-1", 1, MARCH, "FAULTED", "GROUND_FAILURE", received=MARCH + timedelta(seconds=0.1),
                  event_id=uuid.UUID(int=2**128 - 1))]
    faulted = t("2026-03-02T00:00")
    fault = status("CP-1", 1, faulted, "FAULTED", "GROUND_FAILURE", vendor_error="E-17")
    await apply_events(conn, [*past, *tie, fault, *present_throughout("CP-1")])
    before = await rows_read(conn, "status_history_2026_02")
    rows = [tuple(row) for row in await conn.fetch(f"SELECT * FROM {function}($1, $2, $3)", MARCH, APRIL, AFTER)]
    assert await rows_read(conn, "status_history_2026_02") - before < 10
    down = MARCH_MINUTES - 24 * 60
    if function == "port_uptime":  # observed and outage minutes, outages
        assert [row[:4] + row[-1:] for row in rows] == [("CP-1", 1, MARCH_MINUTES, down, 1),
                                                        ("CP-1", 2, MARCH_MINUTES, 0, 0)]
    else:  # its own start; still down at as_of (end NULL); the fault details in force at its start
        assert rows == [("CP-1", 1, faulted, None, down, 0, "FAULTED", "GROUND_FAILURE", "E-17")]


OLDER_MONTHS = ("status_history_2025_11", "status_history_2025_12", "status_history_2026_01")


async def scans(conn, *tables: str) -> tuple[int, int]:
    """How often the server has scanned these tables by any of their indexes, and sequentially, with this
    session's counts flushed first."""
    await conn.execute("SELECT pg_stat_force_next_flush()")  # flushed as the session goes idle after it
    return tuple(await conn.fetchrow(
        "SELECT coalesce(sum(idx_scan), 0)::bigint, coalesce(sum(seq_scan), 0)::bigint FROM pg_stat_user_tables "
        "WHERE relname = ANY ($1::text[])", list(tables)))


async def month_by_month(conn) -> tuple[datetime, datetime]:
    """CP-1: its 1.6 port, its 2.x port's connector and its own status (connector 0) each with a status in
    every month from November 2025 to February 2026; in force on March 1st is February's (CHARGING over
    January's FAULTED; the own status AVAILABLE over January's UNAVAILABLE); the 1.6 port faults on March 2nd
    for a day.
    CP-2, silent since November: its 1.6 port FAULTED then, its own status UNAVAILABLE since December (so its
    2.x port is down too). Both present from February 20th. Returns when the two faults began."""
    months = [t("2025-11-10T00:00"), t("2025-12-10T00:00"), t("2026-01-10T00:00"), t("2026-02-10T00:00")]
    events = [status("CP-1", 1, at, value) for at, value in zip(months, ("AVAILABLE", "AVAILABLE", "FAULTED",
                                                                          "CHARGING"))]
    events += [status_2x("CP-1", 2, 1, at, value) for at, value in zip(months, ("OCCUPIED", "AVAILABLE", "FAULTED",
                                                                                 "AVAILABLE"))]
    events += [status("CP-1", 0, at, value) for at, value in zip(months, ("AVAILABLE", "AVAILABLE", "UNAVAILABLE",
                                                                          "AVAILABLE"))]
    faulted, silent_since = t("2026-03-02T00:00"), months[0]
    events += [status("CP-1", 1, faulted, "FAULTED", "GROUND_FAILURE", vendor_error="E-17"),
               status("CP-1", 1, faulted + timedelta(days=1), "AVAILABLE"),
               status("CP-2", 1, silent_since, "FAULTED", "POWER_SWITCH_FAILURE", vendor_error="E-9"),
               status_2x("CP-2", 2, 1, silent_since, "AVAILABLE"),
               status("CP-2", 0, months[1], "UNAVAILABLE"),
               *present_throughout("CP-1", "CP-2")]
    await apply_events(conn, events)
    return faulted, silent_since


@pytest.mark.parametrize("function", ["port_uptime", "port_outages"])
async def test_the_status_in_force_is_looked_for_in_the_month_before_the_period_first(conn, function):
    """The report's cost must not grow with the months of history kept (migration 0009): a series that has a
    status in the month before the period is not read in the months before that, and one silent since is found
    there. The March report of CP-1 alone probes none of November, December and January by index (it reads the
    oldest month's first row once, to know that there is history before February); of both, it is right."""
    faulted, silent_since = await month_by_month(conn)
    index_scans, sequential_scans = await scans(conn, *OLDER_MONTHS)
    one = await conn.fetch(f"SELECT * FROM {function}($1, $2, $3, 'CP-1', 'CP-2')", MARCH, APRIL, AFTER)
    after = await scans(conn, *OLDER_MONTHS)
    assert after[0] == index_scans and after[1] <= sequential_scans + 1
    rows = [tuple(row) for row in await conn.fetch(f"SELECT * FROM {function}($1, $2, $3)", MARCH, APRIL, AFTER)]
    assert [tuple(row) for row in one] == rows[:len(one)]
    if function == "port_uptime":  # observed and outage minutes, outages
        assert [row[:4] + row[-1:] for row in rows] == [("CP-1", 1, MARCH_MINUTES, 24 * 60, 1),
                                                        ("CP-1", 2, MARCH_MINUTES, 0, 0),
                                                        ("CP-2", 1, MARCH_MINUTES, MARCH_MINUTES, 1),
                                                        ("CP-2", 2, MARCH_MINUTES, MARCH_MINUTES, 1)]
    else:  # own starts and ends (None: down at as_of), the fault details in force at the start. CP-2's 1.6 port
        # FAULTED since its status; its 2.x port offline once that status's presence ended (the window, 10 minutes).
        assert rows == [("CP-1", 1, faulted, faulted + timedelta(days=1), 24 * 60, 0, "FAULTED", "GROUND_FAILURE",
                         "E-17"),
                        ("CP-2", 1, silent_since, None, MARCH_MINUTES, 0, "FAULTED", "POWER_SWITCH_FAILURE", "E-9"),
                        ("CP-2", 2, silent_since + timedelta(minutes=10), None, MARCH_MINUTES, 0, "OFFLINE", None,
                         None)]


async def test_an_outage_that_began_before_the_period_is_read_back_only_as_far_as_it_reaches(conn):
    """To find when an outage ongoing at the period's start began, port_outages reads the history back a day, a
    week, a month, a quarter, a year and then all of it, each step only for the charge points still down at the
    step's start (migration 0009): what it reads grows with the outage, not with the history kept. CP-1, with a
    status every month since November, faults on February 20th: its outage is found within a month, and
    November and December are not probed by index. CP-2, down since November 10th (its first status, FAULTED;
    present from February 20th), is found a year back, and its port 2, UNAVAILABLE since February 25th (its
    first status), a week back, once; CP-3, FAULTED on 2025-03-01 and never since, in the whole history."""
    months = [t("2025-11-10T00:00"), t("2025-12-10T00:00"), t("2026-01-10T00:00")]
    cp1_fault = t("2026-02-20T06:00")
    await apply_events(conn, [*(status("CP-1", 1, at, "AVAILABLE") for at in months),
                              status("CP-1", 1, cp1_fault, "FAULTED", "GROUND_FAILURE", vendor_error="E-17"),
                              *present_throughout("CP-1", start=t("2025-11-01T00:00"))])
    index_scans, _ = await scans(conn, "status_history_2025_11", "status_history_2025_12")
    rows = await outages(conn, as_of=t("2026-03-20T00:00"))
    assert (await scans(conn, "status_history_2025_11", "status_history_2025_12"))[0] == index_scans
    march_20 = MARCH_MINUTES - 12 * 24 * 60
    assert rows == [("CP-1", 1, cp1_fault, None, march_20, 0, "FAULTED", "GROUND_FAILURE", "E-17")]

    cp2_fault, cp2_off, cp3_fault = t("2025-11-10T00:00"), t("2026-02-25T00:00"), t("2025-03-01T00:00")
    await apply_events(conn, [status("CP-2", 1, cp2_fault, "FAULTED", "POWER_SWITCH_FAILURE", vendor_error="E-9"),
                              status("CP-2", 2, cp2_off, "UNAVAILABLE"),
                              status("CP-3", 1, cp3_fault, "FAULTED", "OVER_VOLTAGE"),
                              *present_throughout("CP-2", "CP-3")])
    assert await outages(conn, as_of=t("2026-03-20T00:00")) == rows + [
        ("CP-2", 1, cp2_fault, None, march_20, 0, "FAULTED", "POWER_SWITCH_FAILURE", "E-9"),
        ("CP-2", 2, cp2_off, None, march_20, 0, "UNAVAILABLE", None, None),
        ("CP-3", 1, cp3_fault, None, march_20, 0, "FAULTED", "OVER_VOLTAGE", None)]


async def test_as_of_defaults_to_now(conn):
    """Without an as-of time, minutes after now are not observed: a port faulted since an hour ago has an
    ongoing outage of about 60 minutes in a period that ends tomorrow."""
    now = datetime.now(UTC).replace(microsecond=0)
    await apply_events(conn, [*heartbeats("CP-1", now - timedelta(hours=3), now),
                              status("CP-1", 1, now - timedelta(hours=3), "AVAILABLE"),
                              status("CP-1", 1, now - timedelta(hours=1), "FAULTED")])
    (row,) = await conn.fetch("SELECT * FROM port_outages($1, $2)", now - timedelta(days=1), now + timedelta(days=1))
    assert row["start"] == now - timedelta(hours=1) and row["end"] is None
    assert D(60) <= row["minutes"] < D(62)


# ------------------------------------------------------------------------------------------ the rule = the state's


def random_fleet(rng: random.Random, now: datetime) -> list:
    """A few charge points over the two days before `now`, on a 30-minute grid (so statuses often share an
    effective time), received up to 40 s later (so the version order's second element decides ties): 1.6
    ports, 2.x EVSEs with two connectors (some through NotifyEvent), ports reported in both families, the
    charge point's own status, and heartbeats with gaps longer than the presence window."""
    statuses_16 = ["AVAILABLE", "PREPARING", "CHARGING", "FINISHING", "UNAVAILABLE", "FAULTED", "RESERVED"]
    statuses_2x = ["AVAILABLE", "OCCUPIED", "RESERVED", "UNAVAILABLE", "FAULTED"]
    start = now - timedelta(days=2)
    events: list = []

    def moment() -> tuple[datetime, datetime]:
        at = start + timedelta(minutes=30 * rng.randrange(0, 2 * 24 * 2 - 1))
        return at, at + timedelta(seconds=rng.choice((0, 0, 5, 40)))

    for n in range(12):
        cp = f"CP-{n}"
        for _ in range(rng.randrange(3, 40)):
            at, received = moment()
            events.append(Heartbeat(uuid.uuid4(), cp, "1.6", received, at, False))
        for _ in range(rng.randrange(0, 6)):
            at, received = moment()
            events.append(status(cp, 0, at, rng.choice(["AVAILABLE", "UNAVAILABLE", "FAULTED"]), received=received))
        for port in (1, 2):
            families = rng.choice(("1.6", "2.x", "both", "both"))
            for _ in range(rng.randrange(1, 25)):
                at, received = moment()
                if families == "1.6" or (families == "both" and rng.random() < 0.5):
                    events.append(status(cp, port, at, rng.choice(statuses_16), received=received,
                                         vendor_error=rng.choice((None, "E-1"))))
                elif rng.random() < 0.3:
                    items = tuple(status_2x(cp, port, c, at, rng.choice(statuses_2x), received=received)
                                  for c in (1, 2) if rng.random() < 0.7)
                    events.append(NotifyEvent(uuid.uuid4(), cp, "2.1", received, at, False, statuses=items,
                                              ignored_items=0))
                else:
                    events.append(status_2x(cp, port, rng.choice((1, 2)), at, rng.choice(statuses_2x),
                                            received=received))
    return events


async def state_down(conn, as_of: datetime) -> dict[tuple[str, int], bool]:
    """Down by the state tables: the port's status, its charge point's own status, or not present at as_of."""
    rows = await conn.fetch(
        """SELECT c.charge_point_id, c.connector_id,
                  c.status IN ('FAULTED', 'UNAVAILABLE') OR coalesce(cp.status IN ('FAULTED', 'UNAVAILABLE'), false)
                  OR NOT EXISTS (SELECT FROM charge_point_presence AS p
                                 WHERE p.charge_point_id = c.charge_point_id AND p.present @> $1::timestamptz) AS down
           FROM connector AS c JOIN charge_point AS cp ON cp.serial_number = c.charge_point_id""", as_of)
    return {(r["charge_point_id"], r["connector_id"]): r["down"] for r in rows}


@pytest.mark.parametrize("seed", range(8))
async def test_down_by_the_functions_is_down_by_the_state(conn, seed):
    """The functions use the rule the state tables use. Events are written in effective-time order up to each
    checkpoint (30 s past a grid instant, so no event shares its instant), where the state tables say what is
    current; once all are written, port_outages as of that checkpoint must have an ongoing outage for exactly
    the ports the state said were down (a port whose charge point has never been present is not observed, and
    must be down by the state)."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    events = sorted(random_fleet(rng, now), key=lambda e: e.effective_at)
    # Half at random, half just after an event's effective time (where ties and family changes show).
    checkpoints = sorted({now - timedelta(days=2) + timedelta(minutes=rng.randrange(30, 2 * 24 * 60), seconds=30)
                          for _ in range(15)}
                         | {rng.choice(events).effective_at + timedelta(seconds=30) for _ in range(15)}
                         | {now - timedelta(seconds=30)})
    expected: dict[datetime, dict] = {}
    written = 0
    for checkpoint in checkpoints:
        upto = next((i for i, e in enumerate(events) if e.effective_at > checkpoint), len(events))
        if upto > written:
            await apply_events(conn, events[written:upto])
            written = upto
        expected[checkpoint] = await state_down(conn, checkpoint)
    await apply_events(conn, events[written:])
    compared = 0
    for checkpoint, down in expected.items():
        start = now - timedelta(days=3)
        ongoing = {(o[0], o[1]) for o in await outages(conn, start, now + timedelta(days=1), checkpoint)
                   if o[3] is None}
        observed = {port: row[0] > 0 for port, row in
                    (await uptime(conn, start, now + timedelta(days=1), checkpoint)).items()}
        for port, is_down in down.items():
            if observed.get(port):
                assert (port in ongoing) == is_down, (checkpoint, port)
                compared += 1
            else:
                assert is_down, (checkpoint, port)
        assert ongoing <= set(down)
    assert compared > 300
