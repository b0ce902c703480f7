"""OCPP 2.0.1 request payloads of the actions this service tracks, as strict as the official schemas.

Mirrors ocpp/v201/schemas/{BootNotification,StatusNotification,Heartbeat}Request.json field by field, including
`customData` wherever 2.0.1 allows it (an object with a required vendorId and any other properties); the only
additions are the project-wide rules in schemas/types.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.types import PAYLOAD_CONFIG, Rfc3339String, ocpp_id, ocpp_string

ConnectorStatus = Literal["Available", "Occupied", "Reserved", "Unavailable", "Faulted"]
BootReason = Literal[
    "ApplicationReset", "FirmwareUpdate", "LocalReset", "PowerUp", "RemoteReset", "ScheduledReset", "Triggered",
    "Unknown", "Watchdog",
]


class CustomData(BaseModel):
    """OCPP 2.0.1 CustomDataType: vendor extensions, open to any further properties."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    vendorId: ocpp_string(255, "Vendor whose extension this is.")


_CUSTOM = "Vendor extension data (OCPP 2.0.1 CustomDataType); accepted, not used."


class Modem(BaseModel):
    """OCPP 2.0.1 ModemType."""

    model_config = PAYLOAD_CONFIG

    customData: CustomData = Field(None, description=_CUSTOM)
    iccid: ocpp_string(20, "ICCID of the modem's SIM card; not used.") = None
    imsi: ocpp_string(20, "IMSI of the modem's SIM card; not used.") = None


class ChargingStation(BaseModel):
    """OCPP 2.0.1 ChargingStationType."""

    model_config = PAYLOAD_CONFIG

    customData: CustomData = Field(None, description=_CUSTOM)
    serialNumber: ocpp_string(25, "Vendor's serial number; not used: the envelope's charge_point_id is.") = None
    model: ocpp_string(20, "Model of the charging station; becomes charge_point.model.")
    modem: Modem = Field(None, description="Wireless modem; not used.")
    vendorName: ocpp_string(50, "Vendor of the charging station; becomes charge_point.vendor.")
    firmwareVersion: ocpp_string(50, "Firmware version; becomes charge_point.firmware_version.") = None


class BootNotification201(BaseModel):
    """OCPP 2.0.1 BootNotificationRequest."""

    model_config = PAYLOAD_CONFIG

    customData: CustomData = Field(None, description=_CUSTOM)
    chargingStation: ChargingStation = Field(description="The charging station that booted.")
    reason: BootReason = Field(description="Why it booted; not used.")


class StatusNotification201(BaseModel):
    """OCPP 2.0.1 StatusNotificationRequest."""

    model_config = PAYLOAD_CONFIG

    customData: CustomData = Field(None, description=_CUSTOM)
    timestamp: Rfc3339String = Field(description="When the status was reported; without an offset it is UTC.")
    connectorStatus: ConnectorStatus = Field(description="Connector status, normalized to UPPER_SNAKE_CASE.")
    evseId: ocpp_id("EVSE id; 0 means the charging station itself. Becomes the event's connector_id.")
    connectorId: ocpp_id("Connector within the EVSE; not used (state is kept per EVSE).")


class Heartbeat201(BaseModel):
    """OCPP 2.0.1 HeartbeatRequest."""

    model_config = PAYLOAD_CONFIG

    customData: CustomData = Field(None, description=_CUSTOM)
