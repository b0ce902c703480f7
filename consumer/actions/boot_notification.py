"""BootNotification: who the charge point is (vendor, model, firmware, and the hardware details); sets
`charge_point`'s boot columns, all with one version."""

from __future__ import annotations

from datetime import datetime

from consumer.clock import TimeRules
from consumer.normalize import BOOT_REASON
from schemas import envelope as env
from schemas.events import BootNotification


def from_16(record: env.BootNotification16Envelope, received_at: datetime, rules: TimeRules) -> BootNotification:
    """OCPP 1.6 BootNotification.req has no timestamp: the boot holds from its receipt."""
    payload = record.payload
    return BootNotification(
        record.event_id, record.charge_point_id, record.ocpp_version, received_at, received_at, False,
        vendor=payload.chargePointVendor, model=payload.chargePointModel, firmware_version=payload.firmwareVersion,
        hardware_serial=payload.chargePointSerialNumber, iccid=payload.iccid, imsi=payload.imsi,
    )


def from_2x(record: env.BootNotification201Envelope | env.BootNotification21Envelope, received_at: datetime,
            rules: TimeRules) -> BootNotification:
    """OCPP 2.0.1 and 2.1 name the same facts under `chargingStation`, and say why the station booted."""
    station = record.payload.chargingStation
    modem = station.modem
    return BootNotification(
        record.event_id, record.charge_point_id, record.ocpp_version, received_at, received_at, False,
        vendor=station.vendorName, model=station.model, firmware_version=station.firmwareVersion,
        hardware_serial=station.serialNumber, boot_reason=BOOT_REASON[record.payload.reason],
        iccid=modem.iccid if modem is not None else None, imsi=modem.imsi if modem is not None else None,
    )


def fold(rows, event: BootNotification) -> None:
    rows.offer_boot(event)


CONVERTERS = {
    env.BootNotification16Envelope: from_16,
    env.BootNotification201Envelope: from_2x,
    env.BootNotification21Envelope: from_2x,
}
FOLDS = {BootNotification: fold}
