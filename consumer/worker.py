"""The consumer service. Read `Worker._loop`, `_decode` and `_store` top to bottom to follow a batch:

    fetch → decode → coalesce → write in one transaction → dead-letter the rejects → commit offsets

Delivery is at least once: an offset is committed only after everything before it reached PostgreSQL or the
dead-letter topic. A crash anywhere replays at most the batch in flight, and the state SQL is idempotent and
order-independent, so a replay, a rebalance or a second replica writing the same events changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, MessageSizeTooLargeError
from aiokafka.helpers import create_ssl_context
from aiokafka.structs import ConsumerRecord

from consumer import store
from consumer.coalesce import coalesce
from consumer.deadletter import dead_letter
from consumer.decode import decode
from consumer.logs import configure_logging
from consumer.metrics import Metrics, serve_http
from consumer.migrate import pending_migrations
from consumer.retry import (
    DATA_ERRORS,
    TRANSIENT_KAFKA_ERRORS,
    is_transient_database_error,
    is_transient_kafka_error,
    retrying,
)
from consumer.settings import Settings
from schemas.events import Ignored, Rejection, StateEvent

log = logging.getLogger("consumer")

LATENCY_SAMPLES = 1000
DECODE_SLICE = 1000


class ShutdownAbandon(Exception):
    """The shutdown deadline passed while a batch was still waiting for the database: leave it uncommitted."""


class PendingMigrations(Exception):
    """The database schema is behind this code; `ocpp-consumer migrate` must run first."""


@dataclass
class Totals:
    """Counters for the summary line at shutdown (Prometheus has the same, by label)."""

    records: int = 0
    written: int = 0
    ignored: int = 0
    dead_lettered: int = 0
    batches: int = 0
    database_retries: int = 0
    commit_failures: int = 0
    dead_letter_kinds: Counter = field(default_factory=Counter)


@dataclass
class Decoded:
    """One fetched batch after decoding: what to write, what to dead-letter, what to count, what to commit."""

    offsets: dict[TopicPartition, int]  # the next offset of each partition, committed once the batch is stored
    records: int = 0
    events: list[tuple[ConsumerRecord, StateEvent]] = field(default_factory=list)
    rejects: list[tuple[ConsumerRecord, Rejection]] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)


class _Rebalance(ConsumerRebalanceListener):
    """Keeps the worker's view of its partitions current; aiokafka awaits these before the group moves on."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.worker.partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.worker.partitions_assigned(assigned)


