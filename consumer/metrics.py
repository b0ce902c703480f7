"""What the service counts: Prometheus metrics, and the totals of the summary line logged at shutdown.

Each worker owns its registry, so several workers in one process (the tests do that) keep separate counts.
Counting a stored batch happens here, in one call, so that the loop does not know the metrics' labels.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import (CollectorRegistry, Counter, Gauge, GCCollector, Histogram, ProcessCollector,
                               generate_latest)

from schemas.envelope import TRACKED_ENVELOPES, version_and_action
from schemas.events import Ignored, NotifyEvent

# Label values come from a closed set, never from the input: an action this service does not track is counted as
# "other", or 200,000 distinct action names would become 200,000 series (+0.5 GB, and a /metrics of 100 MB).
TRACKED_ACTIONS = frozenset(version_and_action(envelope)[1] for envelope in TRACKED_ENVELOPES)

LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0
)
# Freshness is observed for an evenly spaced sample of at most this many written events per batch: observing
# every event cost about a tenth of the consumer's CPU in catch-up, and the quantiles are the same from a sample.
LATENCY_SAMPLES = 1000


@dataclass
class Totals:
    """Counters for the summary line at shutdown (Prometheus has the same, by label)."""

    records: int = 0
    written: int = 0
    ignored: int = 0
    dead_lettered: int = 0
    batches: int = 0
    retries: int = 0
    commit_failures: int = 0
    dead_letter_kinds: collections.Counter = field(default_factory=collections.Counter)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.totals = Totals()
        r = self.registry
        # The process's own figures (process_resident_memory_bytes, process_cpu_seconds_total, ...) and the
        # garbage collector's (python_gc_collections_total{generation}): memory and CPU per event are what an
        # operator sizes replicas by, and the collector's tuning (consumer/service.py) is visible in its counts.
        ProcessCollector(registry=r)
        GCCollector(registry=r)
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
        self.time_corrections = Counter(
            "ocpp_time_corrections",
            "Event times corrected by the time rules (docs/contract.md), by kind: charger_clock_ahead, "
            "charger_clock_reset, received_at_after_publish.",
            ["kind"], registry=r,
        )
        self.notify_event_items_ignored = Counter(
            "ocpp_notify_event_items_ignored",
            "NotifyEvent items read and ignored: not an AvailabilityState of a Connector or of the ChargingStation.",
            registry=r,
        )
        self.history_pruned = Counter(
            "ocpp_history_pruned_events",
            "Status events whose month of status_history was pruned: they updated the state tables, not the history.",
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
            "From the gateway's received_at to the batch's database commit (freshness), sampled: at most "
            f"{LATENCY_SAMPLES} evenly spaced written events per batch.",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.retries = Counter(
            "ocpp_retries", "Database or broker calls retried after a transient failure, by operation.",
            ["operation"], registry=r,
        )
        # The old, misleading name (it always counted broker retries too), kept for one release; removed in 0.3.
        self.retries_deprecated = Counter(
            "ocpp_database_retries", "Deprecated alias of ocpp_retries_total (it counts broker retries too).",
            ["operation"], registry=r,
        )
        self.commit_failures = Counter(
            "ocpp_offset_commit_failures", "Offset commits refused because the group rebalanced.", registry=r
        )
        self.lag = Gauge(
            "ocpp_partition_lag",
            "Records behind the partition's last stable offset not yet committed; refreshed after every commit, "
            "and every few seconds while a batch waits.",
            ["topic", "partition"], registry=r,
        )
        self.committed_offset = Gauge(
            "ocpp_committed_offset", "Last offset committed, per partition.", ["topic", "partition"], registry=r
        )
        self.revocations = Counter(
            "ocpp_partition_revocations",
            "Partitions taken from this replica by a rebalance (another replica joined or left, or this one was "
            "taken out of the group for not polling).", registry=r,
        )
        self.assigned_partitions = Gauge(
            "ocpp_assigned_partitions", "Partitions this replica owns.", registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def count_retry(self, operation: str) -> None:
        self.totals.retries += 1
        self.retries.labels(operation).inc()
        self.retries_deprecated.labels(operation).inc()

    def count_commit_failure(self) -> None:
        self.totals.commit_failures += 1
        self.commit_failures.inc()

    def count_committed(self, topic: str, partition: int, offset: int) -> None:
        self.committed_offset.labels(topic, str(partition)).set(offset)

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self.lag.labels(topic, str(partition)).set(lag)

    def forget_partition(self, topic: str, partition: int) -> None:
        """A revoked partition's gauges go: its new owner reports it, and a stale value here would mislead."""
        for gauge in (self.lag, self.committed_offset):
            try:
                gauge.remove(topic, str(partition))
            except KeyError:
                pass

    def count_batch(self, decoded, refused: list, *, written_at: datetime) -> None:
        """Count one stored batch (a consumer.decode.Decoded, and the events the database refused as data): its
        records by action and outcome, its dead letters by kind, its clock corrections and its freshness."""
        events, rejects = decoded.events, decoded.rejects
        t = self.totals
        t.batches += 1
        t.records += decoded.records
        self.batch_size.observe(decoded.records)
        # Ignored records are among the events too (their charge point's row is written), counted as ignored.
        written = collections.Counter(event.action for _, event in events if type(event) is not Ignored)
        untracked = collections.Counter(_label(item) for item in decoded.ignored)
        for _, event, _ in refused:
            (untracked if type(event) is Ignored else written)[_label(event)] -= 1
        for action, n in written.items():
            self.events.labels(action, "written").inc(n)
        for action, n in collections.Counter(_label(event) for _, event, _ in refused).items():
            self.events.labels(action, "dead_lettered").inc(n)
        for action, n in untracked.items():
            self.events.labels(action, "ignored").inc(n)
        items_ignored = sum(event.ignored_items for _, event in events if type(event) is NotifyEvent)
        if items_ignored:
            self.notify_event_items_ignored.inc(items_ignored)
        if rejects:
            # A record that failed to decode has no trustworthy action.
            self.events.labels("unknown", "dead_lettered").inc(len(rejects))
        kinds = collections.Counter(rejection.kind for _, rejection in rejects)
        kinds.update(rejection.kind for _, _, rejection in refused)
        for kind, n in kinds.items():
            self.dead_letters.labels(kind).inc(n)
        skew = sum(1 for _, event in events if event.clock_skew_corrected)
        if skew:
            self.clock_skew_corrections.inc(skew)
        corrections = collections.Counter(kind for _, event in events for kind in event.time_corrections)
        for kind, n in corrections.items():
            self.time_corrections.labels(kind).inc(n)
        if refused:
            refused_ids = {id(event) for _, event, _ in refused}
            events = [pair for pair in events if id(pair[1]) not in refused_ids]
        observe = self.commit_latency.observe
        for _, event in events[:: max(1, len(events) // LATENCY_SAMPLES)]:
            observe((written_at - event.received_at).total_seconds())
        t.written += sum(written.values())
        t.ignored += sum(untracked.values())
        t.dead_lettered += len(rejects) + len(refused)
        t.dead_letter_kinds.update(kinds)

    def summary(self) -> dict:
        """The totals as the fields of the shutdown summary line."""
        t = self.totals
        return {
            "records": t.records, "written": t.written, "ignored": t.ignored, "dead_lettered": t.dead_lettered,
            "dead_letter_kinds": dict(t.dead_letter_kinds), "batches": t.batches, "retries": t.retries,
            "commit_failures": t.commit_failures,
        }


def _label(event) -> str:
    """The action label: from a closed set, never from the input (an untracked action is "other")."""
    return event.action if event.action in TRACKED_ACTIONS else "other"
