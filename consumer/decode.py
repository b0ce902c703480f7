"""Kafka record (value, key) → one internal event, an `Ignored`, or a `Rejection`; never an exception.

A record that cannot be decoded must cost one dead letter, never the stream: so `decode` returns a Rejection
for every bad input, and a bug of ours becomes a Rejection of kind `internal` rather than a crashed consumer.

Speed matters (the consumer aims at 50k events/s on two cores): the bytes are parsed and validated once, in
pydantic-core, against a union that picks its variant from (ocpp_version, action). The checks pydantic cannot
make are done on the raw bytes first, cheaply, and only fall back to a slow exact check when they might fire:

* NUL: JSON must escape control characters, so a NUL in any string (key or value, however deep) appears in the
  bytes as the 6 characters `\\u0000`. Their absence proves there is none; their presence may be a false alarm
  (`"\\\\u0000"` is a backslash followed by "u0000"): an escape is real only after an even number of
  backslashes, which one linear regex decides. Only a record that really holds a NUL is parsed again, to name
  the field, and it is rejected.
* NaN/Infinity: pydantic's parser accepts these non-JSON literals; they cannot occur without those letters, and
  orjson, which is strict, decides in a millisecond whether they are literals or text inside strings.

Work per record is bounded by the record size limit: the slowest record found (1 MB of unknown payload fields,
each a validation error) costs ~0.2 s, and `decode_batch` yields to the event loop by bytes as well as by count,
so that no fetch holds the loop for long (aiokafka's heartbeats run on it).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import orjson
from pydantic import ValidationError

from consumer.actions import CONVERTERS
from consumer.clock import TimeRules, utc
from consumer.records import header_problem
from consumer.settings import Settings
from schemas import envelope as env
from schemas.events import Ignored, Rejection, StateEvent

__all__ = ["decode", "decode_batch", "Decoded", "MAX_DETAIL"]

MAX_DETAIL = 1000  # the detail becomes a Kafka header and a log field
# decode_batch lets the event loop run after this many records or bytes, whichever comes first (its docstring).
DECODE_SLICE = 1000
DECODE_SLICE_BYTES = 1 << 20
_validate_tracked = env.tracked_adapter.validate_json
_validate_other = env.other_adapter.validate_json


# A `\u0000` escape that is real: preceded by an even number (zero included) of backslashes.
_REAL_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _suspect(value: bytes) -> bool:
    """Might the record hold a NUL or a NaN/Infinity (module doc)? Three substring scans: half a regex's cost."""
    return b"\\u0000" in value or b"NaN" in value or b"Infinity" in value




def _default(name: str) -> Any:
    return Settings.model_fields[name].default


def decode(
    value: bytes | None,
    key: bytes | None,
    *,
    record_timestamp_ms: int | None = None,
    max_clock_skew_seconds: float = _default("max_clock_skew_seconds"),
    max_delivery_delay_seconds: float = _default("max_delivery_delay_seconds"),
    max_record_bytes: int = _default("max_record_bytes"),
) -> StateEvent | Ignored | Rejection:
    """Decode one record; see docs/contract.md for the contract, the time rules and the rejection kinds.

    `record_timestamp_ms` is the Kafka record's own timestamp: a gateway cannot receive an event after it
    published it. The record timestamp is part of the event, so the state stays a function of the events.
    """
    try:
        rules = _rules(max_clock_skew_seconds, max_delivery_delay_seconds)
        return _decode(value, key, record_timestamp_ms, rules, max_record_bytes)
    except Exception as exc:  # a bug must dead-letter one record, not stop the consumer
        return _reject("internal", f"decoder error: {type(exc).__name__}: {exc}")


@dataclass
class Decoded:
    """One fetched batch after decoding: what to write, what to dead-letter, what to count, what to commit.

    `events` and `rejects` keep the Kafka record each came from: a dead letter carries the original record.
    """

    offsets: dict  # TopicPartition → the next offset, committed once the batch is stored
    records: int = 0
    events: list = field(default_factory=list)  # (record, StateEvent), Ignored ones included: their rows are written
    rejects: list = field(default_factory=list)  # (record, Rejection)
    ignored: list = field(default_factory=list)  # Ignored, counted as such (and also in `events`)
    size: int = 0  # bytes of the records' keys and values

    def extend(self, later: Decoded) -> None:
        """Take in a batch fetched after this one: its partitions' next offsets are the later ones."""
        self.offsets.update(later.offsets)
        self.records += later.records
        self.size += later.size
        self.events += later.events
        self.rejects += later.rejects
        self.ignored += later.ignored


