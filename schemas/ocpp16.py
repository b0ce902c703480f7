"""OCPP 1.6 (JSON) request payloads of the actions this service tracks, as strict as the official schemas.

Mirrors ocpp/v16/schemas/{BootNotification,StatusNotification,Heartbeat}.json field by field; the only
additions are the project-wide rules in schemas/types.py (ids within 0…2^31-1, offset-less timestamps are UTC).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from schemas.types import PAYLOAD_CONFIG, Rfc3339String, ocpp_id, ocpp_string

ChargePointStatus = Literal[
    "Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV", "Finishing", "Reserved",
    "Unavailable", "Faulted",
]
ChargePointErrorCode = Literal[
    "ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature", "InternalError",
    "LocalListConflict", "NoError", "OtherError", "OverCurrentFailure", "PowerMeterFailure", "PowerSwitchFailure",
    "ReaderFailure", "ResetFailure", "UnderVoltage", "OverVoltage", "WeakSignal",
]


class BootNotification16(BaseModel):
    """OCPP 1.6 BootNotification.req."""

    model_config = PAYLOAD_CONFIG

    chargePointVendor: ocpp_string(20, "Vendor of the charge point; becomes charge_point.vendor.")
    chargePointModel: ocpp_string(20, "Model of the charge point; becomes charge_point.model.")
    chargePointSerialNumber: ocpp_string(25, "Serial number; becomes charge_point.hardware_serial.") = None
    chargeBoxSerialNumber: ocpp_string(25, "Not used (deprecated in OCPP 1.6).") = None
    firmwareVersion: ocpp_string(50, "Firmware version; becomes charge_point.firmware_version.") = None
    iccid: ocpp_string(20, "ICCID of the modem's SIM card; becomes charge_point.iccid.") = None
    imsi: ocpp_string(20, "IMSI of the modem's SIM card; becomes charge_point.imsi.") = None
    meterType: ocpp_string(25, "Type of the main electrical meter; not used.") = None
    meterSerialNumber: ocpp_string(25, "Serial number of the main electrical meter; not used.") = None


class StatusNotification16(BaseModel):
    """OCPP 1.6 StatusNotification.req."""

    model_config = PAYLOAD_CONFIG

    connectorId: ocpp_id("Connector id; 0 means the charge point itself. Becomes the event's connector_id.")
    errorCode: ChargePointErrorCode = Field(description="Error code; NoError becomes no error (null).")
    status: ChargePointStatus = Field(description="Connector status, normalized to UPPER_SNAKE_CASE.")
    info: ocpp_string(50, "Free-form additional information; becomes connector.error_info.") = None
    timestamp: Rfc3339String = Field(
        None, description="When the status was reported; without an offset it is UTC. Absent: received_at."
    )
    vendorId: ocpp_string(255, "Vendor-specific error code namespace; becomes connector.vendor_id.") = None
    vendorErrorCode: ocpp_string(50, "Vendor-specific error code; becomes connector.vendor_error_code.") = None


class Heartbeat16(BaseModel):
    """OCPP 1.6 Heartbeat.req: an empty object."""

    model_config = PAYLOAD_CONFIG