class Worker:
    """One replica: owns a Kafka consumer, a dead-letter producer and a PostgreSQL pool for its lifetime."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.totals = Totals()
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()  # set while no batch is in flight
        self._idle.set()
        self._shutdown_deadline: float | None = None
        self._abandoned = False  # a batch was left unfinished at shutdown
        self._assigned: set[TopicPartition] = set()
        self._last_loop = time.monotonic()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._pool: asyncpg.Pool | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Ask the worker to finish the batch in hand, commit it and leave (what SIGTERM and SIGINT do)."""
        if not self._stopping.is_set():
            self._shutdown_deadline = time.monotonic() + self.settings.shutdown_timeout_seconds
            self._stopping.set()

    async def run(self) -> None:
        """Consume until `stop()`; always leave the group and close connections, whatever happened."""
        http = None
        try:
            if self.settings.metrics_port:
                http = await serve_http(
                    self.settings.metrics_port, self.metrics, healthy=self._healthy, ready=self._ready
                )
            await self._start()
            await self._loop()
        except ShutdownAbandon:
            self._abandoned = True
            log.warning("shutdown deadline passed while waiting for the database or broker; "
                        "the batch in hand stays uncommitted and will be replayed")
        finally:
            await self._close()
            if http is not None:
                http.close()
            self._log_summary()

    async def _start(self) -> None:
        s = self.settings
        self._pool = await self._with_retries(
            "connect_database", is_transient_database_error,
            lambda: asyncpg.create_pool(
                s.database_url.get_secret_value(), min_size=1, max_size=s.database_pool_size,
                # A statement that hangs (a lock, a dead TCP peer) must end in an error we can retry.
                command_timeout=60,
            ),
        )
        async with self._pool.acquire() as conn:
            pending = await pending_migrations(conn)
        if pending:
            raise PendingMigrations(
                f"the database has {len(pending)} pending migration(s) ({', '.join(pending)}); "
                "run `ocpp-consumer migrate` first"
            )
        kafka = self._kafka_options()
        self._producer = AIOKafkaProducer(
            **kafka, acks="all", enable_idempotence=True, linger_ms=5, client_id=f"{s.kafka_client_id}-dlq"
        )
        self._consumer = AIOKafkaConsumer(
            **kafka,
            client_id=s.kafka_client_id,
            group_id=s.kafka_group_id,
            enable_auto_commit=False,
            auto_offset_reset=s.kafka_auto_offset_reset,
            max_poll_records=s.batch_max_records,
            # What aiokafka buffers ahead is most of the consumer's memory in catch-up: bounded per partition, and
            # in total, whatever the number of partitions this replica owns (BENCHMARKS.md has the figures).
            max_partition_fetch_bytes=s.batch_max_bytes,
            fetch_max_bytes=4 * s.batch_max_bytes,
            fetch_max_wait_ms=s.batch_max_wait_ms,
        )
        await self._with_retries("start_kafka", is_transient_kafka_error, self._producer.start)
        self._consumer.subscribe(s.topics, listener=_Rebalance(self))
        await self._with_retries("start_kafka", is_transient_kafka_error, self._consumer.start)
        log.info(
            "consuming",
            extra={"topics": s.topics, "group_id": s.kafka_group_id, "dlq_topic": s.dlq_topic},
        )

    def _kafka_options(self) -> dict:
        s = self.settings
        options: dict = {"bootstrap_servers": s.kafka_bootstrap_servers, "security_protocol": s.kafka_security_protocol}
        if s.kafka_security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = create_ssl_context(cafile=s.kafka_ssl_cafile)
        if s.kafka_security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = s.kafka_sasl_mechanism or "PLAIN"
            options["sasl_plain_username"] = s.kafka_sasl_username
            options["sasl_plain_password"] = (
                s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else None
            )
        return options

    async def _close(self) -> None:
        # Leaving the group promptly lets the other replicas take the partitions now, not after a session timeout.
        for closing in (self._consumer, self._producer):
            if closing is not None:
                try:
                    # Bounded: with the broker away, leaving the group or flushing would wait for it forever.
                    await asyncio.wait_for(closing.stop(), timeout=10)
                except Exception:  # closing must not hide the error that brought us here
                    log.exception("error while closing a Kafka client")
        if self._pool is not None:
            # Connections are idle here, unless a batch was abandoned on a hung database: do not wait on those.
            try:
                await asyncio.wait_for(self._pool.close(), timeout=0 if self._abandoned else 5)
            except Exception:  # closing must not hide the error that brought us here
                self._pool.terminate()

    def _log_summary(self) -> None:
        t = self.totals
        log.info(
            "stopped",
            extra={
                "records": t.records, "written": t.written, "ignored": t.ignored,
                "dead_lettered": t.dead_lettered, "dead_letter_kinds": dict(t.dead_letter_kinds),
                "batches": t.batches, "database_retries": t.database_retries,
                "commit_failures": t.commit_failures,
            },
        )

    # ------------------------------------------------------------------------------------------ the loop

    async def _loop(self) -> None:
        """Fetch and decode batch N+1 while batch N is being written; store batches strictly one after another.

        Decoding is Python's work and writing is mostly PostgreSQL's, so overlapping them uses both cores.
        At most one batch is in flight and one more decoded, so memory stays bounded; offsets are still
        committed in order, each batch's only after its own write.
        """
        in_flight: asyncio.Task | None = None
        try:
            while not self._stopping.is_set():
                self._last_loop = time.monotonic()
                batch = await self._with_retries("fetch", is_transient_kafka_error, self._fetch)
                if not batch:
                    if in_flight is not None and in_flight.done():
                        in_flight = in_flight.result()  # re-raises what the batch failed with
                    continue
                decoded = await self._decode(batch)
                if in_flight is not None:
                    await self._wait_keeping_membership(in_flight)
                self._idle.clear()
                in_flight = asyncio.create_task(self._store(decoded))
                in_flight.add_done_callback(lambda _: self._idle.set())
            if in_flight is not None:
                await self._wait_keeping_membership(in_flight)
        except BaseException:
            if in_flight is not None and not in_flight.done():
                in_flight.cancel()  # its offsets stay uncommitted: the batch is replayed, harmlessly
            raise

    async def _fetch(self) -> dict[TopicPartition, list[ConsumerRecord]]:
        """The next batch, or nothing after a bounded wait.

        getmany ignores its timeout while a rebalance is in progress; one that cannot finish (the coordinator
        is away) would keep the loop from ever seeing a stop request. Cancelling the wait is safe: records are
        taken from the buffer only once it is over.
        """
        s = self.settings
        try:
            return await asyncio.wait_for(
                self._consumer.getmany(timeout_ms=s.batch_max_wait_ms, max_records=s.batch_max_records),
                timeout=s.batch_max_wait_ms / 1000 + 5,
            )
        except asyncio.TimeoutError:
            return {}

    async def _decode(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> Decoded:
        """Decode a batch, letting the event loop run every DECODE_SLICE records.

        Decoding is CPU work that would otherwise hold the loop for a whole batch, and aiokafka's fetcher runs on
        the same loop: yielding lets it send the next fetch and read its response meanwhile, so that the next
        batch is waiting when this one is done.
        """
        s = self.settings
        decoded = Decoded(offsets={tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs})
        for records in batch.values():
            for record in records:
                decoded.records += 1
                if decoded.records % DECODE_SLICE == 0:
                    await asyncio.sleep(0)
                result = decode(
                    record.value, record.key,
                    max_clock_skew_seconds=s.max_clock_skew_seconds, max_record_bytes=s.max_record_bytes,
                )
                if isinstance(result, Rejection):
                    decoded.rejects.append((record, result))
                elif isinstance(result, Ignored):
                    decoded.ignored.append(result)
                else:
                    decoded.events.append((record, result))
        return decoded

    async def _store(self, decoded: Decoded) -> None:
        """Write the state, dead-letter the rejects, then commit: nothing is committed before it is stored."""
        write_started = time.monotonic()
        refused = await self._write_events(decoded.events)
        self.metrics.batch_write_seconds.observe(time.monotonic() - write_started)
        await self._dead_letter(decoded.rejects + [(record, rejection) for record, _, rejection in refused])
        await self._commit(decoded.offsets)
        self._count(decoded, refused)

    async def _wait_keeping_membership(self, task: asyncio.Task) -> None:
        """Wait for the batch in flight; if it takes long (the database is slow or away), keep polling.

        The group coordinator counts a consumer that stops polling for max.poll.interval.ms as dead, so while
        the batch waits for the database the consumer polls with every partition paused: membership is kept
        and no new records pile up in memory.
        """
        while True:
            wait = 1.0
            if self._shutdown_deadline is not None:
                wait = min(wait, max(self._shutdown_deadline - time.monotonic(), 0.01))
            done, _ = await asyncio.wait({task}, timeout=wait)
            if done:
                return task.result()
            if self._shutdown_deadline is not None and time.monotonic() > self._shutdown_deadline:
                # A statement can hang longer than the shutdown allows (a lock, a dead peer): the batch is
                # abandoned uncommitted rather than holding SIGTERM past OCPP_SHUTDOWN_TIMEOUT_SECONDS.
                task.cancel()
                raise ShutdownAbandon()
            self._last_loop = time.monotonic()
            await self._poll_paused()

    async def _poll_paused(self) -> None:
        consumer = self._consumer
        paused = set(self._assigned)
        consumer.pause(*paused)
        try:
            returned = await consumer.getmany(timeout_ms=200)
        except TRANSIENT_KAFKA_ERRORS:
            await asyncio.sleep(0.2)
            return
        finally:
            consumer.resume(*(paused & consumer.assignment()))
        # A partition assigned during the poll was not paused; rewind it so that none of its records is skipped.
        for tp, records in returned.items():
            if records:
                consumer.seek(tp, records[0].offset)

    async def _write_events(
        self, events: list[tuple[ConsumerRecord, StateEvent]]
    ) -> list[tuple[ConsumerRecord, StateEvent, Rejection]]:
        """Write the events' state in one transaction; return those the database refused as data.

        A data error (say, a value the schema's check refuses) would otherwise fail the whole batch forever,
        so the batch is halved until the events that cause it stand alone; those are dead-lettered with the
        database's message and the rest is written. Halves are written in their own transactions, which is
        safe because every write is idempotent and order-independent.
        """
        if not events:
            return []
        try:
            await self._with_retries("write", is_transient_database_error, lambda: self._write_once(events))
        except DATA_ERRORS as exc:
            if len(events) == 1:
                record, event = events[0]
                detail = f"database refused the event: {type(exc).__name__}: {exc}"[:1000]
                log.warning("event refused by the database", extra={"event_id": str(event.event_id), "error": str(exc)})
                return [(record, event, Rejection("database", detail))]
            middle = len(events) // 2
            return await self._write_events(events[:middle]) + await self._write_events(events[middle:])
        self._observe_latency(events)
        return []

    async def _write_once(self, events: list[tuple[ConsumerRecord, StateEvent]]) -> None:
        rows = coalesce(event for _, event in events)
        async with self._pool.acquire() as conn, conn.transaction():
            await store.write_batch(conn, rows)

    def _observe_latency(self, events: list[tuple[ConsumerRecord, StateEvent]]) -> None:
        """Observe freshness for an evenly spaced sample of at most LATENCY_SAMPLES events of the batch.

        Observing every event cost about a tenth of the consumer's CPU in catch-up; the quantiles an operator
        reads are the same from a sample. Live batches are small and are observed in full.
        """
        now = datetime.now(timezone.utc)
        observe = self.metrics.commit_latency.observe
        for _, event in events[:: max(1, len(events) // LATENCY_SAMPLES)]:
            observe((now - event.received_at).total_seconds())

    async def _dead_letter(self, rejects: list[tuple[ConsumerRecord, Rejection]]) -> None:
        """Send every reject to the dead-letter topic and wait for the broker to acknowledge all of them."""
        if not rejects:
            return

        async def send_all() -> None:
            topic = self.settings.dlq_topic
            futures = []
            for record, rejection in rejects:
                try:
                    futures.append(await self._producer.send(topic, **dead_letter(record, rejection)))
                except MessageSizeTooLargeError:  # refused by the client before sending
                    futures.append(await self._producer.send(topic, **dead_letter(record, rejection, with_value=False)))
            results = await asyncio.gather(*futures, return_exceptions=True)
            # Refused by the broker for its size: send the letter without the value (module deadletter).
            resent = [
                await self._producer.send(topic, **dead_letter(record, rejection, with_value=False))
                for (record, rejection), result in zip(rejects, results)
                if isinstance(result, MessageSizeTooLargeError)
            ]
            for result in [*results, *await asyncio.gather(*resent)]:
                if isinstance(result, BaseException) and not isinstance(result, MessageSizeTooLargeError):
                    raise result

        await self._with_retries("dead_letter", is_transient_kafka_error, send_all)
        # One line per batch, not per record: a misbehaving gateway must not flood the log. The dead-letter
        # topic keeps every record with its reason; the sample says where to start looking.
        record, rejection = rejects[0]
        log.warning(
            "dead-lettered",
            extra={"count": len(rejects), "kinds": dict(Counter(r.kind for _, r in rejects)),
                   "sample": {"kind": rejection.kind, "detail": rejection.detail, "topic": record.topic,
                              "partition": record.partition, "offset": record.offset}},
        )
        if log.isEnabledFor(logging.DEBUG):
            for record, rejection in rejects:
                log.debug(
                    "dead-lettered record",
                    extra={"kind": rejection.kind, "detail": rejection.detail, "topic": record.topic,
                           "partition": record.partition, "offset": record.offset},
                )

    async def _commit(self, next_offsets: dict[TopicPartition, int]) -> None:
        """Commit the next offset of every partition in the batch that this replica still owns."""
        offsets = {tp: offset for tp, offset in next_offsets.items() if tp in self._assigned}
        if not offsets:
            return
        try:
            await self._with_retries("commit", is_transient_kafka_error, lambda: self._consumer.commit(offsets))
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced under us: the partitions' new owner replays from the last commit, and
            # replaying is harmless. Crashing here would only add a second rebalance.
            self.totals.commit_failures += 1
            self.metrics.commit_failures.inc()
            log.warning("offset commit refused after a rebalance; the new owner will replay", extra={"error": str(exc)})
            return
        for tp, offset in offsets.items():
            labels = (tp.topic, str(tp.partition))
            self.metrics.committed_offset.labels(*labels).set(offset)
            # A commit retried across a rebalance can succeed for a partition that is no longer ours.
            highwater = self._consumer.highwater(tp) if tp in self._consumer.assignment() else None
            if highwater is not None:
                self.metrics.lag.labels(*labels).set(max(highwater - offset, 0))

    def _count(self, decoded: Decoded, refused: list[tuple[ConsumerRecord, StateEvent, Rejection]]) -> None:
        events, rejects, ignored = decoded.events, decoded.rejects, decoded.ignored
        t, m = self.totals, self.metrics
        t.batches += 1
        t.records += decoded.records
        m.batch_size.observe(decoded.records)
        written = Counter(event.action for _, event in events)
        written.subtract(event.action for _, event, _ in refused)
        for action, n in written.items():
            m.events.labels(action, "written").inc(n)
        for action, n in Counter(event.action for _, event, _ in refused).items():
            m.events.labels(action, "dead_lettered").inc(n)
        for action, n in Counter(item.action for item in ignored).items():
            m.events.labels(action, "ignored").inc(n)
        if rejects:
            # A record that failed to decode has no trustworthy action.
            m.events.labels("unknown", "dead_lettered").inc(len(rejects))
        kinds = Counter(rejection.kind for _, rejection in rejects)
        kinds.update(rejection.kind for _, _, rejection in refused)
        for kind, n in kinds.items():
            m.dead_letters.labels(kind).inc(n)
        skew = sum(1 for _, event in events if event.clock_skew_corrected)
        if skew:
            m.clock_skew_corrections.inc(skew)
        t.written += sum(written.values())
        t.ignored += len(ignored)
        t.dead_lettered += len(rejects) + len(refused)
        t.dead_letter_kinds.update(kinds)

    # ------------------------------------------------------------------------------------------ retries

    async def _with_retries(self, operation: str, is_transient, call):
        """Run `call` until it succeeds, backing off on `transient` errors while keeping group membership."""

        def before_sleep(state) -> None:
            self.totals.database_retries += 1
            self.metrics.database_retries.labels(operation).inc()
            log.warning(
                "transient failure, retrying",
                extra={"operation": operation, "attempt": state.attempt_number,
                       "error": f"{type(state.outcome.exception()).__name__}: {state.outcome.exception()}",
                       "wait_s": round(state.next_action.sleep, 2)},
            )

        async for attempt in retrying(
            is_transient, max_wait_seconds=self.settings.retry_max_seconds, sleep=self._sleep_before_retry,
            before_sleep=before_sleep,
        ):
            with attempt:
                return await call()

    async def _sleep_before_retry(self, seconds: float) -> None:
        """Back off, unless shutdown's deadline passes first: then the work in hand is left uncommitted."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self._shutdown_deadline is not None and time.monotonic() > self._shutdown_deadline:
                raise ShutdownAbandon()
            await asyncio.sleep(min(remaining, 0.5))

    # ------------------------------------------------------------------------------------------ rebalances

    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Let the batch in flight finish and commit while the partitions are still ours, within a bound.

        If it cannot finish in time (the database is away), the partitions are dropped from our view and the
        batch's offsets for them are never committed; their new owner replays them, which is harmless.
        """
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=min(10.0, self.settings.shutdown_timeout_seconds))
        except asyncio.TimeoutError:
            log.warning("partitions revoked while a batch was in flight; its offsets there stay uncommitted")
        self._assigned -= set(revoked)
        self.metrics.assigned_partitions.set(len(self._assigned))
        log.info("partitions revoked", extra={"partitions": sorted(f"{tp.topic}:{tp.partition}" for tp in revoked)})

    def partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._assigned = set(assigned)
        self.metrics.assigned_partitions.set(len(self._assigned))
        log.info("partitions assigned", extra={"partitions": sorted(f"{tp.topic}:{tp.partition}" for tp in assigned)})

    # ------------------------------------------------------------------------------------------ probes

    async def _healthy(self) -> tuple[bool, str]:
        stale = time.monotonic() - self._last_loop
        limit = max(60.0, self.settings.batch_max_wait_ms / 1000 * 10)
        return (stale < limit, f"loop last ran {stale:.1f}s ago")

    async def _ready(self) -> tuple[bool, str]:
        if not self._assigned:
            return False, "no partitions assigned"
        if self._pool is None:
            return False, "no database pool yet"
        try:
            async with self._pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1", timeout=2)
        except Exception as exc:  # a probe reports any failure as "not ready"; it does not handle it
            return False, f"database unreachable: {type(exc).__name__}"
        return True, f"{len(self._assigned)} partition(s) assigned, database reachable"


def run_service(settings: Settings) -> int:
    """`ocpp-consumer run`: run a worker until SIGTERM/SIGINT; 0 on a clean stop, 1 on a failure, 2 on config."""
    configure_logging(settings.log_level)

    async def main() -> int:
        worker = Worker(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        try:
            await worker.run()
        except PendingMigrations as exc:
            log.error(str(exc))
            return 2
        except Exception:
            log.exception("stopping on an unexpected error; nothing past the last commit was committed")
            return 1
        return 0

    return asyncio.run(main())

