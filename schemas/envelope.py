"""The Kafka record value: the envelope a gateway wraps around one OCPP request, as one pydantic union.

The union is discriminated on ocpp_version, then on action, so that pydantic-core validates exactly one variant
per record and reports that variant's errors only. An action this service does not track is an
`OtherActionEnvelope`, whose payload need only be a JSON object: such records are ignored, not dead-lettered,
because gateways may share a topic with other consumers.

Unknown top-level fields are ignored (extra="ignore"): a gateway upgrade that adds one must not dead-letter the
whole stream. Inside payloads, unknown fields are refused wherever the official OCPP schema refuses them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schemas import ocpp16, ocpp21, ocpp201
from schemas.types import CheckedString, Rfc3339String, UuidString


# No control characters (C0, DEL, C1): the id becomes a database key, a log field and a Kafka key.
_NO_CONTROLS = r"^[^\x00-\x1f\x7f-\x9f]*$"
ChargePointId = Annotated[
    str,
    CheckedString(_NO_CONTROLS, "Input should be 1 to 255 characters without control characters", 1, 255),
    Field(description="The charge point's id (OCPP identity); the record key must equal it when present. "
                      "Becomes charge_point.serial_number."),
]
ActionName = Annotated[
    str,
    CheckedString(_NO_CONTROLS, "Input should be 1 to 255 characters without control characters", 1, 255),
]

_VERSION = "OCPP version the charge point speaks."
_ACTION = "OCPP action of the request."
_ENVELOPE_CONFIG = ConfigDict(strict=True, extra="ignore", frozen=True)


class _Envelope(BaseModel):
    model_config = _ENVELOPE_CONFIG

    event_id: UuidString = Field(description="Unique id of this event (UUID, 8-4-4-4-12 hexadecimal form).")
    charge_point_id: ChargePointId
    ocpp_version: Literal["1.6", "2.0.1", "2.1"] = Field(description=_VERSION)
    action: ActionName = Field(description=_ACTION)
    received_at: Rfc3339String = Field(
        description="When the gateway received the frame (RFC 3339; send an offset: without one it is read as UTC)."
    )


class BootNotification16Envelope(_Envelope):
    ocpp_version: Literal["1.6"] = Field(description=_VERSION)
    action: Literal["BootNotification"] = Field(description=_ACTION)
    payload: ocpp16.BootNotification16 = Field(description="OCPP 1.6 BootNotification.req payload.")


class StatusNotification16Envelope(_Envelope):
    ocpp_version: Literal["1.6"] = Field(description=_VERSION)
    action: Literal["StatusNotification"] = Field(description=_ACTION)
    payload: ocpp16.StatusNotification16 = Field(description="OCPP 1.6 StatusNotification.req payload.")


class Heartbeat16Envelope(_Envelope):
    ocpp_version: Literal["1.6"] = Field(description=_VERSION)
    action: Literal["Heartbeat"] = Field(description=_ACTION)
    payload: ocpp16.Heartbeat16 = Field(description="OCPP 1.6 Heartbeat.req payload: {}.")


class BootNotification201Envelope(_Envelope):
    ocpp_version: Literal["2.0.1"] = Field(description=_VERSION)
    action: Literal["BootNotification"] = Field(description=_ACTION)
    payload: ocpp201.BootNotification201 = Field(description="OCPP 2.0.1 BootNotificationRequest payload.")


class StatusNotification201Envelope(_Envelope):
    ocpp_version: Literal["2.0.1"] = Field(description=_VERSION)
    action: Literal["StatusNotification"] = Field(description=_ACTION)
    payload: ocpp201.StatusNotification201 = Field(description="OCPP 2.0.1 StatusNotificationRequest payload.")


class Heartbeat201Envelope(_Envelope):
    ocpp_version: Literal["2.0.1"] = Field(description=_VERSION)
    action: Literal["Heartbeat"] = Field(description=_ACTION)
    payload: ocpp201.Heartbeat201 = Field(description="OCPP 2.0.1 HeartbeatRequest payload.")


class NotifyEvent201Envelope(_Envelope):
    ocpp_version: Literal["2.0.1"] = Field(description=_VERSION)
    action: Literal["NotifyEvent"] = Field(description=_ACTION)
    payload: ocpp201.NotifyEvent201 = Field(description="OCPP 2.0.1 NotifyEventRequest payload.")


class BootNotification21Envelope(_Envelope):
    ocpp_version: Literal["2.1"] = Field(description=_VERSION)
    action: Literal["BootNotification"] = Field(description=_ACTION)
    payload: ocpp21.BootNotification21 = Field(description="OCPP 2.1 BootNotificationRequest payload.")


class StatusNotification21Envelope(_Envelope):
    ocpp_version: Literal["2.1"] = Field(description=_VERSION)
    action: Literal["StatusNotification"] = Field(description=_ACTION)
    payload: ocpp21.StatusNotification21 = Field(description="OCPP 2.1 StatusNotificationRequest payload.")


class Heartbeat21Envelope(_Envelope):
    ocpp_version: Literal["2.1"] = Field(description=_VERSION)
    action: Literal["Heartbeat"] = Field(description=_ACTION)
    payload: ocpp21.Heartbeat21 = Field(description="OCPP 2.1 HeartbeatRequest payload.")


class NotifyEvent21Envelope(_Envelope):
    ocpp_version: Literal["2.1"] = Field(description=_VERSION)
    action: Literal["NotifyEvent"] = Field(description=_ACTION)
    payload: ocpp21.NotifyEvent21 = Field(description="OCPP 2.1 NotifyEventRequest payload.")


def _untracked_per_version(schema: dict) -> None:
    """In the JSON Schema: the action is not one this service tracks *in the envelope's version* (a 1.6
    NotifyEvent, which 1.6 does not have, is ignored like any other untracked action)."""
    tracked: dict[str, set[str]] = {}
    for envelope in TRACKED_ENVELOPES:
        version, action = version_and_action(envelope)
        tracked.setdefault(version, set()).add(action)
    schema["allOf"] = [
        {"if": {"properties": {"ocpp_version": {"const": version}}},
         "then": {"properties": {"action": {"not": {"enum": sorted(actions)}}}}}
        for version, actions in tracked.items()
    ]


class OtherActionEnvelope(_Envelope):
    """Any action this service does not track in the envelope's version: valid, counted, ignored."""

    model_config = ConfigDict(**_ENVELOPE_CONFIG, json_schema_extra=_untracked_per_version)

    action: ActionName = Field(description="Any other OCPP action; the record is ignored.")
    payload: dict[str, Any] = Field(description="Any JSON object (not validated further, except: no NUL).")


