"""Ports against real PostgreSQL, by example: 2.x EVSEs with several connectors, a port reported in both OCPP
families, NotifyEvent availability, the fault and hardware details, untracked actions, and the roaming view.
The rules are docs/tables.md's ("Ports"); tests/test_store_property.py checks them in any order against the oracle.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import replace

import asyncpg
import pytest

from consumer.coalesce import coalesce
from consumer.migrate import migrate
from consumer.store import apply_events, write_batch
from schemas.events import BootNotification, Ignored, NotifyEvent
from tests.oracle import expected_state, fetch_state
from tests.test_store import at, boot, common, status, status_2x

pytestmark = pytest.mark.postgres


async def port(conn: asyncpg.Connection, cp: str = "CP-1", number: int = 1) -> asyncpg.Record:
    return await conn.fetchrow("SELECT * FROM connector WHERE charge_point_id = $1 AND connector_id = $2", cp, number)


async def reset(conn: asyncpg.Connection) -> None:
    await conn.execute("TRUNCATE charge_point, connector, evse_connector")


async def test_a_plugged_connector_makes_its_port_occupied_whatever_the_order(conn):
    """The issue's DC charger: one EVSE, CCS plugged (Occupied) and CHAdeMO blocked (Unavailable) in the same
    instant. The port is OCCUPIED, not UNAVAILABLE, in every order and batching; each connector keeps its own."""
    ccs = status_2x("CP-1", 1, 1, 10, "OCCUPIED")
    chademo = status_2x("CP-1", 1, 2, 10, "UNAVAILABLE")
    for order in ([ccs, chademo], [chademo, ccs]):
        for batches in ([order], [[order[0]], [order[1]]]):
            await reset(conn)
            for batch in batches:
                await apply_events(conn, batch)
            row = await port(conn)
            assert (row["status"], row["last_updated"], row["status_family"]) == ("OCCUPIED", at(10), "2.x")
            assert row["error_code"] is None
            assert await conn.fetch("SELECT connector_id, status FROM evse_connector ORDER BY 1") == [
                (1, "OCCUPIED"), (2, "UNAVAILABLE")]


@pytest.mark.parametrize(("statuses", "expected"), [
    (("OCCUPIED", "RESERVED"), "OCCUPIED"),
    (("RESERVED", "AVAILABLE"), "RESERVED"),
    (("AVAILABLE", "FAULTED"), "AVAILABLE"),
    (("FAULTED", "UNAVAILABLE"), "FAULTED"),
    (("UNAVAILABLE", "UNAVAILABLE"), "UNAVAILABLE"),
])
async def test_the_port_precedence(conn, statuses, expected):
    """OCCUPIED > RESERVED > AVAILABLE > FAULTED > UNAVAILABLE: the port can serve a driver if any connector can."""
    await apply_events(conn, [status_2x("CP-1", 1, n, 10 + n, s) for n, s in enumerate(statuses, 1)])
    row = await port(conn)
    assert (row["status"], row["last_updated"]) == (expected, at(12))


async def test_a_late_connector_status_changes_the_port_without_moving_its_time(conn):
    """The port's last_updated is its newest connector's; an older status of the other connector, arriving
    late, still changes which status the port shows."""
    await apply_events(conn, [status_2x("CP-1", 1, 1, 20, "UNAVAILABLE"), status_2x("CP-1", 1, 2, 5, "FAULTED")])
    assert (await port(conn))["status"] == "FAULTED"
    await apply_events(conn, [status_2x("CP-1", 1, 2, 15, "OCCUPIED")])
    row = await port(conn)
    assert (row["status"], row["last_updated"]) == ("OCCUPIED", at(20))


async def test_connectors_of_different_evses_do_not_collapse(conn):
    """Two EVSEs each with a connector 1 are two ports (the mistake of keying by connectorId alone)."""
    await apply_events(conn, [status_2x("CP-1", 1, 1, 10, "OCCUPIED"), status_2x("CP-1", 2, 1, 10, "FAULTED")])
    ports = await conn.fetch("SELECT connector_id, status FROM connector ORDER BY 1")
    assert ports == [(1, "OCCUPIED"), (2, "FAULTED")]


async def test_a_port_in_both_families_shows_the_family_of_its_newest_status(conn):
    """A charger upgraded in place from 1.6 to 2.0.1: the newest status event decides the family; the other
    family's state is kept in its own columns, and a late status of either family does not flip it back."""
    old_16 = status("CP-1", 1, 10, "FAULTED", "GROUND_FAILURE")
    new_2x = status_2x("CP-1", 1, 1, 20, "AVAILABLE")
    late_16 = status("CP-1", 1, 15, "CHARGING")
    for order in itertools.permutations([old_16, new_2x, late_16]):
        await reset(conn)
        for event in order:
            await apply_events(conn, [event])
        row = await port(conn)
        assert (row["status"], row["error_code"], row["last_updated"], row["status_family"]) == (
            "AVAILABLE", None, at(20), "2.x")
        assert (row["ocpp16_status"], row["ocpp16_effective_at"]) == ("CHARGING", at(15))
        assert await fetch_state(conn) == expected_state([old_16, new_2x, late_16])
    await apply_events(conn, [status("CP-1", 1, 25, "PREPARING")])  # downgraded again
    row = await port(conn)
    assert (row["status"], row["status_family"], row["last_updated"]) == ("PREPARING", "1.6", at(25))


