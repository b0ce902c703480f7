"""Times in events: RFC 3339 text to UTC instants, and the rules that decide which instant an event's state holds
from. Every rule about an event's time lives here, so that each action's converter applies the same ones; the
rules and an example of each correction are in docs/contract.md ("Time rules").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_fromisoformat = datetime.fromisoformat

# The kinds of correction, as counted by ocpp_time_corrections_total{kind}.
CHARGER_CLOCK_AHEAD = "charger_clock_ahead"
CHARGER_CLOCK_RESET = "charger_clock_reset"
RECEIVED_AFTER_PUBLISH = "received_at_after_publish"


def utc(text: str) -> datetime | str:
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


@dataclass(frozen=True, slots=True)
class TimeRules:
    """The two bounds, in seconds: how far ahead of the gateway a charger's clock may run (and a gateway's ahead
    of its own publishing), and how long a charger may hold an event before the gateway receives it."""

    max_skew_seconds: float
    max_delivery_delay_seconds: float

    def received_at(self, received_at: datetime, record_timestamp_ms: int | None) -> tuple[datetime, str | None]:
        """A gateway cannot receive an event after it published it: a `received_at` later than the Kafka
        record's timestamp plus the skew window is replaced by the record timestamp (a year-9999 `received_at`
        would otherwise pin a port's state forever). One far older stays: backfills carry old times on purpose."""
        if record_timestamp_ms is None or record_timestamp_ms < 0:
            return received_at, None
        published = _EPOCH + timedelta(milliseconds=record_timestamp_ms)
        if (received_at - published).total_seconds() > self.max_skew_seconds:
            return published, RECEIVED_AFTER_PUBLISH
        return received_at, None

    def effective(self, charger_time: datetime, received_at: datetime) -> tuple[datetime, str | None]:
        """The charger's own time, unless it is not believable; then the gateway's receipt time.

        Too far ahead of the receipt: the charger's clock runs fast, and its time would win every later
        comparison. Earlier than the receipt by more than the longest delivery delay: the clock was reset (to
        1970, say), and its events would be out-voted by every older one. Merely late stays believed: chargers
        queue notifications while offline and send them, with their original times, when they reconnect.
        """
        ahead = (charger_time - received_at).total_seconds()
        if ahead > self.max_skew_seconds:
            return received_at, CHARGER_CLOCK_AHEAD
        if -ahead > self.max_delivery_delay_seconds:
            return received_at, CHARGER_CLOCK_RESET
        return charger_time, None
