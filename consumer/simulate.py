"""`ocpp-consumer simulate`: publish a realistic gateway feed, for demos, load tests and the benchmark.

Two halves, kept apart on purpose:

* `Feed` generates the records (key, value) — a pure, seeded generator with no I/O, so the tests and the
  benchmark can reuse exactly the feed an operator publishes, and two runs with one seed are identical.
* `publish` puts them on Kafka fast: it fills aiokafka's per-partition batch builders itself (the per-message
  `send()` coroutine costs more than generating the record), so a laptop core reaches well over 100k events/s.

The feed is event-driven, not random noise: each charge point boots once, heartbeats every
`heartbeat_interval` seconds, and each connector walks a plausible session cycle with realistic dwell times.
Time is simulated (a backlog's `received_at` advances as the simulated fleet would produce it) unless a
`clock` is given: live mode passes the wall clock so `received_at` is the send time and latency can be measured.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson

# ---------------------------------------------------------------------------------------------- the fleet

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

BOOT, ANNOUNCE, TRANSITION, HEARTBEAT = range(4)


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


def _rfc3339_formatter() -> Callable[[float], str]:
    """Epoch seconds → '2026-11-24T19:00:00.123Z', caching the per-second part (strftime is the slow bit)."""
    cache: dict[int, str] = {}

    def fmt(epoch: float) -> str:
        sec = int(epoch)
        prefix = cache.get(sec)
        if prefix is None:
            if len(cache) > 8192:
                cache.clear()
            prefix = cache[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
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
    passes `lambda _: time.time()`. `counts` says what was produced so far, by kind: boot, status,
    heartbeat (the valid events) and duplicate, late, invalid (the defects); `invalid_kinds` splits invalid.
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
        # A wrong clock runs a fixed 1-12 hours ahead; most 1.6 chargers timestamp their StatusNotifications.
        self.skews = [rng.uniform(3600, 12 * 3600) if rng.random() < c.wrong_clocks else 0.0 for _ in self.ids]
        self.stamps = [v == "2.0.1" or rng.random() < 0.8 for v in self.versions]
        self.hardware = [self._hardware(rng) for _ in self.ids]
        # state[cp][connector], connector 0 being the charge point itself.
        self.state = [["Available"] * (c.connectors + 1) for _ in self.ids]

    @staticmethod
    def _hardware(rng: random.Random) -> tuple[str, str, str | None]:
        vendor, models = rng.choice(VENDORS)
        firmware = f"{rng.randint(1, 6)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}" if rng.random() < 0.9 else None
        return vendor, rng.choice(models), firmware

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        c, rng = self.config, self._rng
        fmt = _rfc3339_formatter()
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
                event = "boot"
                payload = self._boot_payload(cp, version)
                action = "BootNotification"
                # After booting, a charger reports every connector (0 = itself), then heartbeats.
                for n in range(c.connectors + 1):
                    seq += 1
                    heapq.heappush(schedule, (t + 0.05 + 0.05 * n + rng.random() * 0.02, seq, ANNOUNCE, cp, n))
                seq += 1
                heapq.heappush(schedule, (t + c.heartbeat_interval, seq, HEARTBEAT, cp, 0))
            elif kind == HEARTBEAT:
                event, action, payload = "heartbeat", "Heartbeat", {}
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
                if kind == TRANSITION and version == "2.0.1" and STATUS_201[previous] == STATUS_201[states[connector]]:
                    continue  # 2.0.1 only notifies a change of connector status
                event, action = "status", "StatusNotification"
                payload = self._status_payload(cp, connector, version, states[connector], received_at, fmt)

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
        return {"reason": "PowerUp", "chargingStation": station}

    def _status_payload(
        self, cp: int, connector: int, version: str, status: str, received: float, fmt: Callable[[float], str]
    ) -> dict:
        # The charger stamped the frame a little before the gateway received it (plus its clock error).
        stamp = received - self._rng.random() * 0.5 + self.skews[cp]
        if version == "1.6":
            error = self._rng.choice(FAULT_CODES) if status == "Faulted" else "NoError"
            payload = {"connectorId": connector, "errorCode": error, "status": status}
            if self.stamps[cp]:
                payload["timestamp"] = fmt(stamp)
            return payload
        # 2.0.1: connector n of this simulation is EVSE n with one connector; EVSE 0 is the station itself.
        return {"timestamp": fmt(stamp), "connectorStatus": STATUS_201[status], "evseId": connector,
                "connectorId": 1 if connector else 0}

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
            envelope["ocpp_version"] = rng.choice(["1.5", "2.1", "16"])
        return orjson.dumps(envelope)


# ---------------------------------------------------------------------------------------------- Kafka


async def ensure_topic(bootstrap: str, topic: str, partitions: int) -> bool:
    """Create the topic with `partitions` partitions unless it exists; True when it was created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic in await admin.list_topics():
            return False
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        except TopicAlreadyExistsError:
            return False
        return True
    finally:
        await admin.close()


