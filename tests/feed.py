"""Gateway records for the service tests: valid envelopes of both OCPP versions, plus invalid ones.

Small key spaces and a coarse clock on purpose, so that events collide on the same rows and on the same
timestamps, and the last-writer-wins rule (with its event_id tie-break) is actually exercised.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

import orjson

BASE = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
STATUSES_16 = ["Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV", "Finishing", "Reserved",
               "Unavailable", "Faulted"]
ERRORS_16 = ["NoError", "NoError", "NoError", "GroundFailure", "WeakSignal", "OverVoltage", "InternalError"]
STATUSES_201 = ["Available", "Occupied", "Reserved", "Unavailable", "Faulted"]


def _ts(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def envelope(cp: str, version: str, action: str, received_at: datetime, payload: dict) -> bytes:
    return orjson.dumps(
        {
            "event_id": str(uuid.UUID(int=random.getrandbits(128), version=4)),
            "charge_point_id": cp,
            "ocpp_version": version,
            "action": action,
            "received_at": _ts(received_at),
            "payload": payload,
        }
    )


def valid_records(n: int, *, seed: int, charge_points: int = 8, connectors: int = 3) -> list[tuple[bytes, bytes]]:
    """`n` valid (key, value) records; charge point i speaks 2.0.1 when i is odd, 1.6 otherwise."""
    random.seed(seed)
    out = []
    for _ in range(n):
        i = random.randrange(charge_points)
        cp = f"CP-{seed}-{i:03d}"
        version = "2.0.1" if i % 2 else "1.6"
        received = BASE + timedelta(seconds=random.randrange(600))
        stamp = _ts(received - timedelta(seconds=random.randrange(3)))
        action = random.choices(["StatusNotification", "Heartbeat", "BootNotification"], [6, 3, 1])[0]
        if action == "Heartbeat":
            payload: dict = {}
        elif action == "BootNotification" and version == "1.6":
            payload = {"chargePointVendor": random.choice(["Alfen", "ABB"]),
                       "chargePointModel": random.choice(["Eve", "Terra"]),
                       **({"firmwareVersion": f"1.{random.randrange(5)}"} if random.random() < 0.8 else {})}
        elif action == "BootNotification":
            payload = {"reason": "PowerUp",
                       "chargingStation": {"vendorName": random.choice(["Alfen", "ABB"]),
                                           "model": random.choice(["Eve", "Terra"]),
                                           **({"firmwareVersion": f"2.{random.randrange(5)}"}
                                              if random.random() < 0.8 else {})}}
        elif version == "1.6":
            payload = {"connectorId": random.randrange(connectors + 1), "status": random.choice(STATUSES_16),
                       "errorCode": random.choice(ERRORS_16), "timestamp": stamp}
        else:
            payload = {"timestamp": stamp, "connectorStatus": random.choice(STATUSES_201),
                       "evseId": random.randrange(connectors + 1), "connectorId": 1}
        out.append((cp.encode(), envelope(cp, version, action, received, payload)))
    # Some records twice, as at-least-once gateways deliver them.
    out += random.sample(out, k=n // 10)
    random.shuffle(out)
    return out


def invalid_records(seed: int) -> list[tuple[bytes | None, bytes | None, str]]:
    """(key, value, expected rejection kind) for records the service must dead-letter."""
    random.seed(seed)
    now = BASE
    good = orjson.loads(envelope("CP-BAD", "1.6", "Heartbeat", now, {}))
    return [
        (b"CP-BAD", b"\xff\xfe not utf-8", "not_utf8"),
        (b"CP-BAD", b'{"event_id": "trunc', "not_json"),
        (b"CP-BAD", b"[1, 2, 3]", "envelope"),
        (b"CP-BAD", orjson.dumps({**good, "ocpp_version": "1.5"}), "envelope"),
        (b"CP-BAD", orjson.dumps({**good, "event_id": "not-a-uuid"}), "envelope"),
        (b"CP-BAD", orjson.dumps({**good, "action": "StatusNotification",
                                  "payload": {"connectorId": 1, "status": "available", "errorCode": "NoError"}}),
         "payload"),
        (b"CP-OTHER", orjson.dumps(good), "key_mismatch"),
    ]
