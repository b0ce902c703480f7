"""OCPP 2.0.1 request payloads of the actions this service tracks, as strict as the official schemas.

Mirrors ocpp/v201/schemas/{BootNotification,StatusNotification,Heartbeat,NotifyEvent}Request.json field by field,
including `customData` wherever 2.0.1 allows it (an object with a required vendorId and any other properties); the
only additions are the project-wide rules in schemas/types.py, and (in the JSON Schema only, the decoder enforces
it in consumer/actions/notify_event.py) that a NotifyEvent availability reports one of the five connector statuses.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.types import PAYLOAD_CONFIG, Rfc3339String, ocpp_id, ocpp_integer, ocpp_string

ConnectorStatus = Literal["Available", "Occupied", "Reserved", "Unavailable", "Faulted"]
BootReason = Literal[
    "ApplicationReset", "FirmwareUpdate", "LocalReset", "PowerUp", "RemoteReset", "ScheduledReset", "Triggered",
    "Unknown", "Watchdog",
]
EventTrigger = Literal["Alerting", "Delta", "Periodic"]
EventNotification = Literal["HardWiredNotification", "HardWiredMonitor", "PreconfiguredMonitor", "CustomMonitor"]


class CustomData(BaseModel):
    """OCPP 2.0.1 CustomDataType: vendor extensions, open to any further properties."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    vendorId: ocpp_string(255, "Vendor whose extension this is.")


_CUSTOM = "Vendor extension data (OCPP 2.0.1 CustomDataType); accepted, not used."


class Modem(BaseModel):
    """OCPP 2.0.1 ModemType."""

    model_config = PAYLOAD_CONFIG

    customData: CustomData = Field(None, description=_CUSTOM)
    iccid: ocpp_string(20, "ICCID of the modem's SIM card; becomes charge_point.iccid.") = None
    imsi: ocpp_string(20, "IMSI of the modem's SIM card; becomes charge_point.imsi.") = None


class ChargingStation(BaseModel):
    """OCPP 2.0.1 ChargingStationType."""

    model_config = PAYLOAD_CONFIG

    customData: CustomData = Field(None, description=_CUSTOM)
    serialNumber: ocpp_string(25, "Vendor's serial number; becomes charge_point.hardware_serial.") = None
    model: ocpp_string(20, "Model of the charging station; becomes charge_point.model.")
    modem: Modem = Field(None, description="Wireless modem: its SIM's ICCID and IMSI are kept.")
    vendorName: ocpp_string(50, "Vendor of the charging station; becomes charge_point.vendor.")
    firmwareVersion: ocpp_string(50, "Firmware version; becomes charge_point.firmware_version.") = None


class BootNotification201(BaseModel):
    """OCPP 2.0.1 BootNotificationRequest."""

    model_config = PAYLOAD_CONFIG

    customData: CustomData = Field(None, description=_CUSTOM)
    chargingStation: ChargingStation = Field(description="The charging station that booted.")
    reason: BootReason = Field(description="Why it booted; becomes charge_point.boot_reason, UPPER_SNAKE_CASE.")


class StatusNotification201(BaseModel):
    """OCPP 2.0.1 StatusNotificationRequest."""

    model_config = PAYLOAD_CONFIG

    customData: CustomData = Field(None, description=_CUSTOM)
    timestamp: Rfc3339String = Field(description="When the status was reported; without an offset it is UTC.")
    connectorStatus: ConnectorStatus = Field(description="Connector status, normalized to UPPER_SNAKE_CASE.")
    evseId: ocpp_id("EVSE id, the port; 0 means the charging station itself. Becomes the event's connector_id.")
    connectorId: ocpp_id("Physical connector within the EVSE; its state is kept in evse_connector.")


class Heartbeat201(BaseModel):
    """OCPP 2.0.1 HeartbeatRequest."""

    model_config = PAYLOAD_CONFIG

    customData: CustomData = Field(None, description=_CUSTOM)


