"""The two shapes every action module fills in: a converter per envelope, a fold per internal event type; and the
one step several converters share, believing (or not) a charger's timestamp."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from consumer.clock import TimeRules, utc
from schemas.events import Rejection

# (validated envelope, its received_at in UTC as bounded, the consumer.clock.TimeRules) → an internal event
# (schemas.events), or a schemas.events.Rejection saying why not.
Converter = Callable[[Any, datetime, TimeRules], Any]
# (the batch's rows so far, a consumer.coalesce.Rows; one event) → None: offers the event's values to the rows
# it changes.
Fold = Callable[[Any, Any], None]


def effective_time(timestamp: str, received_at: datetime, rules: TimeRules,
                   where: str) -> tuple[datetime, str | None] | Rejection:
    """The instant a charger's `timestamp` (the field at `where`) says a state began, under the time rules
    (consumer.clock), with the correction made if any; or a payload rejection for a time that does not exist."""
    charger_time = utc(timestamp)
    if type(charger_time) is str:
        return Rejection("payload", f"{where}: {charger_time} (got {timestamp!r})")
    return rules.effective(charger_time, received_at)
