"""Times in events: RFC 3339 text to UTC instants, and which instant an event's state holds from.

Every rule about an event's time lives here, so that each action's converter applies the same ones.
"""

from __future__ import annotations

from datetime import datetime, timezone

_UTC = timezone.utc
_fromisoformat = datetime.fromisoformat


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


def effective_time(charger_time: datetime, received_at: datetime, max_skew_seconds: float) -> tuple[datetime, bool]:
    """(effective time, corrected?): the charger's own time, unless it is too far ahead of the gateway's.

    A charger whose clock runs ahead would otherwise win every later comparison with a time that has not come
    yet; the gateway's receipt time is the best bound we have.
    """
    if (charger_time - received_at).total_seconds() > max_skew_seconds:
        return received_at, True
    return charger_time, False
