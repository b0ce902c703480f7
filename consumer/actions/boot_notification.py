"""BootNotification: who the charge point is (vendor, model, firmware); sets `charge_point`'s boot columns."""

from __future__ import annotations

from datetime import datetime

from consumer.clock import TimeRules
from schemas import envelope as env
from schemas.events import BootNotification


def from_16(record: env.BootNotification16Envelope, received_at: datetime, rules: TimeRules) -> BootNotification:
    """OCPP 1.6 BootNotification.req has no timestamp: the boot holds from its receipt."""
    payload = record.payload
    return BootNotification(
        record.event_id, record.charge_point_id, record.ocpp_version, received_at, received_at, False,
        vendor=payload.chargePointVendor, model=payload.chargePointModel, firmware_version=payload.firmwareVersion,
    )


def from_201(record: env.BootNotification201Envelope, received_at: datetime, rules: TimeRules) -> BootNotification:
    """OCPP 2.0.1 names the same facts under `chargingStation`."""
    station = record.payload.chargingStation
    return BootNotification(
        record.event_id, record.charge_point_id, record.ocpp_version, received_at, received_at, False,
        vendor=station.vendorName, model=station.model, firmware_version=station.firmwareVersion,
    )


def fold(rows, event: BootNotification) -> None:
    rows.offer_boot(event)


CONVERTERS = {env.BootNotification16Envelope: from_16, env.BootNotification201Envelope: from_201}
FOLDS = {BootNotification: fold}
