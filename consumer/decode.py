"""Kafka record (value, key) → one internal event, an `Ignored`, or a `Rejection`; never an exception.

A record that cannot be decoded must cost one dead letter, never the stream: so `decode` returns a Rejection
for every bad input, and a bug of ours becomes a Rejection of kind `internal` rather than a crashed consumer.

Speed matters (the consumer aims at 50k events/s on two cores): the bytes are parsed and validated once, in
pydantic-core, against a union that picks its variant from (ocpp_version, action). The checks pydantic cannot
make are done on the raw bytes first, cheaply, and only fall back to a slow exact check when they might fire:

* NUL: JSON must escape control characters, so a NUL in any string (key or value, however deep) appears in the
  bytes as the 6 characters `\\u0000`. Their absence proves there is none; their presence may be a false alarm
  (`"\\\\u0000"` is a backslash followed by "u0000"), so the slow path parses and looks.
* NaN/Infinity: pydantic's parser accepts these non-JSON literals; they cannot occur without those letters.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from consumer.normalize import ERROR_CODE, STATUS
from schemas import envelope as env
from schemas.events import BootNotification, Heartbeat, Ignored, Rejection, StateEvent, StatusNotification

__all__ = ["decode", "MAX_DETAIL"]

MAX_DETAIL = 1000  # the detail becomes a Kafka header and a log field
_UTC = timezone.utc
_fromisoformat = datetime.fromisoformat
_validate_tracked = env.tracked_adapter.validate_json
_validate_other = env.other_adapter.validate_json


def _suspect(value: bytes) -> bool:
    """Might the record hold a NUL or a NaN/Infinity (module doc)? Three substring scans: half a regex's cost."""
    return b"\\u0000" in value or b"NaN" in value or b"Infinity" in value




def decode(
    value: bytes | None,
    key: bytes | None,
    *,
    max_clock_skew_seconds: float = 300.0,
    max_record_bytes: int = 1_048_576,
) -> StateEvent | Ignored | Rejection:
    """Decode one record; see docs/contract.md for the contract and the rejection kinds."""
    try:
        return _decode(value, key, max_clock_skew_seconds, max_record_bytes)
    except Exception as exc:  # a bug must dead-letter one record, not stop the consumer
        return _reject("internal", f"decoder error: {type(exc).__name__}: {exc}")


def _decode(value: Any, key: Any, max_skew: float, max_bytes: int) -> StateEvent | Ignored | Rejection:
    if not value:
        return Rejection("empty", "record value is missing or empty")
    if len(value) > max_bytes:
        return Rejection("too_large", f"record value is {len(value)} bytes, more than the limit of {max_bytes}")
    try:
        record = _validate_tracked(value)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        if errors[0]["type"] == "json_invalid":
            return _syntax_rejection(value, errors[0]["msg"])
        if not _is_dispatch_error(errors[0]):
            return _rejection_from(errors, env.TRACKED_LOC_PREFIX)
        try:
            record = _validate_other(value)
        except ValidationError as exc:
            return _rejection_from(exc.errors(include_url=False, include_context=False), 0)
    if _suspect(value):
        rejection = _slow_checks(value)
        if rejection is not None:
            return rejection
    if key is not None and key != record.charge_point_id.encode():
        shown = bytes(key[:100]).decode("utf-8", "backslashreplace")
        return _reject("key_mismatch", f"record key {shown!r} differs from charge_point_id {record.charge_point_id!r}")
    return _to_event(record, max_skew)


def _is_dispatch_error(error: dict) -> bool:
    """Did the tracked union fail to pick a variant (unknown or missing version or action, not an object)?"""
    return error["type"].startswith("union_tag") or len(error["loc"]) < env.TRACKED_LOC_PREFIX


