"""The two shapes every action module fills in: a converter per envelope, a fold per internal event type."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from schemas.events import Event, Rejection

# (validated envelope, its received_at in UTC, the clock-skew bound in seconds) → an internal event, or why not.
Converter = Callable[[Any, datetime, float], "Event | Rejection"]
# (the batch's rows so far, one event) → None: offers the event's values to the rows it changes.
Fold = Callable[[Any, Any], None]
