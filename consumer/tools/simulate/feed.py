"""The simulated gateway feed: a pure, seeded generator of (key, value) records, with no I/O.

Pure so that the tests and the benchmark reuse exactly the feed an operator publishes, and two runs with one seed
are identical. The feed is event-driven, not random noise: each charge point boots once, heartbeats every
`heartbeat_interval` seconds, and each connector walks a plausible session cycle with realistic dwell times.
A charge point speaks OCPP 1.6, 2.0.1 or 2.1. A 2.x charge point's port is an EVSE; some EVSEs have two
connectors (a DC charger's CCS and CHAdeMO: the plugged one reports Occupied and its sibling Unavailable, both
at one instant), and some charge points report availability through NotifyEvent instead of StatusNotification.
Those choices come from a second generator, so a feed without them is byte for byte what it was before them.
Time is simulated (a backlog's `received_at` advances as the simulated fleet would produce it) unless a
`clock` is given: live mode passes the wall clock so `received_at` is the send time and latency can be measured.
"""

from __future__ import annotations

import heapq
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import orjson

# The OCPP 1.6 session cycle: next state → weight. Faults and maintenance interrupt it now and then.
TRANSITIONS: dict[str, dict[str, float]] = {
    "Available": {"Preparing": 0.88, "Reserved": 0.05, "Unavailable": 0.04, "Faulted": 0.03},
    "Reserved": {"Preparing": 0.8, "Available": 0.2},
    "Preparing": {"Charging": 0.9, "Available": 0.1},  # plugged in, never authorised
    "Charging": {"SuspendedEV": 0.6, "SuspendedEVSE": 0.1, "Finishing": 0.27, "Faulted": 0.03},
    "SuspendedEV": {"Charging": 0.3, "Finishing": 0.7},
    "SuspendedEVSE": {"Charging": 0.8, "Finishing": 0.2},
    "Finishing": {"Available": 1.0},
    "Faulted": {"Available": 0.8, "Unavailable": 0.2},
    "Unavailable": {"Available": 1.0},
}
# Mean time (simulated seconds) a connector stays in a state before its next transition.
DWELL_SECONDS = {
    "Available": 300, "Reserved": 120, "Preparing": 30, "Charging": 600, "SuspendedEV": 120,
    "SuspendedEVSE": 60, "Finishing": 30, "Faulted": 180, "Unavailable": 600,
}
# OCPP 2.0.1 StatusNotification only knows the connector's physical state; a session is "Occupied".
STATUS_201 = {
    "Available": "Available", "Reserved": "Reserved", "Unavailable": "Unavailable", "Faulted": "Faulted",
    "Preparing": "Occupied", "Charging": "Occupied", "SuspendedEV": "Occupied", "SuspendedEVSE": "Occupied",
    "Finishing": "Occupied",
}
FAULT_CODES = ["GroundFailure", "OverCurrentFailure", "PowerMeterFailure", "HighTemperature", "InternalError",
               "EVCommunicationError", "ConnectorLockFailure", "UnderVoltage", "OverVoltage", "OtherError"]
VENDORS = [("Alfen BV", ["Eve Single Pro", "Eve Double"]), ("ABB", ["Terra AC", "Terra 54"]),
           ("Wallbox", ["Commander 2", "Pulsar Plus"]), ("Zaptec", ["Go", "Pro"]), ("Kempower", ["S-Series"])]
INVALID_KINDS = ["not_json", "not_utf8", "bad_enum", "missing_field", "bad_uuid", "bad_version"]
# Non-availability items a NotifyEvent charger sends now and then: read and ignored by the consumer.
OTHER_ITEMS = [("ChargingStation", "Temperature", "41.5"), ("Controller", "Problem", "false")]

BOOT, ANNOUNCE, TRANSITION, HEARTBEAT = range(4)
PRECISIONS = ("ms", "s")


