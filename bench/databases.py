"""Scratch databases for the tests and the benchmarks, which both create their own and must drop them.

Dropping right after heavy writes is where it goes wrong: WITH (FORCE) ends the connections a failed run may
have leaked, but not an autovacuum worker (a superuser's process) when the role is not a superuser; then the
drop fails, and the worker is done in moments. One retrying drop serves both.
"""

from __future__ import annotations

import asyncio

import asyncpg


async def drop_database(admin: asyncpg.Connection, name: str, *, timeout: float = 60) -> None:
    """Drop a database even while something still uses it, retrying while autovacuum holds it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectInUseError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
