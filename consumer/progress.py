"""How far a consumer group has come: its committed offsets, read the way the demo, the benchmark and the
tests all need it."""

from __future__ import annotations

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
