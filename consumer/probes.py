"""The operator's HTTP endpoints: /metrics, /healthz, /readyz.

A few lines over asyncio streams: three read-only GET endpoints do not justify a web framework, and it runs on
the worker's own event loop, so /healthz going stale really means the loop is stuck.
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
from prometheus_client import CONTENT_TYPE_LATEST

from consumer.metrics import Metrics

log = logging.getLogger(__name__)

# A loop that has not come round for this long (or ten fetch waits, if longer) is stuck: /healthz says 503.
STUCK_AFTER_SECONDS = 60.0
# /readyz asks the database for `SELECT 1`; a probe must answer well within Kubernetes' default 1 s… 10 s budget.
READY_DATABASE_TIMEOUT_SECONDS = 2.0
# A client that opens the socket and sends nothing must not hold a handler forever.
REQUEST_READ_TIMEOUT_SECONDS = 5.0


class Probes:
    """What /healthz and /readyz say, from the facts the worker reports as it runs."""

    def __init__(self, *, fetch_wait_seconds: float, stall_timeout_seconds: float) -> None:
        self.stuck_after = max(STUCK_AFTER_SECONDS, fetch_wait_seconds * 10)
        self.stall_timeout = stall_timeout_seconds
        self.last_loop = self.last_progress = time.monotonic()
        self.partitions = 0
        self.lag = 0
        self.pool: asyncpg.Pool | None = None

    def loop_ran(self) -> None:
        self.last_loop = time.monotonic()

    def committed(self) -> None:
        self.last_progress = time.monotonic()

    def lag_measured(self, lag: int) -> None:
        """A replica with nothing to do is not stalled: the stall clock starts when lag appears."""
        if not self.lag:
            self.last_progress = time.monotonic()
        self.lag = lag

    async def healthy(self) -> tuple[bool, str]:
        stale = time.monotonic() - self.last_loop
        return (stale < self.stuck_after, f"loop last ran {stale:.1f}s ago")

    async def ready(self) -> tuple[bool, str]:
        if not self.partitions:
            return False, "no partitions assigned"
        if self.pool is None:
            return False, "no database pool yet"
        stalled = time.monotonic() - self.last_progress
        if self.lag and stalled > self.stall_timeout:
            return False, f"stalled: {self.lag} record(s) behind and nothing committed for {stalled:.0f}s"
        timeout = READY_DATABASE_TIMEOUT_SECONDS
        try:
            async with self.pool.acquire(timeout=timeout) as conn:
                await conn.fetchval("SELECT 1", timeout=timeout)
        except Exception as exc:  # a probe reports any failure as "not ready"; it does not handle it
            return False, f"database unreachable: {type(exc).__name__}"
        return True, f"{self.partitions} partition(s) assigned, database reachable"



async def serve_http(port: int, metrics: Metrics, probes: Probes) -> asyncio.Server:
    """Serve GET /metrics, /healthz and /readyz on 0.0.0.0:port (200 when the probe says yes, else 503)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=REQUEST_READ_TIMEOUT_SECONDS)
            while await asyncio.wait_for(reader.readline(), timeout=REQUEST_READ_TIMEOUT_SECONDS) not in (
                b"\r\n", b"\n", b""
            ):
                pass  # headers are not needed
            parts = request_line.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) >= 2 else ""
            if path == "/metrics":
                status, body, ctype = 200, metrics.render(), CONTENT_TYPE_LATEST
            elif path in ("/healthz", "/readyz"):
                ok, reason = await (probes.healthy() if path == "/healthz" else probes.ready())
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
