"""One module per tracked OCPP action: how each version's envelope becomes an internal event, and how that event
folds into a batch's rows. decode and coalesce look actions up here; they never name one.

Adding an action (or a version of one) touches, each once: its payload model (schemas/ocpp16.py, ocpp201.py,
ocpp21.py), its envelope in `schemas.envelope.TRACKED_ENVELOPES`, a module here with `CONVERTERS` and `FOLDS`
listed in `ACTIONS`, and a migration when it adds columns. (`untracked` folds the actions not tracked: it has no
converter, as decode makes their `Ignored` event from the catch-all envelope.) An envelope or an event type that nothing handles fails here,
at import, not as a silent fallthrough at run time (tests/test_actions.py lists every pair).
"""

from __future__ import annotations

from schemas.envelope import TRACKED_ENVELOPES, version_and_action

from consumer.actions import boot_notification, heartbeat, notify_event, status_notification, untracked
from consumer.actions.base import Converter, Fold

ACTIONS = (boot_notification, status_notification, heartbeat, notify_event, untracked)

CONVERTERS: dict[type, Converter] = {
    envelope: convert for action in ACTIONS for envelope, convert in action.CONVERTERS.items()
}
FOLDS: dict[type, Fold] = {event_type: fold for action in ACTIONS for event_type, fold in action.FOLDS.items()}


def _check_complete() -> None:
    unhandled = [version_and_action(e) for e in TRACKED_ENVELOPES if e not in CONVERTERS]
    if unhandled:
        raise ImportError(f"tracked envelopes without a converter in consumer/actions: {unhandled}")
    unregistered = [e.__name__ for e in CONVERTERS if e not in TRACKED_ENVELOPES]
    if unregistered:
        raise ImportError(f"converters for envelopes missing from TRACKED_ENVELOPES: {unregistered}")


_check_complete()
