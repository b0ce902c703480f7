"""Events for the uptime report's tests: builders, and the issue's hand-computed month as events.

The report is computed from what the write path stores (status_history, charge_point_presence), so the tests feed
events through `consumer.store.apply_events`, never rows: what they check is what a deployment would report.
Shared by tests/test_report.py, tests/test_report_cli.py and tests/test_report_docs.py (a helper module, like
tests/oracle.py, not a test module).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from schemas.events import Heartbeat, StatusNotification

UTC = timezone.utc
MARCH = datetime(2026, 3, 1, tzinfo=UTC)  # the hand-computed month: [2026-03-01, 2026-04-01), 31 days
APRIL = datetime(2026, 4, 1, tzinfo=UTC)
MARCH_MINUTES = 31 * 24 * 60  # 44,640


def t(text: str) -> datetime:
    """'2026-03-10T10:00' (UTC) as a datetime; seconds and fractions allowed."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def status(cp: str, connector: int, when: datetime, value: str, error: str | None = None, *,
           vendor_error: str | None = None, received: datetime | None = None,
           event_id: uuid.UUID | None = None) -> StatusNotification:
    """An OCPP 1.6 StatusNotification (connector 0: the charge point itself)."""
    return StatusNotification(event_id or uuid.uuid4(), cp, "1.6", received or when, when, False, connector, value,
                              error, None, None, "com.example" if vendor_error else None, vendor_error)


def status_2x(cp: str, evse: int, connector: int, when: datetime, value: str, *,
              received: datetime | None = None, event_id: uuid.UUID | None = None) -> StatusNotification:
    """An OCPP 2.0.1 StatusNotification of one physical connector of an EVSE (the port is the EVSE)."""
    return StatusNotification(event_id or uuid.uuid4(), cp, "2.0.1", received or when, when, False, evse, value,
                              None, connector)


def heartbeats(cp: str, start: datetime, end: datetime, every: timedelta = timedelta(minutes=10),
               gaps: tuple[tuple[datetime, datetime], ...] = ()) -> list[Heartbeat]:
    """A heartbeat every `every` from `start` (included) to `end` (excluded), none inside a gap [a, b). With the
    600 s presence window, one every 10 minutes keeps the charge point present without a break."""
    beats = []
    moment = start
    while moment < end:
        if not any(a <= moment < b for a, b in gaps):
            beats.append(Heartbeat(uuid.uuid4(), cp, "1.6", moment, moment, False))
        moment += every
    return beats


def hand_computed_month() -> list:
    """The issue's month, March 2026, every charge point heard from every 10 minutes from 2026-02-28T23:00
    until after the month, except as said:

    - CP-1 (1.6): port 1 AVAILABLE, FAULTED (GROUND_FAILURE, vendor code E-17) from 03-10 10:00 to 11:30,
      90 minutes; the operator excludes 11:00-12:00 for maintenance (added by the test: exclusions are not
      events), so 30 of the 90 minutes are excluded. Port 2 AVAILABLE, with a charging session (up throughout).
    - CP-2 (1.6): port 1 AVAILABLE; the charge point is silent from 03-15 08:00 to 10:00: its last heartbeat
      before is at 07:50 (present until 08:00), the next at 10:00, so it is offline for 120 minutes.
    - CP-3 (2.0.1): EVSE 1 with two connectors, both AVAILABLE; connector 1 FAULTED from 03-20 06:00 to 03-21
      06:00 while connector 2 stays AVAILABLE, so the port is AVAILABLE (the highest of its connectors): up.
    """
    start, end = t("2026-02-28T23:00"), t("2026-04-01T00:30")
    events: list = []
    for cp in ("CP-1", "CP-2", "CP-3"):
        gaps = ((t("2026-03-15T08:00"), t("2026-03-15T10:00")),) if cp == "CP-2" else ()
        events += heartbeats(cp, start, end, gaps=gaps)
    events += [
        status("CP-1", 1, start, "AVAILABLE"),
        status("CP-1", 1, t("2026-03-10T10:00"), "FAULTED", "GROUND_FAILURE", vendor_error="E-17"),
        status("CP-1", 1, t("2026-03-10T11:30"), "AVAILABLE"),
        status("CP-1", 2, start, "AVAILABLE"),
        status("CP-1", 2, t("2026-03-12T09:00"), "PREPARING"),
        status("CP-1", 2, t("2026-03-12T09:01"), "CHARGING"),
        status("CP-1", 2, t("2026-03-12T10:00"), "FINISHING"),
        status("CP-1", 2, t("2026-03-12T10:02"), "AVAILABLE"),
        status("CP-2", 1, start, "AVAILABLE"),
        status_2x("CP-3", 1, 1, start, "AVAILABLE"),
        status_2x("CP-3", 1, 2, start, "AVAILABLE"),
        status_2x("CP-3", 1, 1, t("2026-03-20T06:00"), "FAULTED"),
        status_2x("CP-3", 1, 1, t("2026-03-21T06:00"), "AVAILABLE"),
    ]
    return events


MAINTENANCE = ("CP-1", 1, t("2026-03-10T11:00"), t("2026-03-10T12:00"), 3, "contactor replaced, WO-1234")


def rounding_statuses() -> list[StatusNotification]:
    """CP-R's two ports, each FAULTED once in March for a time whose minutes and uptime land on a rounding edge:
    port 1 for 40.176 s, port 2 for 90.3 s (the tests that use them say what half up must give)."""
    return [
        status("CP-R", 1, t("2026-02-28T23:00"), "AVAILABLE"),
        status("CP-R", 1, t("2026-03-03T12:00:00"), "FAULTED"),
        status("CP-R", 1, t("2026-03-03T12:00:40.176"), "AVAILABLE"),
        status("CP-R", 2, t("2026-02-28T23:00"), "AVAILABLE"),
        status("CP-R", 2, t("2026-03-04T12:00:00"), "FAULTED"),
        status("CP-R", 2, t("2026-03-04T12:01:30.3"), "AVAILABLE"),
    ]