async def decode_batch(batch: dict, *, max_clock_skew_seconds: float, max_delivery_delay_seconds: float,
                       max_record_bytes: int) -> Decoded:
    """Decode a fetched batch (TopicPartition → records), letting the event loop run every DECODE_SLICE records
    or DECODE_SLICE_BYTES bytes.

    Decoding is CPU work that would otherwise hold the loop for a whole batch, and aiokafka's fetcher runs on
    the same loop: yielding lets it send the next fetch and read its response meanwhile, so that the next
    batch is waiting when this one is done.
    """
    decoded = Decoded(offsets={tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs})
    since_yield = 0
    for records in batch.values():
        for record in records:
            decoded.records += 1
            size = len(record.value or b"") + len(record.key or b"")
            decoded.size += size
            since_yield += size
            if decoded.records % DECODE_SLICE == 0 or since_yield > DECODE_SLICE_BYTES:
                since_yield = 0
                await asyncio.sleep(0)
            problem = header_problem(record.headers)  # a header key that is not UTF-8 (consumer.records)
            if problem is not None:
                decoded.rejects.append((record, _reject("bad_header", problem)))
                continue
            result = decode(
                record.value, record.key, record_timestamp_ms=record.timestamp,
                max_clock_skew_seconds=max_clock_skew_seconds,
                max_delivery_delay_seconds=max_delivery_delay_seconds, max_record_bytes=max_record_bytes,
            )
            if isinstance(result, Rejection):
                decoded.rejects.append((record, result))
            elif isinstance(result, Ignored):
                decoded.ignored.append(result)
                decoded.events.append((record, result))  # an event of its charge point too (docs/tables.md)
            else:
                decoded.events.append((record, result))
    return decoded


@lru_cache(maxsize=16)
def _rules(max_skew_seconds: float, max_delivery_delay_seconds: float) -> TimeRules:
    return TimeRules(max_skew_seconds, max_delivery_delay_seconds)


def _decode(value: Any, key: Any, record_timestamp_ms: int | None, rules: TimeRules,
            max_bytes: int) -> StateEvent | Ignored | Rejection:
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
    return _to_event(record, record_timestamp_ms, rules)


def _is_dispatch_error(error: dict) -> bool:
    """Did the tracked union fail to pick a variant (unknown or missing version or action, not an object)?"""
    return error["type"].startswith("union_tag") or len(error["loc"]) < env.TRACKED_LOC_PREFIX


def _to_event(record: Any, record_timestamp_ms: int | None, rules: TimeRules) -> StateEvent | Ignored | Rejection:
    """The envelope's converter (consumer/actions) makes the internal event; this does only what all share:
    the receipt time, bounded by the record's publishing time. An untracked action's event is that time alone."""
    received_at = utc(record.received_at)
    if type(received_at) is str:
        return _reject("envelope", f"received_at: {received_at} (got {record.received_at!r})")
    received_at, correction = rules.received_at(received_at, record_timestamp_ms)
    kind = type(record)
    if kind is env.OtherActionEnvelope:
        return Ignored(record.charge_point_id, record.ocpp_version, record.action, record.event_id, received_at,
                       (correction,) if correction else ())
    convert = CONVERTERS.get(kind)
    if convert is None:  # consumer/actions refuses to import with one missing; this guards a bypassed check
        return _reject("internal", f"no converter for {kind.__name__}")
    event = convert(record, received_at, rules)
    if type(event) is Rejection:
        return _reject(event.kind, event.detail)
    if correction is not None:
        event = replace(event, time_corrections=(correction, *event.time_corrections))
    return event


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
    """Exact NaN/Infinity and NUL checks, for the rare record whose bytes suggest one (see the module doc)."""
    if b"NaN" in value or b"Infinity" in value:
        try:
            orjson.loads(value)
        except orjson.JSONDecodeError:
            # orjson is stricter than pydantic in more than NaN (lone surrogates); the standard parser, told to
            # refuse only the constants, names the real reason.
            try:
                json.loads(value, parse_constant=_refuse_constant)
            except (ValueError, RecursionError) as exc:
                return _reject("not_json", str(exc))
    if _REAL_NUL.search(value) is None:
        return None
    try:
        document = json.loads(value)
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
