"""The dead-letter stage: every rejected record goes to the dead-letter topic with why and where from, and no
record can stop the stream on its way there.

A dead letter is sent in the first of three forms that the client and the broker accept:

1. **whole**: our `ocpp.*` headers (`ocpp.source.timestamp` keeps the original's timestamp), then the
   original key, value and headers. Once the cause is fixed, `ocpp-consumer dlq replay` (consumer/replay.py)
   puts it back on its source topic.
2. **without its value** (a value too large to send again: kind `too_large`, or refused by size), with
   `ocpp.error.original_bytes`; `ocpp.source.*` say where the original still is, for as long as the source topic
   retains it.
3. **a placeholder**: no value, the key only if it is small, and only as many of the original headers as fit in
   PLACEHOLDER_HEADER_BYTES (`ocpp.error.dropped_headers` says how many did not). A record whose headers alone
   exceed the broker's limit, or whose key is huge, still leaves a trace, and the stream goes on.

Kafka refuses a record with neither key nor value, so a letter without a key carries an empty value. Our headers
come first, and a producer's own `ocpp.error.*` or `ocpp.source.*` headers are renamed `ocpp.original.…`: a
reader of the first header of a name always gets ours, and nothing of the original is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.structs import ConsumerRecord

from schemas.events import Rejection

log = logging.getLogger("consumer")

# Header values must stay well below the broker's record size limit whatever a detail says.
MAX_DETAIL_BYTES = 4000
# What a placeholder may keep of the original: far below any broker's record size limit (1 MB by default).
PLACEHOLDER_HEADER_BYTES = 65_536
PLACEHOLDER_KEY_BYTES = 1024

WHOLE, WITHOUT_VALUE, PLACEHOLDER = range(3)
_OURS = ("ocpp.error.", "ocpp.source.")


async def check_topic(producer: AIOKafkaProducer, topic: str, *, timeout: float) -> None:
    """Raise LookupError, with a message for the operator, when dead letters would have nowhere to go.

    Found at start-up rather than at the first invalid record, minutes or days later, with a batch in hand. The
    broker answers at once when the topic exists or when it creates it, so running out of time means neither.
    """
    try:
        await asyncio.wait_for(producer.partitions_for(topic), timeout=timeout)
    except Exception as exc:
        raise LookupError(
            f"the dead-letter topic {topic!r} does not exist and the broker did not create it "
            f"({type(exc).__name__}); create it or set OCPP_DLQ_TOPIC"
        ) from exc


def dead_letter(record: ConsumerRecord, rejection: Rejection, *, form: int = WHOLE) -> dict:
    """Keyword arguments for `producer.send`: the letter in the given form (see the module doc)."""
    key, value = record.key, record.value
    headers = [
        ("ocpp.error.kind", rejection.kind.encode()),
        ("ocpp.error.detail", rejection.detail.encode("utf-8", "replace")[:MAX_DETAIL_BYTES]),
        ("ocpp.source.topic", record.topic.encode()),
        ("ocpp.source.partition", str(record.partition).encode()),
        ("ocpp.source.offset", str(record.offset).encode()),
        # The original's own timestamp, so that a replay is judged by the time rules as the original was. A header,
        # not the letter's timestamp: the topic's time-based retention must count from the dead-lettering.
        ("ocpp.source.timestamp", str(record.timestamp).encode()),
    ]
    if rejection.kind == "too_large":
        form = max(form, WITHOUT_VALUE)
    if form >= WITHOUT_VALUE:
        headers.append(("ocpp.error.original_bytes", str(len(value or b"")).encode()))
        value = None
    original = [(f"ocpp.original.{k}" if k.startswith(_OURS) else k, v) for k, v in record.headers or ()]
    if form == PLACEHOLDER:
        if key is not None and len(key) > PLACEHOLDER_KEY_BYTES:
            key = None
        kept, budget = [], PLACEHOLDER_HEADER_BYTES
        for name, header_value in original:
            size = len(name.encode("utf-8", "replace")) + len(header_value or b"")
            if size <= budget:
                kept.append((name, header_value))
                budget -= size
        if len(kept) < len(original):
            headers.append(("ocpp.error.dropped_headers", str(len(original) - len(kept)).encode()))
        original = kept
    if key is None and value is None:
        value = b""  # Kafka refuses a record with neither
    return {"key": key, "value": value, "headers": headers + original}


async def send(producer: AIOKafkaProducer, topic: str, rejects: list[tuple[ConsumerRecord, Rejection]]) -> None:
    """Send every reject and wait until the broker has acknowledged all of them.

    A letter refused for its size, by the client before sending or by the broker after, is sent again in the
    next, smaller form. A failure of any other kind propagates, and the caller retries the whole call.
    """
    if not rejects:
        return
    pending = [(record, rejection, WHOLE) for record, rejection in rejects]
    while pending:
        futures = []
        for record, rejection, form in pending:
            try:
                futures.append(await producer.send(topic, **dead_letter(record, rejection, form=form)))
            except MessageSizeTooLargeError as exc:  # refused by the client before sending
                futures.append(_failed(exc))
        results = await asyncio.gather(*futures, return_exceptions=True)
        smaller = []
        for (record, rejection, form), result in zip(pending, results):
            if isinstance(result, MessageSizeTooLargeError) and form < PLACEHOLDER:
                smaller.append((record, rejection, form + 1))
            elif isinstance(result, BaseException):
                raise result
        pending = smaller
    _log(rejects)


def _failed(exc: BaseException) -> asyncio.Future:
    future = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future


def _log(rejects: list[tuple[ConsumerRecord, Rejection]]) -> None:
    """One line per batch, not per record: a misbehaving gateway must not flood the log. The dead-letter topic
    keeps every record with its reason; the sample says where to start looking."""
    record, rejection = rejects[0]
    log.warning(
        "dead-lettered",
        extra={"count": len(rejects), "kinds": dict(Counter(r.kind for _, r in rejects)),
               "sample": {"kind": rejection.kind, "detail": rejection.detail, "topic": record.topic,
                          "partition": record.partition, "offset": record.offset}},
    )
    if log.isEnabledFor(logging.DEBUG):
        for record, rejection in rejects:
            log.debug(
                "dead-lettered record",
                extra={"kind": rejection.kind, "detail": rejection.detail, "topic": record.topic,
                       "partition": record.partition, "offset": record.offset},
            )
