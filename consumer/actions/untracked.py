"""Actions this service does not track (MeterValues, Authorize, …): their payload is not read, but each is an
event of its charge point, so its row exists and its last_updated reaches the record's `received_at`
(docs/tables.md). decode makes the `Ignored` event itself, from the catch-all envelope: there is no converter."""

from __future__ import annotations

from schemas.events import Ignored


def fold(rows, event: Ignored) -> None:
    """Nothing beyond what every event does (coalesce.Rows.touch)."""


CONVERTERS: dict = {}
FOLDS = {Ignored: fold}
