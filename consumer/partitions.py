"""The partitions a replica owns and how far each is committed: the source of the lag gauges and of /readyz's
stall check.

Lag is the records between the first offset not yet committed and the partition's end (its last stable offset,
as the consumer reads committed transactions only). It is measured after every commit and, while a batch waits
on the database, from the brokers' end offsets every LAG_REFRESH_SECONDS: a dashboard must see a stall grow,
not keep the last good value.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError

from consumer.metrics import Metrics
from consumer.probes import Probes
from consumer.retry import TRANSIENT_KAFKA_ERRORS

log = logging.getLogger("consumer")

LAG_REFRESH_SECONDS = 5.0
# position() answers at once for a partition with a valid position; one being reset waits for the broker.
POSITION_TIMEOUT_SECONDS = 1.0


class Partitions:
    def __init__(self, metrics: Metrics, probes: Probes) -> None:
        self.metrics, self.probes = metrics, probes
        self.owned: set[TopicPartition] = set()
        self._uncommitted_from: dict[TopicPartition, int] = {}
        self._lags: dict[TopicPartition, int] = {}
        self._refreshed = 0.0
        # Counts the revocations begun: a batch fetched under an older count must not be started (Worker._loop).
        self.generation = 0

    def assigned(self, partitions: set[TopicPartition]) -> None:
        self.owned = set(partitions)
        self._report_owned()

    def revoked(self, partitions: set[TopicPartition]) -> None:
        """A revoked partition's gauges go: its new owner reports it, and a stale value here would mislead."""
        self.owned -= set(partitions)
        self.metrics.revocations.inc(len(partitions))
        for tp in partitions:
            self._uncommitted_from.pop(tp, None)
            self._lags.pop(tp, None)
            self.metrics.forget_partition(tp.topic, tp.partition)
        self._report_owned()

    def fetched(self, batch: dict) -> None:
        """The first record fetched of a partition is where its uncommitted records begin."""
        for tp, records in batch.items():
            if records:
                self._uncommitted_from.setdefault(tp, records[0].offset)

    def committed(self, offsets: dict[TopicPartition, int], consumer: AIOKafkaConsumer) -> None:
        self.probes.committed()
        for tp, offset in offsets.items():
            # A commit awaited across a rebalance can land for a partition now gone: its gauges were removed
            # with it, and are its new owner's to report.
            if tp in self.owned:
                self.metrics.count_committed(tp.topic, tp.partition, offset)
                self._uncommitted_from[tp] = offset
        self._report_lag({tp: consumer.last_stable_offset(tp) for tp in offsets if tp in self.owned})

    async def positions_ahead(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
        """Owned partitions whose fetch position is past their last commit, for when no batch is in hand.

        Then every record fetched was stored, and a position further on means the partition ended in records
        that getmany never returns (a transaction's commit or abort marker). Committing the position keeps lag,
        ours and every Kafka lag exporter's, from reading 1 forever on an idle partition; it also re-commits a
        partition whose last commit was refused by a rebalance.
        """
        ahead = {}
        for tp in list(self.owned):  # the listener can revoke partitions during each wait below
            if tp not in self._uncommitted_from:
                continue
            try:
                position = await asyncio.wait_for(consumer.position(tp), timeout=POSITION_TIMEOUT_SECONDS)
            # IllegalStateError: the consumer lost the partition before the listener told us, or while we waited.
            except (asyncio.TimeoutError, IllegalStateError, *TRANSIENT_KAFKA_ERRORS):
                continue
            # Read after the wait: a partition revoked meanwhile is gone from it, and its new owner's to commit.
            uncommitted_from = self._uncommitted_from.get(tp)
            if uncommitted_from is not None and position > uncommitted_from:
                ahead[tp] = position
        return ahead

    async def refresh_lag(self, consumer: AIOKafkaConsumer) -> None:
        """At most every LAG_REFRESH_SECONDS, ask the brokers for the end offsets (bounded; skipped if away)."""
        if time.monotonic() - self._refreshed < LAG_REFRESH_SECONDS:
            return
        self._refreshed = time.monotonic()
        partitions = [tp for tp in self.owned if tp in self._uncommitted_from]
        if not partitions:
            return
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(partitions), timeout=LAG_REFRESH_SECONDS)
        except (asyncio.TimeoutError, *TRANSIENT_KAFKA_ERRORS):
            return  # the broker is away too; the next refresh tries again
        self._report_lag(ends)

    def _report_lag(self, ends: dict[TopicPartition, int | None]) -> None:
        for tp, end in ends.items():
            if end is not None and end >= 0 and tp in self._uncommitted_from:
                self._lags[tp] = max(end - self._uncommitted_from[tp], 0)
                self.metrics.set_lag(tp.topic, tp.partition, self._lags[tp])
        self.probes.lag_measured(sum(self._lags.values()))

    def _report_owned(self) -> None:
        self.probes.partitions = len(self.owned)
        self.metrics.assigned_partitions.set(len(self.owned))

    def listener(self, idle: asyncio.Event, *, revoke_wait_seconds: float) -> ConsumerRebalanceListener:
        """The rebalance listener that keeps this view current; `idle` is set while no batch is in flight."""
        return _Rebalance(self, idle, revoke_wait_seconds)


def _names(partitions: set[TopicPartition]) -> list[str]:
    return sorted(f"{tp.topic}:{tp.partition}" for tp in partitions)


class _Rebalance(ConsumerRebalanceListener):
    """aiokafka awaits these before the group moves on."""

    def __init__(self, partitions: Partitions, idle: asyncio.Event, revoke_wait_seconds: float) -> None:
        self.partitions, self.idle, self.revoke_wait = partitions, idle, revoke_wait_seconds

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Let the batch in flight finish and commit while the partitions are still ours, within a bound.

        If it cannot finish in time (the database is away), the partitions are dropped from our view and the
        batch's offsets for them are never committed; their new owner replays them, which is harmless.

        The generation moves first: the next batch, fetched and decoded while this one was in flight, must not
        start once it finishes, or the revocation would go on with that one in flight instead — its offsets not
        committed, so it would be processed twice (its dead letters published twice).
        """
        if revoked:  # the first join revokes nothing: no batch can have been fetched
            self.partitions.generation += 1
        try:
            await asyncio.wait_for(self.idle.wait(), timeout=self.revoke_wait)
        except asyncio.TimeoutError:
            log.warning("partitions revoked while a batch was in flight; its offsets there stay uncommitted")
        self.partitions.revoked(revoked)
        log.info("partitions revoked", extra={"partitions": _names(revoked)})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.partitions.assigned(assigned)
        log.info("partitions assigned", extra={"partitions": _names(assigned)})
