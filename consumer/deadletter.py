"""What a dead letter carries: the original record untouched, plus headers that say why and where from.

An operator can fix the cause and re-publish the value (and key and headers) to the source topic as it is.
The one exception is a value too large to send again (kind `too_large`, or one the broker refuses by size):
its dead letter carries no value, only the headers and `ocpp.error.original_bytes`; `ocpp.source.*` say where
the original still is, for as long as the source topic retains it. Anything else would stop the stream on a
record that can never be dead-lettered.
"""

from __future__ import annotations

from aiokafka.structs import ConsumerRecord

from schemas.events import Rejection

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
