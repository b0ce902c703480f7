"""What the service tests share: the oracle's view of records and tables, a worker run in the test's own
event loop, and a replica run as the operator runs it (a real `python -m consumer run` process)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from consumer.decode import decode
from consumer.worker import Worker
from schemas.events import Rejection
from tests import oracle

ROOT = Path(__file__).resolve().parent.parent


def expected_from(records) -> tuple[dict, dict]:
    """What the oracle says the tables must hold after these records, whatever order they arrive in."""
    events = [decode(value, key) for key, value in records]
    return oracle.expected_tables([e for e in events if not isinstance(e, Rejection)])  # Ignored ones count too


async def tables(dsn: str) -> tuple[dict, dict]:
    conn = await asyncpg.connect(dsn)
    try:
        return await oracle.fetch_tables(conn)
    finally:
        await conn.close()


class TableLock:
    """An exclusive lock on `charge_point`, as a long DBA operation takes: every write waits until `release()`,
    while the database itself keeps answering (so probes and the pool see it up)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    async def __aenter__(self) -> TableLock:
        self._conn = await asyncpg.connect(self.dsn)
        self._tx = self._conn.transaction()
        await self._tx.start()
        await self._conn.execute("LOCK TABLE charge_point IN ACCESS EXCLUSIVE MODE")
        return self

    async def release(self) -> None:
        if self._tx is not None:
            await self._tx.rollback()
            self._tx = None

    async def __aexit__(self, *exc) -> None:
        try:
            await self.release()
        finally:
            await self._conn.close()


@contextlib.asynccontextmanager
async def running(worker: Worker):
    """Run the worker for the block; stop it (as SIGTERM does) and wait for it at the end."""
    task = asyncio.create_task(worker.run())
    try:
        yield task
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=60)


class Replica:
    """One `python -m consumer run` process with its stderr (the JSON log) captured to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "consumer", "run"], env=env, cwd=ROOT, stdout=self._log, stderr=self._log
        )

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    async def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if self.process.poll() is None:
            self.process.kill()
            raise AssertionError(f"replica did not exit within {timeout}s; log:\n{self.log_path.read_text()[-3000:]}")
        self._log.close()
        return self.process.returncode

    def log_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.startswith("{")]
