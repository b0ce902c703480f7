"""The dead-letter stage: every rejected record goes to the dead-letter topic with why and where from.

What a dead letter carries: the original record untouched, plus headers that say why and where from. An operator
can fix the cause and re-publish the value (and key and headers) to the source topic as it is. The one exception
is a value too large to send again (kind `too_large`, or one the broker refuses by size): its dead letter carries
no value, only the headers and `ocpp.error.original_bytes`; `ocpp.source.*` say where the original still is, for
as long as the source topic retains it. Anything else would stop the stream on a record that can never be
dead-lettered.
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


def dead_letter(record: ConsumerRecord, rejection: Rejection, *, with_value: bool = True) -> dict:
    """Keyword arguments for `producer.send`: the record's key, value and headers, then `ocpp.*` headers."""
    headers = [
        *(record.headers or ()),
        ("ocpp.error.kind", rejection.kind.encode()),
        ("ocpp.error.detail", rejection.detail.encode("utf-8", "replace")[:MAX_DETAIL_BYTES]),
        ("ocpp.source.topic", record.topic.encode()),
        ("ocpp.source.partition", str(record.partition).encode()),
        ("ocpp.source.offset", str(record.offset).encode()),
    ]
    value = record.value
    if rejection.kind == "too_large" or not with_value:
        headers.append(("ocpp.error.original_bytes", str(len(value or b"")).encode()))
        value = None
    return {"key": record.key, "value": value, "headers": headers}


async def send(producer: AIOKafkaProducer, topic: str, rejects: list[tuple[ConsumerRecord, Rejection]]) -> None:
    """Send every reject and wait until the broker has acknowledged all of them.

    A letter refused for its size, by the client before sending or by the broker after, is sent again without
    its value. Any other failure propagates: the caller retries the whole call (the producer is idempotent).
    """
    if not rejects:
        return
    futures = []
    for record, rejection in rejects:
        try:
            futures.append(await producer.send(topic, **dead_letter(record, rejection)))
        except MessageSizeTooLargeError:  # refused by the client before sending
            futures.append(await producer.send(topic, **dead_letter(record, rejection, with_value=False)))
    results = await asyncio.gather(*futures, return_exceptions=True)
    resent = [
        await producer.send(topic, **dead_letter(record, rejection, with_value=False))
        for (record, rejection), result in zip(rejects, results)
        if isinstance(result, MessageSizeTooLargeError)  # refused by the broker for its size
    ]
    for result in [*results, *await asyncio.gather(*resent)]:
        if isinstance(result, BaseException) and not isinstance(result, MessageSizeTooLargeError):
            raise result
    _log(rejects)


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
