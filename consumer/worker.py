"""The consumer loop: one replica's membership in the group, its batches, its commits. Read `Worker._loop` and
`Worker._process` top to bottom to follow a record:

    fetch → decode (consumer.decode) → write (consumer.store: coalesce, one transaction)
          → dead-letter the rejects (consumer.deadletter) → commit offsets → count (consumer.metrics)

Delivery is at least once: an offset is committed only after everything before it reached PostgreSQL or the
dead-letter topic. A crash anywhere replays at most the batch in flight, and the state SQL is idempotent and
order-independent, so a replay, a rebalance or a second replica writing the same events changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from consumer import clients, deadletter, store
from consumer.decode import Decoded, decode_batch
from consumer.metrics import Metrics
from consumer.partitions import Partitions
from consumer.migrate import pending_migrations
from consumer.probes import Probes, serve_http
from consumer.retry import (
    TRANSIENT_KAFKA_ERRORS,
    Retrier,
    ShutdownAbandon,
    is_transient_database_error,
    is_transient_kafka_error,
)
from consumer.settings import Settings

log = logging.getLogger("consumer")

# getmany ignores its timeout while a rebalance is in progress; past the fetch wait plus this, the loop gives up
# on the fetch and comes round (to see a stop request) instead of waiting for a coordinator that may be away.
FETCH_GRACE_SECONDS = 5.0
# While a batch waits for the database, the loop polls with partitions paused this often, well inside
# max.poll.interval.ms, so the group does not count the replica as dead.
KEEPALIVE_SECONDS = 1.0
PAUSED_POLL_MS = 200
# Revoked partitions wait this long (at most the shutdown timeout) for the batch in flight to commit.
REVOKE_WAIT_SECONDS = 10.0


def _first_offsets(batch: dict) -> dict[TopicPartition, int]:
    """The first offset fetched of each partition in a batch (TopicPartition → records)."""
    return {tp: records[0].offset for tp, records in batch.items() if records}


@dataclass
class _NextBatch:
    """The batch fetched and decoded while the one before it is written, still taking records."""

    decoded: Decoded
    first_offsets: dict[TopicPartition, int]  # where a rewind sends each partition back to
    generation: int  # the revocations begun when it was fetched
    open: bool = True


class PendingMigrations(Exception):
    """The database schema is behind this code; `ocpp-consumer migrate` must run first."""


class Unreachable(Exception):
    """Start-up could not reach PostgreSQL, Kafka or the dead-letter topic (not listening, refused the login, ...)."""


class Worker:
    """One replica: owns a Kafka consumer, a dead-letter producer and a PostgreSQL pool for its lifetime."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._presence_window = timedelta(seconds=settings.presence_window_seconds)
        self.metrics = Metrics()
        self.totals = self.metrics.totals
        self.probes = Probes(fetch_wait_seconds=settings.batch_max_wait_ms / 1000,
                             stall_timeout_seconds=settings.stall_timeout_seconds)
        self._retry = Retrier(
            max_wait_seconds=settings.retry_max_seconds, on_retry=self.metrics.count_retry,
            deadline=lambda: self._shutdown_deadline, waiting=self.probes.loop_ran,
        )
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()  # set while no batch is in flight
        self._idle.set()
        self._shutdown_deadline: float | None = None
        self._abandoned = False  # a batch was left unfinished at shutdown
        self._started = False  # connected and consuming
        self._starting: asyncio.Future | None = None
        self._partitions = Partitions(self.metrics, self.probes)
        self._consumer = self._producer = self._pool = None

    def stop(self) -> None:
        """Ask the worker to finish the batch in hand, commit it and leave (what SIGTERM and SIGINT do).

        Before it consumes there is nothing in hand: start-up is cancelled at once, even mid-connect.
        """
        if not self._stopping.is_set():
            grace = self.settings.shutdown_timeout_seconds if self._started else 0
            self._shutdown_deadline = time.monotonic() + grace
            self._stopping.set()
            if self._starting is not None:
                self._starting.cancel()

    async def run(self) -> None:
        """Consume until `stop()`; always leave the group and close connections, whatever happened."""
        http = None
        try:
            if self.settings.metrics_port:
                http = await serve_http(self.settings.metrics_port, self.metrics, self.probes)
            self._starting = asyncio.ensure_future(self._start())
            try:
                await self._starting
            except asyncio.CancelledError:
                if not self._stopping.is_set():
                    raise  # cancelled from outside, not by stop()
                log.info("stopped during start-up")
                return
            finally:
                self._starting = None
            self._started = True
            await self._loop()
        except ShutdownAbandon:
            self._abandoned = True
            if self._started:
                log.warning("shutdown deadline passed while waiting for the database or broker; "
                            "the batch in hand stays uncommitted and will be replayed")
        finally:
            await self._close()
            if http is not None:
                http.close()
            if self._started:  # a start-up failure has its own line; a summary of nothing would only bury it
                log.info("stopped", extra=self.metrics.summary())

    async def _start(self) -> None:
        """Connect, refuse to run on a schema behind this code, then join the group."""
        s = self.settings
        self._pool = await self._connect(f"PostgreSQL at {clients.describe_database(s)}", "connect_database",
                                         is_transient_database_error, partial(clients.create_pool, s))
        self.probes.pool = self._pool
        async with self._pool.acquire() as conn:
            pending = await pending_migrations(conn)
        if pending:
            raise PendingMigrations(
                f"the database has {len(pending)} pending migration(s) ({', '.join(pending)}); "
                "run `ocpp-consumer migrate` first"
            )
        self._producer = clients.create_producer(s)
        wait = min(REVOKE_WAIT_SECONDS, s.shutdown_timeout_seconds)
        self._consumer = clients.create_consumer(s, self._partitions.listener(self._idle, revoke_wait_seconds=wait))
        kafka = f"Kafka at {s.kafka_bootstrap_servers}"
        # Once, before either client: aiokafka reports a wrong password or CA as "Unable to bootstrap", which
        # would be waited out; the check tells those (fatal) from a broker that is away.
        await self._connect(kafka, "start_kafka", is_transient_kafka_error, partial(clients.check_kafka_access, s))
        await self._connect(kafka, "start_kafka", is_transient_kafka_error, self._producer.start)
        await self._connect(kafka, "start_kafka", is_transient_kafka_error, self._consumer.start)
        try:
            await deadletter.check_topic(self._producer, s.dlq_topic, timeout=min(s.startup_timeout_seconds, 30))
        except LookupError as exc:
            raise Unreachable(str(exc)) from exc
        log.info("consuming", extra={"topics": s.topics, "group_id": s.kafka_group_id, "dlq_topic": s.dlq_topic})

    async def _connect(self, server: str, operation: str, is_transient, call):
        """Wait out a dependency that is starting, for at most OCPP_STARTUP_TIMEOUT_SECONDS; then, or on an error
        that waiting cannot fix, raise Unreachable naming the server and the cause."""
        try:
            return await self._retry(operation, is_transient, call, give_up_after=self.settings.startup_timeout_seconds)
        except ShutdownAbandon:
            raise
        except Exception as exc:
            raise Unreachable(f"cannot reach {server}: {type(exc).__name__}: {exc}") from exc

    async def _close(self) -> None:
        # Connections are idle here, unless a batch was abandoned on a hung database: do not wait on those.
        await clients.close(self._consumer, self._producer, self._pool, wait_for_database=not self._abandoned)

    async def _loop(self) -> None:
        """Fetch and decode batch N+1 while batch N is being written, filling it with what arrives until N is
        done; process batches strictly one after another.

        Decoding is Python's work and writing is mostly PostgreSQL's, so overlapping them uses both cores.
        At most one batch is in flight and one more decoded, so memory stays bounded; offsets are still
        committed in order, each batch's only after its own write.
        """
        in_flight: asyncio.Task | None = None
        try:
            while not self._stopping.is_set():
                self.probes.loop_ran()
                generation = self._partitions.generation
                batch = await self._retry("fetch", is_transient_kafka_error, self._fetch)
                if not batch:
                    if in_flight is not None and in_flight.done():
                        in_flight = in_flight.result()  # re-raises what the batch failed with
                    if in_flight is None:  # idle, everything stored: commit what lies past the last record
                        await self._commit(await self._partitions.positions_ahead(self._consumer))
                    continue
                self._partitions.fetched(batch)
                first_offsets = _first_offsets(batch)
                decoded = await self._decode(batch)
                del batch  # decoded keeps what it needs (rejects keep their records): free the rest meanwhile
                if in_flight is not None:  # this batch takes in what arrives while that one is written
                    next_batch = _NextBatch(decoded, first_offsets, generation)
                    in_flight = await self._wait_keeping_membership(in_flight, next_batch)  # None, or it raises
                if self._partitions.generation != generation:
                    # A revocation began since this batch was fetched: it waits for the batch in flight only, and
                    # this one's offsets could not be committed. Fetch it again after the rebalance, as whoever
                    # then owns its partitions will.
                    self._rewind(first_offsets)
                    log.info("a batch fetched before a rebalance is fetched again after it",
                             extra={"partitions": sorted(f"{tp.topic}:{tp.partition}" for tp in first_offsets)})
                    continue
                self._idle.clear()
                in_flight = asyncio.create_task(self._process(decoded))
                in_flight.add_done_callback(lambda _: self._idle.set())
            if in_flight is not None:
                await self._wait_keeping_membership(in_flight)
        except BaseException:
            if in_flight is not None and not in_flight.done():
                in_flight.cancel()  # its offsets stay uncommitted: the batch is replayed, harmlessly
            raise

    async def _decode(self, batch: dict) -> Decoded:
        s = self.settings
        return await decode_batch(
            batch, max_clock_skew_seconds=s.max_clock_skew_seconds,
            max_delivery_delay_seconds=s.max_delivery_delay_seconds, max_record_bytes=s.max_record_bytes,
        )

    def _rewind(self, first_offsets: dict[TopicPartition, int]) -> None:
        """Fetch these partitions again from these offsets, those still assigned: records returned but not to be
        processed now, so that none of them is skipped."""
        for tp, offset in first_offsets.items():
            try:
                self._consumer.seek(tp, offset)
            except IllegalStateError:  # no longer assigned: its new owner starts from the last commit
                continue

    async def _process(self, decoded: Decoded) -> None:
        """Write the state, dead-letter the rejects, commit, count: nothing is committed before it is stored."""
        started = time.monotonic()
        written = await store.write_events(
            self._pool, decoded.events, attempt=partial(self._retry, "write", is_transient_database_error),
            presence_window=self._presence_window,
        )
        refused = written.refused
        if written.history_pruned:
            self.metrics.history_pruned.inc(written.history_pruned)
        written_at = datetime.now(timezone.utc)
        self.metrics.batch_write_seconds.observe(time.monotonic() - started)
        rejects = decoded.rejects + [(record, rejection) for record, _, rejection in refused]
        await self._retry("dead_letter", is_transient_kafka_error,
                          partial(deadletter.send, self._producer, self.settings.dlq_topic, rejects))
        await self._commit(decoded.offsets)
        self.metrics.count_batch(decoded, refused, written_at=written_at)

    async def _fetch(self) -> dict:
        """The next batch (TopicPartition → records), or nothing after a bounded wait.

        Cancelling the wait is safe: records are taken from aiokafka's buffer only once it is over.
        """
        s = self.settings
        try:
            return await asyncio.wait_for(
                self._consumer.getmany(timeout_ms=s.batch_max_wait_ms, max_records=s.batch_max_records),
                timeout=s.batch_max_wait_ms / 1000 + FETCH_GRACE_SECONDS,
            )
        except asyncio.TimeoutError:
            return {}

    async def _wait_keeping_membership(self, task: asyncio.Task, filling: _NextBatch | None = None) -> None:
        """Wait for the batch in flight, polling meanwhile, so that the group keeps this replica.

        The group coordinator counts a consumer that stops polling for max.poll.interval.ms as dead. While the
        next batch has room, the polls fetch into it: an event that arrives during a write goes out with the next
        batch, not the one after it (at a live rate an event waits at most two writes, not three), and in a
        catch-up the next batch is fuller. Once it is full, by records or by bytes (or a revocation or a stop has
        begun), the polls pause every partition: membership is kept and no more records pile up in memory.
        """
        chores_at = time.monotonic() + KEEPALIVE_SECONDS
        while True:
            wait = KEEPALIVE_SECONDS
            if self._shutdown_deadline is not None:
                wait = min(wait, max(self._shutdown_deadline - time.monotonic(), 0.01))
            fetching = filling is not None and self._has_room(filling)
            if fetching:
                await self._fetch_into(filling, task, timeout=wait)
            else:
                await asyncio.wait({task}, timeout=wait)
            if task.done():
                return task.result()
            try:
                # A statement can hang longer than the shutdown allows (a lock, a dead peer): the batch is
                # abandoned uncommitted rather than holding SIGTERM past OCPP_SHUTDOWN_TIMEOUT_SECONDS.
                self._retry.check_deadline()
            except ShutdownAbandon:
                task.cancel()
                raise
            self.probes.loop_ran()
            if fetching and time.monotonic() < chores_at:
                continue  # records came in; the lag is refreshed once a second, as while paused
            if not fetching:
                await self._poll_paused()
            await self._partitions.refresh_lag(self._consumer)
            chores_at = time.monotonic() + KEEPALIVE_SECONDS

    def _has_room(self, batch: _NextBatch) -> bool:
        """Whether the next batch may still take records: not full (by records, or by bytes as one fetch is),
        and no revocation or stop begun since it was fetched (it will be fetched again after the rebalance, or
        the replica leaves)."""
        s = self.settings
        return (batch.open and batch.decoded.records < s.batch_max_records and batch.decoded.size < s.batch_max_bytes
                and batch.generation == self._partitions.generation and not self._stopping.is_set())

    async def _fetch_into(self, batch: _NextBatch, writing: asyncio.Task, *, timeout: float) -> None:
        """Fetch into the next batch what arrives before the write in flight is done (or `timeout` passes)."""
        fetch = asyncio.ensure_future(self._consumer.getmany(
            timeout_ms=int(timeout * 1000), max_records=self.settings.batch_max_records - batch.decoded.records))
        try:
            await asyncio.wait({fetch, writing}, timeout=timeout + FETCH_GRACE_SECONDS,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when the worker itself is cancelled: no fetch left running behind it
            fetched = fetch.done()
            if not fetched:
                fetch.cancel()  # safe: getmany takes records from aiokafka's buffer only as it returns
        if not fetched:
            return
        try:
            more = fetch.result()
        except TRANSIENT_KAFKA_ERRORS:
            batch.open = False  # the main fetch waits it out, after this write
            return
        if more:
            self._partitions.fetched(more)
            for tp, offset in _first_offsets(more).items():
                batch.first_offsets.setdefault(tp, offset)  # a rewind goes back to the batch's first record
            batch.decoded.extend(await self._decode(more))

    async def _poll_paused(self) -> None:
        """Poll with every partition paused: membership is kept, nothing is fetched.

        Bounded, as the main fetch is: getmany ignores its timeout while a rebalance is in progress.
        """
        consumer = self._consumer
        paused = set(self._partitions.owned)
        consumer.pause(*paused)
        try:
            returned = await asyncio.wait_for(consumer.getmany(timeout_ms=PAUSED_POLL_MS),
                                              timeout=PAUSED_POLL_MS / 1000 + FETCH_GRACE_SECONDS)
        except (asyncio.TimeoutError, *TRANSIENT_KAFKA_ERRORS):
            await asyncio.sleep(PAUSED_POLL_MS / 1000)
            return
        finally:
            consumer.resume(*(paused & consumer.assignment()))
        # A partition assigned during the poll was not paused: its records are fetched again later.
        self._rewind(_first_offsets(returned))

    async def _commit(self, next_offsets: dict[TopicPartition, int]) -> None:
        """Commit the next offset of every partition in the batch that this replica still owns."""
        offsets = {tp: offset for tp, offset in next_offsets.items() if tp in self._partitions.owned}
        if not offsets:
            return
        try:
            await self._retry("commit", is_transient_kafka_error, partial(self._consumer.commit, offsets))
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced under us: the partitions' new owner replays from the last commit, and
            # replaying is harmless. Crashing here would only add a second rebalance.
            self.metrics.count_commit_failure()
            log.warning("offset commit refused after a rebalance; the new owner will replay", extra={"error": str(exc)})
            return
        self._partitions.committed(offsets, self._consumer)