async def publish(
    records: Iterator[tuple[bytes, bytes]],
    *,
    bootstrap: str,
    topic: str,
    count: int | None = None,
    rate: float | None = None,
    duration: float | None = None,
    compression: str | None = None,
    progress_seconds: float = 5.0,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Send records until `count` are sent or `duration` seconds pass; at `rate` per second, or flat out.

    Records are partitioned like the Java client (murmur2 of the key), so one charge point stays in one
    partition. Returns the number of records the broker acknowledged (all of them, or it raises).
    """
    from aiokafka import AIOKafkaProducer
    from aiokafka.partitioner import DefaultPartitioner

    if count is None and duration is None:
        raise ValueError("give a count or a duration")
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, compression_type=compression,
        linger_ms=5, max_batch_size=1_048_576, request_timeout_ms=60_000,
    )
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        partition_of: dict[bytes, int] = {}
        partitioner = DefaultPartitioner()
        builders: dict[int, object] = {}
        in_flight: list[asyncio.Future] = []

        async def submit(partition: int) -> None:
            builder = builders.pop(partition)
            in_flight.append(await producer.send_batch(builder, topic, partition=partition))

        started = last_report = time.monotonic()
        reported = sent = 0
        limit = count if count is not None else float("inf")
        deadline = started + duration if duration is not None else float("inf")
        while sent < limit:
            now = time.monotonic()
            if now >= deadline:
                break
            if rate:
                due = min(int(rate * (now - started)) + 1, limit) - sent
                if due <= 0:
                    await asyncio.sleep(min(0.002, deadline - now))
                    continue
            else:
                due = min(5000, limit - sent)
            for _ in range(int(due)):
                key, value = next(records)
                partition = partition_of.get(key)
                if partition is None:
                    partition = partition_of[key] = partitioner(key, partitions, partitions)
                builder = builders.get(partition)
                if builder is None:
                    builder = builders[partition] = producer.create_batch()
                if builder.append(key=key, value=value, timestamp=None) is None:
                    await submit(partition)
                    builder = builders[partition] = producer.create_batch()
                    builder.append(key=key, value=value, timestamp=None)
            sent += int(due)
            if rate:
                # Live mode: nothing waits in a half-full batch, so received_at ≈ the time it reaches Kafka.
                for partition in list(builders):
                    await submit(partition)
            else:
                await asyncio.sleep(0)  # let the sender run
            for future in [f for f in in_flight if f.done()]:
                future.result()  # raise a delivery failure now, not at the end
                in_flight.remove(future)
            now = time.monotonic()
            if progress and now - last_report >= progress_seconds:
                progress(f"sent {sent} records, {(sent - reported) / (now - last_report):,.0f}/s")
                last_report, reported = now, sent
        for partition in list(builders):
            await submit(partition)
        await asyncio.gather(*in_flight)
    finally:
        await producer.stop()
    return sent


# ---------------------------------------------------------------------------------------------- CLI


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1")
    return value


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not positive")
        return value

    return parse


def _rfc3339(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).timestamp()


def build_parser(settings) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ocpp-consumer simulate",
        description="Publish a simulated OCPP gateway feed to Kafka: flat out for --count records (a backlog, "
        "received_at in simulated time), or at --rate records/s for --duration seconds (live, received_at = "
        "send time).",
    )
    p.add_argument("--bootstrap", default=settings.kafka_bootstrap_servers, help="Kafka bootstrap servers")
    p.add_argument("--topic", default=settings.topics[0], help="topic to publish to (default: the first consumed)")
    p.add_argument("--partitions", type=_positive(int), default=1,
                   help="partitions to create the topic with if it does not exist (default 1)")
    p.add_argument("--charge-points", type=_positive(int), default=100, help="number of charge points")
    p.add_argument("--connectors", type=_positive(int), default=2, help="connectors per charge point")
    p.add_argument("--heartbeat-interval", type=_positive(float), default=60.0,
                   help="seconds between a charge point's heartbeats (simulated time)")
    p.add_argument("--ocpp201-fraction", type=_fraction, default=0.3, help="fraction of charge points on 2.0.1")
    p.add_argument("--duplicates", type=_fraction, default=0.0, help="fraction of events delivered twice")
    p.add_argument("--out-of-order", type=_fraction, default=0.0,
                   help="fraction of events held back and delivered up to a minute (simulated) later")
    p.add_argument("--wrong-clocks", type=_fraction, default=0.0,
                   help="fraction of charge points whose timestamps are hours in the future")
    p.add_argument("--invalid", type=_fraction, default=0.0,
                   help="fraction of records that are invalid (not JSON, bad enum, missing field, bad UUID, ...)")
    p.add_argument("--count", type=_positive(int), help="stop after this many records")
    p.add_argument("--rate", type=_positive(float), help="records per second (live mode); default: as fast as possible")
    p.add_argument("--duration", type=_positive(float), help="stop after this many seconds")
    p.add_argument("--seed", type=int, default=1, help="random seed; one seed, one feed")
    p.add_argument("--start", type=_rfc3339,
                   help="simulated time of the first event, RFC 3339 (backlog mode; default: now)")
    p.add_argument("--compression", choices=["none", "lz4", "gzip"], default="none",
                   help="producer compression (lz4 needs the cramjam package)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv: list[str], *, settings) -> int:
    parser = build_parser(settings)
    args = parser.parse_args(argv[1:] if argv[:1] == ["--"] else argv)
    if args.count is None and args.duration is None:
        parser.error("give --count, --duration, or both")
    if args.compression == "lz4":
        from aiokafka.codec import has_lz4

        if not has_lz4():
            parser.error("lz4 compression needs the cramjam package (pip install cramjam)")
    config = FeedConfig(
        charge_points=args.charge_points, connectors=args.connectors, ocpp201_fraction=args.ocpp201_fraction,
        heartbeat_interval=args.heartbeat_interval, duplicates=args.duplicates, out_of_order=args.out_of_order,
        wrong_clocks=args.wrong_clocks, invalid=args.invalid, seed=args.seed,
        start=args.start if args.start is not None else time.time(),
    )
    feed = Feed(config, clock=(lambda _: time.time()) if args.rate else None)
    progress = None if args.quiet else (lambda line: print(f"simulate: {line}", file=sys.stderr, flush=True))

    async def run() -> int:
        created = await ensure_topic(args.bootstrap, args.topic, args.partitions)
        if created and progress:
            progress(f"created topic {args.topic} with {args.partitions} partition(s)")
        return await publish(
            iter(feed), bootstrap=args.bootstrap, topic=args.topic, count=args.count, rate=args.rate,
            duration=args.duration, compression=None if args.compression == "none" else args.compression,
            progress=progress,
        )

    started = time.monotonic()
    sent = asyncio.run(run())
    elapsed = time.monotonic() - started
    kinds = " ".join(f"{k}={feed.counts[k]}" for k in ("boot", "status", "heartbeat", "duplicate", "late", "invalid"))
    print(f"published {sent} records to {args.topic} in {elapsed:.1f}s ({sent / elapsed:,.0f}/s): {kinds}")
    return 0
