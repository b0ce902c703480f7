"""The two shapes every action module fills in: a converter per envelope, a fold per internal event type."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

# (validated envelope, its received_at in UTC as bounded, the consumer.clock.TimeRules) → an internal event
# (schemas.events), or a schemas.events.Rejection saying why not.
Converter = Callable[[Any, datetime, float], Any]
# (the batch's rows so far, a consumer.coalesce.Rows; one event) → None: offers the event's values to the rows
# it changes.
Fold = Callable[[Any, Any], None]