async def test_the_1_6_fault_details_are_kept_with_their_status(conn):
    """info, vendorId and vendorErrorCode come from the winning 1.6 StatusNotification, and go with it."""
    faulted = replace(status("CP-1", 1, 10, "FAULTED", "OTHER_ERROR"), error_info="RCD tripped",
                      vendor_id="com.alfen", vendor_error_code="E-4017")
    await apply_events(conn, [faulted])
    row = await port(conn)
    assert (row["error_code"], row["error_info"], row["vendor_id"], row["vendor_error_code"]) == (
        "OTHER_ERROR", "RCD tripped", "com.alfen", "E-4017")
    await apply_events(conn, [status("CP-1", 1, 11, "AVAILABLE")])
    row = await port(conn)
    assert (row["status"], row["error_code"], row["error_info"], row["vendor_error_code"]) == (
        "AVAILABLE", None, None, None)


async def test_notify_event_updates_connectors_and_the_charge_point(conn):
    """A NotifyEvent's AvailabilityState items write exactly what the equivalent StatusNotifications would."""
    base = status_2x("CP-1", 0, 1, 30, "AVAILABLE")
    items = (replace(base, connector_id=1, evse_connector_id=1, status="OCCUPIED", effective_at=at(28)),
             replace(base, connector_id=1, evse_connector_id=2, status="UNAVAILABLE", effective_at=at(28)),
             replace(base, connector_id=0, evse_connector_id=None, status="AVAILABLE", effective_at=at(29)))
    # generatedAt 29: no later than its items, so that the same statuses alone give the same last_updated.
    notify = NotifyEvent(**(common("CP-1", 29, event_id=base.event_id, received=30) | {"ocpp_version": "2.1"}),
                         statuses=items, ignored_items=2)
    await apply_events(conn, [notify])
    notified = await fetch_state(conn)
    assert (await port(conn))["status"] == "OCCUPIED"
    assert notified[0]["CP-1"]["status"] == "AVAILABLE" and notified[0]["CP-1"]["last_updated"] == at(29)
    await reset(conn)
    await apply_events(conn, list(items))
    assert await fetch_state(conn) == notified == expected_state([notify])


async def test_the_boot_details_win_with_their_boot(conn):
    """ocpp_version, serial, reason, ICCID and IMSI come from the winning BootNotification: a newer boot without
    them clears them, an older one changes nothing."""
    detailed = replace(boot("CP-1", 10), ocpp_version="2.1", hardware_serial="T-1", boot_reason="POWER_UP",
                       iccid="8931", imsi="2040")
    await apply_events(conn, [detailed, boot("CP-1", 5, model="Old")])
    cp = await conn.fetchrow("SELECT * FROM charge_point")
    assert (cp["ocpp_version"], cp["hardware_serial"], cp["boot_reason"], cp["iccid"], cp["imsi"]) == (
        "2.1", "T-1", "POWER_UP", "8931", "2040")
    await apply_events(conn, [boot("CP-1", 20)])
    cp = await conn.fetchrow("SELECT * FROM charge_point")
    assert (cp["ocpp_version"], cp["hardware_serial"], cp["boot_reason"], cp["iccid"]) == ("1.6", None, None, None)


async def test_boots_differing_only_in_a_detail_give_one_winner_in_any_order(conn):
    """The details are part of the boot's content digest: two boots with one event id, time and receipt that
    differ only in their serial number end the same whichever is written first."""
    shared = uuid.uuid4()
    a = replace(boot("CP-1", 5, event_id=shared), hardware_serial="A")
    b = replace(boot("CP-1", 5, event_id=shared), hardware_serial="B")
    results = []
    for order in ([a, b], [b, a]):
        await reset(conn)
        for event in order:
            await apply_events(conn, [event])
        results.append(await fetch_state(conn))
    assert results[0] == results[1] == expected_state([a, b])


