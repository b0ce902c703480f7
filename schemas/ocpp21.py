"""OCPP 2.1 request payloads of the actions this service tracks, as strict as the official schemas.

Mirrors ocpp/v21/schemas/{BootNotification,StatusNotification,Heartbeat,NotifyEvent}Request.json. OCPP 2.1 kept
the first three field for field as 2.0.1 had them (it added `minimum: 0` to StatusNotification's ids, which ours
already had), so those are the 2.0.1 models under their 2.1 names. NotifyEvent's integers gained `minimum: 0`
and its events a `severity`. tests/test_contract_conformance.py checks all of them against the official schemas.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.ocpp201 import (
    BootNotification201, Component, CustomData, EventNotification, EventTrigger, Heartbeat201,
    StatusNotification201, Variable, availability_rule,
)
from schemas.types import PAYLOAD_CONFIG, Rfc3339String, ocpp_integer, ocpp_string

_CUSTOM = "Vendor extension data (OCPP 2.1 CustomDataType, as in 2.0.1); accepted, not used."


class BootNotification21(BootNotification201):
    """OCPP 2.1 BootNotificationRequest (the same fields as 2.0.1)."""


class StatusNotification21(StatusNotification201):
    """OCPP 2.1 StatusNotificationRequest (the same fields as 2.0.1; 2.1 deprecates it for NotifyEvent)."""


class Heartbeat21(Heartbeat201):
    """OCPP 2.1 HeartbeatRequest (the same fields as 2.0.1)."""


class EventData21(BaseModel):
    """OCPP 2.1 EventDataType: 2.0.1's, with non-negative integers and a severity."""

    model_config = ConfigDict(**PAYLOAD_CONFIG, json_schema_extra=availability_rule)

    customData: CustomData = Field(None, description=_CUSTOM)
    eventId: ocpp_integer("Identifies the event on the charging station; not used.", minimum=0)
    timestamp: Rfc3339String = Field(description="When the event occurred; the effective time of its state.")
    trigger: EventTrigger = Field(description="Why the event was sent; not used.")
    cause: ocpp_integer("eventId of the event that caused this one; not used.", minimum=0) = None
    actualValue: ocpp_string(2500, "The variable's value; for AvailabilityState, the status.")
    techCode: ocpp_string(50, "Technical (vendor) error code; not used.") = None
    techInfo: ocpp_string(500, "Technical detail; not used.") = None
    cleared: bool = Field(None, description="Whether the event has returned to normal; not used.")
    transactionId: ocpp_string(36, "Transaction the event relates to; not used.") = None
    component: Component = Field(description="The component whose variable this is.")
    variableMonitoringId: ocpp_integer("Monitor that triggered the event; not used.", minimum=0) = None
    eventNotificationType: EventNotification = Field(description="How the event was monitored; not used.")
    variable: Variable = Field(description="The variable that changed.")
    severity: ocpp_integer("Severity of the event (0 is the most severe); not used.", minimum=0) = None


class NotifyEvent21(BaseModel):
    """OCPP 2.1 NotifyEventRequest."""

    model_config = PAYLOAD_CONFIG

    customData: CustomData = Field(None, description=_CUSTOM)
    generatedAt: Rfc3339String = Field(description="When the message was generated; without an offset it is UTC.")
    tbc: bool = Field(None, description="More parts of this report follow; not used (each part stands alone).")
    seqNo: ocpp_integer("Sequence number of this part of the report; not used.", minimum=0)
    eventData: list[EventData21] = Field(min_length=1, description="The events; AvailabilityState ones are kept.")