@dataclass(frozen=True)
class FeedConfig:
    charge_points: int = 100
    connectors: int = 2
    ocpp201_fraction: float = 0.3
    heartbeat_interval: float = 60.0
    duplicates: float = 0.0  # fraction of valid events delivered twice (an at-least-once gateway retrying)
    out_of_order: float = 0.0  # fraction of valid events held back and delivered up to a minute later
    wrong_clocks: float = 0.0  # fraction of charge points whose clock runs hours ahead
    invalid: float = 0.0  # fraction of events that reach Kafka corrupted
    seed: int = 1
    start: float = 1_795_996_800.0  # simulated epoch of the first boot (2026-11-30T00:00:00Z)
    # "ms" or "s": many real OCPP 1.6 chargers (and gateways) stamp whole seconds. Applies to every timestamp
    # the feed writes, received_at and the payload's. Milliseconds by default, so existing figures do not move.
    timestamp_precision: str = "ms"
    # The precision of 1.6 chargers' own StatusNotification timestamps, when it differs (the benchmark uses "s",
    # as real 1.6 chargers do, so that same-second ties are exercised); None: timestamp_precision.
    ocpp16_charger_precision: str | None = None
    ocpp21_fraction: float = 0.0  # fraction of charge points on OCPP 2.1 (drawn after, and over, ocpp201_fraction)
    two_connector_fraction: float = 0.0  # fraction of 2.x charge points whose EVSEs have two connectors
    notify_event_fraction: float = 0.0  # fraction of 2.x charge points reporting availability by NotifyEvent

    def __post_init__(self) -> None:
        for precision in (self.timestamp_precision, self.ocpp16_charger_precision or "ms"):
            if precision not in PRECISIONS:
                raise ValueError(f"timestamp precision must be one of {PRECISIONS}, not {precision!r}")
        for name in ("ocpp21_fraction", "two_connector_fraction", "notify_event_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a fraction between 0 and 1")


