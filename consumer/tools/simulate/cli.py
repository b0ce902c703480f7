"""`ocpp-consumer simulate`: parse the options, build the feed, publish it.

Where a backlog's simulated time lies matters to the consumer: a backlog published without --start ends at
about the moment it is published (see `backlog_start`), so no event claims to have reached the gateway after
Kafka stamped its record. Live mode (--rate) stamps received_at with the wall clock instead.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone

from consumer.tools.simulate.feed import PRECISIONS, Feed, FeedConfig
from consumer.tools.simulate.publish import ensure_topic, publish


def backlog_start(config: FeedConfig, *, count: int | None, seconds: float | None) -> tuple[int, int]:
    """Where a backlog must start for its simulated time to end now, and how many records it may send.

    Found by a dry pass, not estimated from the fleet's parameters: the feed is seeded, so generating the same
    records without publishing them says exactly how much simulated time they cover, boot storm, dwell times,
    defects and all (at about 200,000 records/s). With a count, the pass generates that many records, and the
    backlog ends within a second of now. With only a duration it generates for that long, and the number it
    reached becomes a cap on what is published: publishing generates every record too, and does more for each,
    so it sends no more than that in the same time. The span found then covers everything sent, but the backlog
    ends before now by the simulated time of the records the publisher did not get to (often half of them):
    never in the future, not as close to now as with a count.

    The start is now − that span, rounded down to a whole second. The dry pass also starts on a whole second,
    so both passes do the same floating-point arithmetic and make the same feed, shifted in time: where the dry
    pass stopped lands in the last second before now, the moment publishing begins.
    """
    feed = Feed(replace(config, start=math.floor(time.time())))
    records = iter(feed)
    limit = count if count is not None else math.inf
    deadline = time.monotonic() + seconds if count is None and seconds is not None else math.inf
    made = 0
    while made < limit:
        next(records)
        made += 1
        if made % 1000 == 0 and time.monotonic() >= deadline:
            break
    span = feed.now - feed.config.start
    return math.floor(time.time() - span), made


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
        "received_at in simulated time ending about now), or at --rate records/s for --duration seconds (live, "
        "received_at = send time).",
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
    p.add_argument("--ocpp21-fraction", type=_fraction, default=0.0,
                   help="fraction of charge points on 2.1 (drawn over the others; default 0)")
    p.add_argument("--two-connector-fraction", type=_fraction, default=0.0,
                   help="fraction of 2.x charge points whose EVSEs have two connectors (CCS and CHAdeMO: the plugged "
                   "one Occupied, the other Unavailable at the same instant); default 0")
    p.add_argument("--notify-event-fraction", type=_fraction, default=0.0,
                   help="fraction of 2.x charge points that report availability by NotifyEvent (AvailabilityState) "
                   "instead of StatusNotification; default 0")
    p.add_argument("--duplicates", type=_fraction, default=0.0, help="fraction of events delivered twice")
    p.add_argument("--out-of-order", type=_fraction, default=0.0,
                   help="fraction of events held back and delivered up to a minute (simulated) later")
    p.add_argument("--wrong-clocks", type=_fraction, default=0.0,
                   help="fraction of charge points whose timestamps are hours in the future")
    p.add_argument("--invalid", type=_fraction, default=0.0,
                   help="fraction of records that are invalid (not JSON, bad enum, missing field, bad UUID, ...)")
    p.add_argument("--timestamp-precision", choices=PRECISIONS, default="ms",
                   help="precision of every timestamp written (received_at and the payload's): ms, or s (whole "
                   "seconds, as many OCPP 1.6 chargers stamp); default ms")
    p.add_argument("--count", type=_positive(int), help="stop after this many records")
    p.add_argument("--rate", type=_positive(float), help="records per second (live mode); default: as fast as possible")
    p.add_argument("--duration", type=_positive(float),
                   help="stop after this many seconds (a backlog given only --duration and no --start first "
                   "generates for as long without publishing, to find where its simulated time must start; it "
                   "then ends before now, never after: give --count to end it at about now)")
    p.add_argument("--seed", type=int, default=1, help="random seed; one seed, one feed")
    p.add_argument("--start", type=_rfc3339,
                   help="simulated time of the first event, RFC 3339 (backlog mode; default: early enough for the "
                   "backlog to end about now)")
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
    progress = None if args.quiet else (lambda line: print(f"simulate: {line}", file=sys.stderr, flush=True))
    live = bool(args.rate)
    config = FeedConfig(
        charge_points=args.charge_points, connectors=args.connectors, ocpp201_fraction=args.ocpp201_fraction,
        heartbeat_interval=args.heartbeat_interval, duplicates=args.duplicates, out_of_order=args.out_of_order,
        wrong_clocks=args.wrong_clocks, invalid=args.invalid, seed=args.seed,
        timestamp_precision=args.timestamp_precision, ocpp21_fraction=args.ocpp21_fraction,
        two_connector_fraction=args.two_connector_fraction, notify_event_fraction=args.notify_event_fraction,
        start=args.start if args.start is not None else time.time(),
    )
    count = args.count
    if not live and args.start is None:
        if progress and count is None:
            progress(f"generating for {args.duration:g}s without publishing, to place the backlog in the past")
        start, count = backlog_start(config, count=args.count, seconds=args.duration)
        config = replace(config, start=start)
        if progress:
            progress(f"backlog of at most {count} records, simulated time from "
                     f"{datetime.fromtimestamp(start, timezone.utc):%Y-%m-%dT%H:%M:%SZ} to about now")
    feed = Feed(config, clock=(lambda _: time.time()) if live else None)

    from consumer.clients import kafka_security_options

    security = kafka_security_options(settings)

    async def run() -> int:
        created = await ensure_topic(args.bootstrap, args.topic, args.partitions, security=security)
        if created and progress:
            progress(f"created topic {args.topic} with {args.partitions} partition(s)")
        return await publish(
            iter(feed), bootstrap=args.bootstrap, topic=args.topic, count=count, rate=args.rate,
            duration=args.duration, compression=None if args.compression == "none" else args.compression,
            progress=progress, security=security,
        )

    started = time.monotonic()
    sent = asyncio.run(run())
    elapsed = time.monotonic() - started
    kinds = " ".join(f"{k}={feed.counts[k]}"
                     for k in ("boot", "status", "notify", "heartbeat", "duplicate", "late", "invalid"))
    print(f"published {sent} records to {args.topic} in {elapsed:.1f}s ({sent / elapsed:,.0f}/s): {kinds}")
    return 0
