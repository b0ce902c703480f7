"""What only the demo, the benchmark and the tests use, kept in one place so that each reads progress and
cleans up the same way, and outside the service's run path.

* `committed_offsets`: how far a consumer group has come, read the way all three need it.
* `drop_database`: the tests and the benchmarks both create scratch databases and must drop them.
"""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError, GroupLoadInProgressError


async def committed_offsets(admin: AIOKafkaAdminClient, group: str) -> dict[TopicPartition, int]:
    """The group's committed offsets; empty while the group has none, or no coordinator yet.

    On a new broker the group coordinator exists only once `__consumer_offsets` does, which the first group to
    join creates; until then the broker answers "coordinator not available", which means nothing is committed.
    """
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except (GroupCoordinatorNotAvailableError, GroupLoadInProgressError):
        return {}
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def drop_database(admin: asyncpg.Connection, name: str, *, timeout: float = 60) -> None:
    """Drop a database even while something still uses it, retrying while autovacuum holds it.

    Dropping right after heavy writes is where it goes wrong: WITH (FORCE) ends the connections a failed run may
    have leaked, but not an autovacuum worker (a superuser's process) when the role is not a superuser; then the
    drop fails, and the worker is done in moments.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectInUseError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
