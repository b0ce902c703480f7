"""Prometheus metrics and the operator's HTTP endpoints: /metrics, /healthz, /readyz.

Each worker owns its registry, so several workers in one process (the tests do that) keep separate counts.
The HTTP server is a few lines over asyncio streams: three read-only GET endpoints do not justify a web
framework, and it runs on the worker's own event loop, so /healthz going stale really means the loop is stuck.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "ocpp_events", "Records consumed, by action and outcome (written, ignored, dead_lettered).",
            ["action", "outcome"], registry=r,
        )
        self.dead_letters = Counter(
            "ocpp_dead_letters", "Records sent to the dead-letter topic, by rejection kind.", ["kind"], registry=r
        )
        self.clock_skew_corrections = Counter(
            "ocpp_clock_skew_corrections",
            "Events whose charger timestamp was too far ahead of received_at and was replaced by it.",
            registry=r,
        )
        self.batch_size = Histogram(
            "ocpp_batch_records", "Records per processed batch.",
            buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000), registry=r,
        )
        self.batch_write_seconds = Histogram(
            "ocpp_batch_write_seconds", "Time to write one batch to PostgreSQL, retries included.",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.commit_latency = Histogram(
            "ocpp_event_commit_latency_seconds",
            "Per written event: from the gateway's received_at to the batch's database commit (freshness).",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.database_retries = Counter(
            "ocpp_database_retries", "Database or broker calls retried after a transient failure.",
            ["operation"], registry=r,
        )
        self.commit_failures = Counter(
            "ocpp_offset_commit_failures", "Offset commits refused because the group rebalanced.", registry=r
        )
        self.lag = Gauge(
            "ocpp_partition_lag", "Records behind the partition's high watermark after the last commit.",
            ["topic", "partition"], registry=r,
        )
        self.committed_offset = Gauge(
            "ocpp_committed_offset", "Last offset committed, per partition.", ["topic", "partition"], registry=r
        )
        self.assigned_partitions = Gauge(
            "ocpp_assigned_partitions", "Partitions this replica owns.", registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


Probe = Callable[[], Awaitable[tuple[bool, str]]]


async def serve_http(port: int, metrics: Metrics, *, healthy: Probe, ready: Probe) -> asyncio.Server:
    """Serve GET /metrics, /healthz and /readyz on 0.0.0.0:port (200 when the probe says yes, else 503)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (b"\r\n", b"\n", b""):
                pass  # headers are not needed
            parts = request_line.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) >= 2 else ""
            if path == "/metrics":
                status, body, ctype = 200, metrics.render(), CONTENT_TYPE_LATEST
            elif path in ("/healthz", "/readyz"):
                ok, reason = await (healthy() if path == "/healthz" else ready())
                status, body, ctype = (200 if ok else 503), (reason + "\n").encode(), "text/plain; charset=utf-8"
            else:
                status, body, ctype = 404, b"not found\n", "text/plain; charset=utf-8"
            phrase = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            writer.write(
                f"HTTP/1.1 {status} {phrase}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode() + body
            )
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host="0.0.0.0", port=port)
    log.info("serving /metrics, /healthz and /readyz", extra={"port": port})
    return server