class Evse(BaseModel):
    """OCPP 2.0.1 EVSEType: an EVSE, and optionally one connector of it."""

    model_config = PAYLOAD_CONFIG

    customData: CustomData = Field(None, description=_CUSTOM)
    id: ocpp_id("EVSE id; 0 means the charging station itself.")
    connectorId: ocpp_id("Connector within the EVSE.") = None


class Component(BaseModel):
    """OCPP 2.0.1 ComponentType: a part of the device model, such as a Connector or the ChargingStation."""

    model_config = PAYLOAD_CONFIG

    customData: CustomData = Field(None, description=_CUSTOM)
    evse: Evse = Field(None, description="The EVSE (and connector) the component belongs to.")
    name: ocpp_string(50, "Component name; compared case-insensitively (Connector, ChargingStation).")
    instance: ocpp_string(50, "Component instance; not used.") = None


class Variable(BaseModel):
    """OCPP 2.0.1 VariableType."""

    model_config = PAYLOAD_CONFIG

    customData: CustomData = Field(None, description=_CUSTOM)
    name: ocpp_string(50, "Variable name; compared case-insensitively. AvailabilityState is tracked.")
    instance: ocpp_string(50, "Variable instance; not used.") = None


CONNECTOR_STATUSES = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")


def _any_case(word: str) -> str:
    """A JSON Schema pattern for `word` in any case (ECMA-262 patterns have no case-insensitive flag)."""
    return "^" + "".join(f"[{c.upper()}{c.lower()}]" for c in word) + "$"


def availability_rule(schema: dict) -> None:
    """In the JSON Schema: an AvailabilityState of a Connector (EVSE ≥ 1, with its connectorId) or of the
    ChargingStation must report one of the five connector statuses, as the decoder requires (names in any case)."""
    schema["if"] = {
        "required": ["variable", "component"],
        "properties": {
            "variable": {"properties": {"name": {"pattern": _any_case("AvailabilityState")}}},
            "component": {"anyOf": [
                {"properties": {"name": {"pattern": _any_case("ChargingStation")}}},
                {"required": ["evse"], "properties": {
                    "name": {"pattern": _any_case("Connector")},
                    "evse": {"required": ["id", "connectorId"], "properties": {"id": {"minimum": 1}}}}},
            ]},
        },
    }
    schema["then"] = {"properties": {"actualValue": {"enum": list(CONNECTOR_STATUSES)}}}


class EventData201(BaseModel):
    """OCPP 2.0.1 EventDataType: one reported event of a component's variable."""

    model_config = ConfigDict(**PAYLOAD_CONFIG, json_schema_extra=availability_rule)

    customData: CustomData = Field(None, description=_CUSTOM)
    eventId: ocpp_integer("Identifies the event on the charging station; not used.")
    timestamp: Rfc3339String = Field(description="When the event occurred; the effective time of its state.")
    trigger: EventTrigger = Field(description="Why the event was sent; not used.")
    cause: ocpp_integer("eventId of the event that caused this one; not used.") = None
    actualValue: ocpp_string(2500, "The variable's value; for AvailabilityState, the status.")
    techCode: ocpp_string(50, "Technical (vendor) error code; not used.") = None
    techInfo: ocpp_string(500, "Technical detail; not used.") = None
    cleared: bool = Field(None, description="Whether the event has returned to normal; not used.")
    transactionId: ocpp_string(36, "Transaction the event relates to; not used.") = None
    component: Component = Field(description="The component whose variable this is.")
    variableMonitoringId: ocpp_integer("Monitor that triggered the event; not used.") = None
    eventNotificationType: EventNotification = Field(description="How the event was monitored; not used.")
    variable: Variable = Field(description="The variable that changed.")


class NotifyEvent201(BaseModel):
    """OCPP 2.0.1 NotifyEventRequest."""

    model_config = PAYLOAD_CONFIG

    customData: CustomData = Field(None, description=_CUSTOM)
    generatedAt: Rfc3339String = Field(description="When the message was generated; without an offset it is UTC.")
    tbc: bool = Field(None, description="More parts of this report follow; not used (each part stands alone).")
    seqNo: ocpp_integer("Sequence number of this part of the report; not used.")
    eventData: list[EventData201] = Field(min_length=1, description="The events; AvailabilityState ones are kept.")