def _to_event(record: Any, max_skew: float) -> StateEvent | Ignored | Rejection:
    kind = type(record)
    if kind is env.OtherActionEnvelope:
        return Ignored(record.charge_point_id, record.ocpp_version, record.action)
    received_at = _utc(record.received_at)
    if type(received_at) is str:
        return _reject("envelope", f"received_at: {received_at} (got {record.received_at!r})")
    payload = record.payload
    common = (record.event_id, record.charge_point_id, record.ocpp_version, received_at)
    if kind is env.StatusNotification16Envelope or kind is env.StatusNotification201Envelope:
        effective_at, corrected = received_at, False
        if payload.timestamp is not None:
            timestamp = _utc(payload.timestamp)
            if type(timestamp) is str:
                return _reject("payload", f"payload.timestamp: {timestamp} (got {payload.timestamp!r})")
            if (timestamp - received_at).total_seconds() > max_skew:
                corrected = True
            else:
                effective_at = timestamp
        if kind is env.StatusNotification16Envelope:
            connector_id, status, error_code = payload.connectorId, payload.status, ERROR_CODE[payload.errorCode]
        else:
            connector_id, status, error_code = payload.evseId, payload.connectorStatus, None
        return StatusNotification(*common, effective_at, corrected, connector_id, STATUS[status], error_code)
    if kind is env.Heartbeat16Envelope or kind is env.Heartbeat201Envelope:
        return Heartbeat(*common, received_at, False)
    if kind is env.BootNotification16Envelope:
        return BootNotification(
            *common, received_at, False, payload.chargePointVendor, payload.chargePointModel, payload.firmwareVersion
        )
    station = payload.chargingStation
    return BootNotification(*common, received_at, False, station.vendorName, station.model, station.firmwareVersion)


def _utc(text: str) -> datetime | str:
    """The instant of an RFC 3339 string (its shape already checked) in UTC, or why there is none, as a message.

    Offset-less means UTC. A message, not an exception, because this runs for nearly every record.
    """
    try:
        moment = _fromisoformat(text)
    except ValueError:
        try:
            moment = _fromisoformat(text.upper())  # Python 3.11 refuses the lower-case "t" and "z" RFC 3339 allows
        except ValueError as exc:
            return f"Input should be a valid date-time, {exc}"
    zone = moment.tzinfo
    if zone is _UTC:
        return moment
    if zone is None:
        return moment.replace(tzinfo=_UTC)
    try:
        return moment.astimezone(_UTC)
    except OverflowError:
        return "date-time is out of range once converted to UTC"


def _syntax_rejection(value: bytes, message: str) -> Rejection:
    try:
        bytes(value).decode("utf-8")
    except UnicodeDecodeError as bad:
        return _reject("not_utf8", f"record value is not UTF-8: {bad.reason} at byte {bad.start}")
    return _reject("not_json", message)


def _rejection_from(errors: list, skip: int) -> Rejection:
    """A payload or envelope rejection naming the first fields at fault; `skip` drops union tags from locations."""
    first = errors[0]
    loc = first["loc"][skip:]
    # A missing payload is the envelope's fault; anything wrong in or with a present payload is the payload's.
    kind = "payload" if loc[:1] == ("payload",) and (len(loc) > 1 or first["type"] != "missing") else "envelope"
    parts = [_describe(error["loc"][skip:], error) for error in errors[:3]]
    if len(errors) > 3:
        parts.append(f"and {len(errors) - 3} more")
    return _reject(kind, "; ".join(parts))


def _describe(loc: tuple, error: dict) -> str:
    """'payload.connectorId: Input should be greater than or equal to 0 (got -1)'."""
    where = ".".join(str(part) for part in loc) if loc else "envelope"
    text = f"{where}: {error['msg']}"
    got = error.get("input")
    if error["type"] != "missing" and (got is None or isinstance(got, (str, int, float))):
        shown = repr(got)
        text += f" (got {shown if len(shown) <= 80 else shown[:77] + '...'})"
    return text


def _slow_checks(value: bytes) -> Rejection | None:
    """Exact NUL and NaN/Infinity checks, for the rare record whose bytes suggest one (see the module doc)."""
    try:
        document = json.loads(value, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        return _reject("not_json", str(exc))
    where = _find_nul(document, ())
    if where is None:
        return None
    kind = "payload" if where and where[0] == "payload" else "envelope"
    path = ".".join(str(part) for part in where) or "envelope"
    return _reject(kind, f"{path}: NUL character (\\u0000) is not allowed in any string")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _find_nul(node: Any, path: tuple) -> tuple | None:
    """The path of the first string (object key or value) that contains NUL, or None. Iterative: no depth limit."""
    stack = [(node, path)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return path
        elif isinstance(node, dict):
            for k, v in node.items():
                if "\x00" in k:
                    return (*path, k.replace("\x00", "\\u0000"))
                stack.append((v, (*path, k)))
        elif isinstance(node, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(node))
    return None


def _reject(kind: str, detail: str) -> Rejection:
    if len(detail) > MAX_DETAIL:
        detail = detail[: MAX_DETAIL - 3] + "..."
    return Rejection(kind, detail)