# Every tracked (version, action), declared once: the decoder's union, the JSON Schema, the decoder's converters
# (consumer/actions/) and the tests all read this tuple. Adding a version or an action starts here.
TRACKED_ENVELOPES: tuple[type[_Envelope], ...] = (
    BootNotification16Envelope, StatusNotification16Envelope, Heartbeat16Envelope,
    BootNotification201Envelope, StatusNotification201Envelope, Heartbeat201Envelope, NotifyEvent201Envelope,
    BootNotification21Envelope, StatusNotification21Envelope, Heartbeat21Envelope, NotifyEvent21Envelope,
)


def version_and_action(envelope: type[_Envelope]) -> tuple[str, str]:
    """The (ocpp_version, action) an envelope class is the variant for, read from its Literal fields."""
    (version,) = envelope.model_fields["ocpp_version"].annotation.__args__
    (action,) = envelope.model_fields["action"].annotation.__args__
    return version, action


def _tracked_union() -> Any:
    """Nested unions discriminated by plain field names: by ocpp_version, then by action.

    pydantic-core reads plain discriminators straight from the parsed JSON (a discriminator function would first
    turn the whole record into Python objects: +30 % per record).
    """
    by_version: dict[str, list[type[_Envelope]]] = {}
    for envelope in TRACKED_ENVELOPES:
        by_version.setdefault(version_and_action(envelope)[0], []).append(envelope)
    per_version = [
        Annotated[Union[tuple(envelopes)], Field(discriminator="action")] for envelopes in by_version.values()
    ]
    return Annotated[Union[tuple(per_version)], Field(discriminator="ocpp_version")]


TrackedEnvelope = _tracked_union()

# A record the tracked union refuses for its version or action (error type union_tag_*) is validated again as
# OtherActionEnvelope: that gives an Ignored for an untracked action, and a message that names the field for
# a missing or unknown version. Errors of the tracked union have the two tags first in their location.
tracked_adapter: TypeAdapter[Any] = TypeAdapter(TrackedEnvelope)
TRACKED_LOC_PREFIX = 2
other_adapter: TypeAdapter[OtherActionEnvelope] = TypeAdapter(OtherActionEnvelope)

# The contract as one type, for the JSON Schema: a tracked action's envelope, or any other action's.
Envelope = Union[TrackedEnvelope, OtherActionEnvelope]


def envelope_json_schema() -> dict:
    """The JSON Schema (2020-12) of the envelope, generated from the models that decoding uses."""
    schema = TypeAdapter(Envelope).json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "OCPP gateway event envelope",
        "description": (
            "Value of one Kafka record (UTF-8 JSON); the key is the charge point id. Unknown top-level fields "
            "are ignored. Besides this schema, three rules that JSON Schema cannot state: no string anywhere may "
            "contain NUL (\\u0000); date-times must be real calendar times; and an integer must be written as "
            "one, without a fraction or an exponent (1, not 1.0 or 1e0: JSON Schema's integer type admits 1.0, "
            "the service refuses it). The service also accepts a date-time without an offset (read as UTC), "
            "which format date-time does not. See docs/contract.md."
        ),
        **schema,
    }
