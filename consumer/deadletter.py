"""What a dead letter carries: the original record untouched, plus headers that say why and where from.

An operator can fix the cause and re-publish the value (and key and headers) to the source topic as it is.
"""

from __future__ import annotations

from aiokafka.structs import ConsumerRecord

from schemas.events import Rejection

# Header values must stay well below the broker's record size limit whatever a detail says.
MAX_DETAIL_BYTES = 4000


def dead_letter_headers(record: ConsumerRecord, rejection: Rejection) -> list[tuple[str, bytes]]:
    """The record's own headers, then `ocpp.error.*` and `ocpp.source.*`."""
    detail = rejection.detail.encode("utf-8", "replace")[:MAX_DETAIL_BYTES]
    return [
        *(record.headers or ()),
        ("ocpp.error.kind", rejection.kind.encode()),
        ("ocpp.error.detail", detail),
        ("ocpp.source.topic", record.topic.encode()),
        ("ocpp.source.partition", str(record.partition).encode()),
        ("ocpp.source.offset", str(record.offset).encode()),
    ]