def _rfc3339_formatter(precision: str = "ms") -> Callable[[float], str]:
    """Epoch seconds → '2026-11-24T19:00:00.123Z' (or '…:00Z' to the second), caching the per-second part
    (strftime is the slow bit). Both precisions truncate, as a clock does, so a stamp never moves later."""
    cache: dict[int, str] = {}
    whole_seconds = precision == "s"

    def fmt(epoch: float) -> str:
        sec = int(epoch)
        prefix = cache.get(sec)
        if prefix is None:
            if len(cache) > 8192:
                cache.clear()
            prefix = cache[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        if whole_seconds:
            return f"{prefix}Z"
        return f"{prefix}.{int((epoch - sec) * 1000):03d}Z"

    return fmt


def _uuid4(rng: random.Random) -> str:
    """A version-4 UUID from the seeded generator (uuid.uuid4 would make the feed irreproducible)."""
    b = rng.getrandbits(128)
    b = (b & ~(0xF << 76)) | (4 << 76)
    b = (b & ~(0x3 << 62)) | (0x2 << 62)
    h = f"{b:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Feed:
    """An endless, seeded stream of gateway records (key, value); iterate it once.

    `clock`, when given, maps the simulated time of an event to its `received_at` (epoch seconds); live mode
    passes `lambda _: time.time()`. `counts` says what was produced so far, by kind: boot, status, notify
    (a NotifyEvent), heartbeat (the valid events) and duplicate, late, invalid (the defects); `invalid_kinds`
    splits invalid.
    `now` is the simulated time of the newest event.
    """

    def __init__(self, config: FeedConfig, clock: Callable[[float], float] | None = None) -> None:
        self.config = config
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self.invalid_kinds: Counter[str] = Counter()
        self.now = config.start
        rng = self._rng = random.Random(config.seed)
        c = config
        width = max(5, len(str(c.charge_points)))
        self.ids = [f"CP-{i:0{width}d}" for i in range(1, c.charge_points + 1)]
        self.keys = [cp.encode() for cp in self.ids]
        self.versions = ["2.0.1" if rng.random() < c.ocpp201_fraction else "1.6" for _ in self.ids]
        drawn = list(self.versions)  # what the main generator's later draws depend on, 2.1 or not
        # The 2.1, two-connector and NotifyEvent choices draw from a generator of their own (see the module doc).
        aux = self._aux = random.Random(c.seed * 7919 + 21)
        if c.ocpp21_fraction:
            self.versions = ["2.1" if aux.random() < c.ocpp21_fraction else v for v in self.versions]
        self.two_connectors = [v != "1.6" and c.two_connector_fraction > 0 and aux.random() < c.two_connector_fraction
                               for v in self.versions]
        self.notifies = [v != "1.6" and c.notify_event_fraction > 0 and aux.random() < c.notify_event_fraction
                         for v in self.versions]
        self.plugged: dict[tuple[int, int], int] = {}  # (cp, EVSE) of a two-connector EVSE in use → its connector
        self.event_ids = [0] * len(self.ids)  # NotifyEvent eventId, per charge point
        # A wrong clock runs a fixed 1-12 hours ahead; most 1.6 chargers timestamp their StatusNotifications.
        self.skews = [rng.uniform(3600, 12 * 3600) if rng.random() < c.wrong_clocks else 0.0 for _ in self.ids]
        self.stamps = [v != "1.6" or rng.random() < 0.8 for v in drawn]
        self.hardware = [self._hardware(rng) for _ in self.ids]
        # state[cp][connector], connector 0 being the charge point itself.
        self.state = [["Available"] * (c.connectors + 1) for _ in self.ids]
        self._fmt16 = _rfc3339_formatter(c.ocpp16_charger_precision) if c.ocpp16_charger_precision else None

    @staticmethod
    def _hardware(rng: random.Random) -> tuple[str, str, str | None]:
        vendor, models = rng.choice(VENDORS)
        firmware = f"{rng.randint(1, 6)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}" if rng.random() < 0.9 else None
        return vendor, rng.choice(models), firmware

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        c, rng = self.config, self._rng
        fmt = _rfc3339_formatter(c.timestamp_precision)
        seq = 0
        schedule: list[tuple[float, int, int, int, int]] = []  # (time, seq, kind, cp, connector)
        delayed: list[tuple[float, int, bytes, bytes, str]] = []  # (release time, seq, key, value, kind)
        for cp in range(c.charge_points):
            seq += 1
            heapq.heappush(schedule, (c.start + rng.uniform(0, min(c.heartbeat_interval, 60.0)), seq, BOOT, cp, 0))

        while True:
            t, _, kind, cp, connector = heapq.heappop(schedule)
            # Records held back (late deliveries, duplicate copies) go out once the feed has moved past them.
            while delayed and delayed[0][0] <= t:
                _, _, key, value, what = heapq.heappop(delayed)
                self.counts[what] += 1
                yield key, value
            self.now = t
            version = self.versions[cp]
            received_at = self.clock(t) if self.clock else t

            if kind == BOOT:
                messages = [("boot", "BootNotification", self._boot_payload(cp, version))]
                # After booting, a charger reports every connector (0 = itself), then heartbeats.
                for n in range(c.connectors + 1):
                    seq += 1
                    heapq.heappush(schedule, (t + 0.05 + 0.05 * n + rng.random() * 0.02, seq, ANNOUNCE, cp, n))
                seq += 1
                heapq.heappush(schedule, (t + c.heartbeat_interval, seq, HEARTBEAT, cp, 0))
            elif kind == HEARTBEAT:
                messages = [("heartbeat", "Heartbeat", {})]
                seq += 1
                heapq.heappush(schedule, (t + c.heartbeat_interval, seq, HEARTBEAT, cp, 0))
            else:
                states = self.state[cp]
                previous = states[connector]
                if kind == TRANSITION:
                    nxt = TRANSITIONS[previous]
                    states[connector] = rng.choices(list(nxt), weights=list(nxt.values()))[0]
                if connector:
                    seq += 1
                    dwell = rng.expovariate(1 / DWELL_SECONDS[states[connector]])
                    heapq.heappush(schedule, (t + 1 + dwell, seq, TRANSITION, cp, connector))
                if (kind == TRANSITION and version != "1.6"
                        and STATUS_201[previous] == STATUS_201[states[connector]]):
                    continue  # 2.x only notifies a change of connector status
                if version == "1.6":
                    messages = [("status", "StatusNotification",
                                 self._status_payload_16(cp, connector, states[connector], received_at, fmt))]
                else:
                    messages = self._status_messages_2x(cp, connector, previous, states[connector], received_at, fmt)

            for event, action, payload in messages:  # one record each (a two-connector EVSE reports twice)
                envelope = {
                    "event_id": _uuid4(rng),
                    "charge_point_id": self.ids[cp],
                    "ocpp_version": version,
                    "action": action,
                    "received_at": fmt(received_at),
                    "payload": payload,
                }
                key = self.keys[cp]
                if c.invalid and rng.random() < c.invalid:
                    what = rng.choice(INVALID_KINDS)
                    self.invalid_kinds[what] += 1
                    self.counts["invalid"] += 1
                    yield key, self._corrupt(envelope, what, rng)
                    continue
                value = orjson.dumps(envelope)
                self.counts[event] += 1
                if c.duplicates and rng.random() < c.duplicates:
                    seq += 1
                    heapq.heappush(delayed, (t + rng.uniform(0, 5), seq, key, value, "duplicate"))
                if c.out_of_order and rng.random() < c.out_of_order:
                    self.counts[event] -= 1  # counted as "late" when it finally goes out
                    seq += 1
                    heapq.heappush(delayed, (t + rng.uniform(1, 60), seq, key, value, "late"))
                    continue
                yield key, value

    def _boot_payload(self, cp: int, version: str) -> dict:
        vendor, model, firmware = self.hardware[cp]
        if version == "1.6":
            payload = {"chargePointVendor": vendor, "chargePointModel": model}
            if firmware:
                payload["firmwareVersion"] = firmware
            return payload
        station = {"model": model, "vendorName": vendor}
        if firmware:
            station["firmwareVersion"] = firmware
        if version == "2.1":  # the newer stations also say who they are and which SIM they use
            station["serialNumber"] = f"SN-{cp + 1:08d}"
            station["modem"] = {"iccid": f"89314404{cp + 1:012d}", "imsi": f"20404{cp + 1:010d}"}
        return {"reason": "PowerUp", "chargingStation": station}

    def _status_messages_2x(self, cp: int, evse: int, previous: str, status: str, received: float,
                            fmt: Callable[[float], str]) -> list[tuple[str, str, dict]]:
        """What a 2.x charger sends when EVSE `evse` (0: the station) enters `status` (a 1.6-cycle state): one
        StatusNotification per connector, or one NotifyEvent with an AvailabilityState item per connector, all
        stamped with one instant. Connector n of the simulation is EVSE n; a one-connector EVSE's is connector 1."""
        # The charger stamped the frame a little before the gateway received it (plus its clock error).
        stamp = fmt(received - self._rng.random() * 0.5 + self.skews[cp])
        shown = STATUS_201[status]
        if evse == 0 or not self.two_connectors[cp]:
            connectors = [(0 if evse == 0 else 1, shown)]
        else:
            # A DC EVSE with CCS and CHAdeMO: the plugged connector is Occupied, its sibling Unavailable.
            if shown == "Occupied" and STATUS_201[previous] != "Occupied":
                self.plugged[cp, evse] = self._aux.choice((1, 2))
            plugged = self.plugged.get((cp, evse), 1)
            connectors = [(n, ("Occupied" if n == plugged else "Unavailable") if shown == "Occupied" else shown)
                          for n in (1, 2)]
        if not self.notifies[cp]:
            return [("status", "StatusNotification", {"timestamp": stamp, "connectorStatus": value, "evseId": evse,
                                                       "connectorId": n}) for n, value in connectors]
        items = []
        for n, value in connectors:
            component = ({"name": "ChargingStation"} if evse == 0
                         else {"name": "Connector", "evse": {"id": evse, "connectorId": n}})
            items.append(self._event_data(cp, stamp, component, "AvailabilityState", value))
        if self._aux.random() < 0.1:
            name, variable, value = self._aux.choice(OTHER_ITEMS)
            items.append(self._event_data(cp, stamp, {"name": name}, variable, value))
        return [("notify", "NotifyEvent", {"generatedAt": stamp, "seqNo": 0, "eventData": items})]

    def _event_data(self, cp: int, stamp: str, component: dict, variable: str, value: str) -> dict:
        self.event_ids[cp] += 1
        return {"eventId": self.event_ids[cp], "timestamp": stamp, "trigger": "Delta", "actualValue": value,
                "eventNotificationType": "HardWiredNotification", "component": component,
                "variable": {"name": variable}}

    def _status_payload_16(self, cp: int, connector: int, status: str, received: float,
                           fmt: Callable[[float], str]) -> dict:
        # The charger stamped the frame a little before the gateway received it (plus its clock error).
        stamp = received - self._rng.random() * 0.5 + self.skews[cp]
        error = self._rng.choice(FAULT_CODES) if status == "Faulted" else "NoError"
        payload = {"connectorId": connector, "errorCode": error, "status": status}
        if self.stamps[cp]:
            payload["timestamp"] = (self._fmt16 or fmt)(stamp)
        return payload

    @staticmethod
    def _corrupt(envelope: dict, what: str, rng: random.Random) -> bytes:
        """The kinds of damage a real gateway feed shows; each breaks the contract in exactly one way."""
        payload = dict(envelope["payload"])
        envelope = {**envelope, "payload": payload}
        if what == "not_json":
            text = orjson.dumps(envelope)
            return text[: rng.randrange(1, len(text) - 1)]
        if what == "not_utf8":
            return b"\xff\xfe" + orjson.dumps(envelope)
        if what == "bad_enum":
            if "status" in payload:
                payload["status"] = rng.choice(["charging", "Plugged", "Error"])
            elif "connectorStatus" in payload:
                payload["connectorStatus"] = rng.choice(["Charging", "occupied"])
            elif "reason" in payload:
                payload["reason"] = "Restarted"
            else:
                envelope["ocpp_version"] = "2.0"
        elif what == "missing_field":
            required = [k for k in ("connectorId", "status", "errorCode", "connectorStatus", "evseId",
                                    "chargePointVendor", "chargingStation") if k in payload]
            if required:
                del payload[rng.choice(required)]
            else:
                del envelope[rng.choice(["event_id", "received_at", "charge_point_id", "payload"])]
        elif what == "bad_uuid":
            envelope["event_id"] = rng.choice(["not-a-uuid", envelope["event_id"][:-4], "12345"])
        elif what == "bad_version":
            envelope["ocpp_version"] = rng.choice(["1.5", "2.2", "16"])
        return orjson.dumps(envelope)