async def test_an_untracked_action_creates_its_charge_point(conn):
    """A charger that only sends MeterValues still gets its charge_point row, last_updated its receipt time;
    it never moves last_updated back, and writes no connector."""
    meter = Ignored("CP-M", "1.6", "MeterValues", uuid.uuid4(), at(40))
    await apply_events(conn, [meter, Ignored("CP-M", "1.6", "Authorize", uuid.uuid4(), at(30))])
    cp = await conn.fetchrow("SELECT * FROM charge_point WHERE serial_number = 'CP-M'")
    assert cp["last_updated"] == at(40) and cp["model"] is None and cp["status"] is None
    assert await conn.fetchval("SELECT count(*) FROM connector") == 0
    await apply_events(conn, [status("CP-M", 1, 50, "CHARGING")])
    assert await conn.fetchval("SELECT last_updated FROM charge_point WHERE serial_number = 'CP-M'") == at(50)


async def test_the_roaming_view(conn):
    """port_roaming_status maps every status to its OCPI 2.2.1 EVSE status and the AFIR pair."""
    expected = {
        "AVAILABLE": ("AVAILABLE", True, False), "PREPARING": ("CHARGING", True, True),
        "CHARGING": ("CHARGING", True, True), "SUSPENDED_EV": ("CHARGING", True, True),
        "SUSPENDED_EVSE": ("CHARGING", True, True), "FINISHING": ("CHARGING", True, True),
        "RESERVED": ("RESERVED", True, False), "UNAVAILABLE": ("INOPERATIVE", False, False),
        "FAULTED": ("OUTOFORDER", False, False),
    }
    events = [status("CP-16", n, 10, value) for n, value in enumerate(expected, 1)]
    events.append(status_2x("CP-2X", 1, 1, 10, "OCCUPIED"))
    await apply_events(conn, events)
    await conn.execute("INSERT INTO connector (id, charge_point_id, connector_id, status, last_updated, "
                       "status_received_at, status_event_id, status_digest) SELECT gen_random_uuid(), 'CP-16', 99, "
                       "'SOMETHING_NEW', now(), now(), gen_random_uuid(), gen_random_uuid()")
    rows = {(r["charge_point_id"], r["connector_id"]): (r["ocpi_status"], r["afir_operational"], r["afir_in_use"])
            for r in await conn.fetch("SELECT * FROM port_roaming_status")}
    assert rows == {("CP-16", n): v for n, v in enumerate(expected.values(), 1)} | {
        ("CP-2X", 1): ("CHARGING", True, True), ("CP-16", 99): ("UNKNOWN", False, False)}


async def test_writers_of_one_charge_point_take_turns(database_url):
    """Two transactions writing connectors of one EVSE: the second waits for the first (on the charge point's
    row) and derives the port from both connectors, so no write is lost to an out-of-date read."""
    await migrate(database_url)
    a, b = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        await apply_events(a, [status_2x("CP-1", 1, 2, 1, "UNAVAILABLE")])
        plugged, blocked = status_2x("CP-1", 1, 1, 10, "OCCUPIED"), status_2x("CP-1", 1, 2, 11, "UNAVAILABLE")
        transaction = a.transaction()
        await transaction.start()
        await write_batch(a, coalesce([plugged]))
        second = asyncio.create_task(apply_events(b, [blocked]))
        await asyncio.sleep(0.5)
        assert not second.done()  # waiting for the first writer's charge point row
        await transaction.commit()
        await asyncio.wait_for(second, 10)
        row = await port(a)
        assert (row["status"], row["last_updated"]) == ("OCCUPIED", at(11))
    finally:
        await a.close()
        await b.close()


async def test_a_replayed_port_writes_no_tuple(conn):
    """Replaying 2.x statuses and NotifyEvents rewrites neither the connectors nor the derived port."""
    events = [status_2x("CP-1", 1, 1, 10, "OCCUPIED"), status_2x("CP-1", 1, 2, 12, "UNAVAILABLE"),
              status("CP-1", 1, 5, "AVAILABLE")]
    await apply_events(conn, events)
    before = await conn.fetch("SELECT xmin::text, ctid::text FROM connector UNION ALL "
                              "SELECT xmin::text, ctid::text FROM evse_connector")
    for event in events:
        await apply_events(conn, [event])
    await apply_events(conn, events)
    after = await conn.fetch("SELECT xmin::text, ctid::text FROM connector UNION ALL "
                             "SELECT xmin::text, ctid::text FROM evse_connector")
    assert after == before


async def test_boot_of_every_family_is_written_with_its_version(conn):
    """charge_point.ocpp_version is the winning boot's version (the internal event carries it)."""
    boot_21 = BootNotification(**(common("CP-1", 5) | {"ocpp_version": "2.1"}), vendor="ABB", model="Terra",
                               firmware_version=None, boot_reason="WATCHDOG")
    await apply_events(conn, [boot_21])
    assert await conn.fetchval("SELECT ocpp_version FROM charge_point") == "2.1"
