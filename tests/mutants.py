"""`make mutants`: break each promise once, on purpose, in a scratch copy, and check that a test notices.

Each mutation below is one small edit of the product that an earlier review found no test would catch. This
copies the work tree (without .venv, .stack and .git) to a temporary folder, applies one mutation at a time,
runs the tests named for it against the local stack (`make up` first), and prints one line per mutation,
caught or MISSED, then a summary. Exit status 0 only when every mutation is caught. Not part of `make test`:
it runs the chosen tests once per mutation and takes a few minutes.

    make mutants                 # all of them
    python tests/mutants.py 3 5  # only these (numbers as printed)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    what: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS = [
    Mutation("the worker no longer passes the clock-skew setting to decoding", "consumer/worker.py",
             "batch, max_clock_skew_seconds=s.max_clock_skew_seconds,",
             "batch, max_clock_skew_seconds=300,",
             ("tests/test_promises.py::test_the_clock_skew_setting_reaches_decoding_and_its_metrics_count",)),
    Mutation("offsets are committed before the broker acknowledged the dead letters", "consumer/worker.py",
             """        await self._retry("dead_letter", is_transient_kafka_error,
                          partial(deadletter.send, self._producer, self.settings.dlq_topic, rejects))
        await self._commit(decoded.offsets)""",
             """        await self._commit(decoded.offsets)
        await self._retry("dead_letter", is_transient_kafka_error,
                          partial(deadletter.send, self._producer, self.settings.dlq_topic, rejects))""",
             ("tests/test_promises.py::test_offsets_wait_for_the_dead_letters_acknowledgement",)),
    Mutation("dead letters drop the original headers", "consumer/deadletter.py",
             'original = [(f"ocpp.original.{k}" if k.startswith(_OURS) else k, v) for k, v in record.headers or ()]',
             "original = []",
             ("tests/test_nothing_stuck.py::test_our_headers_win_and_the_originals_are_kept",)),
    Mutation("ocpp.source.partition is always 0", "consumer/deadletter.py",
             '("ocpp.source.partition", str(record.partition).encode()),',
             '("ocpp.source.partition", b"0"),',
             ("tests/test_promises.py::test_dead_letters_name_their_source_partition",)),
    Mutation("no paused polling while a batch waits longer than max.poll.interval.ms", "consumer/worker.py",
             "            await self._poll_paused()\n",
             "            await asyncio.sleep(PAUSED_POLL_MS / 1000)\n",
             ("tests/test_promises.py::test_an_outage_longer_than_the_poll_interval_keeps_the_partitions",)),
    Mutation("the pending-migration check runs after joining the group", "consumer/worker.py",
             """        async with self._pool.acquire() as conn:
            pending = await pending_migrations(conn)
        if pending:""",
             """        await clients.create_consumer(s, self._partitions.listener(self._idle, revoke_wait_seconds=1)).start()
        await asyncio.sleep(3)
        async with self._pool.acquire() as conn:
            pending = await pending_migrations(conn)
        if pending:""",
             ("tests/test_promises.py::test_pending_migrations_stop_start_up_before_joining_the_group",)),
    Mutation("the clock-skew and latency metrics are never incremented", "consumer/metrics.py",
             "            self.clock_skew_corrections.inc(skew)",
             "            pass",
             ("tests/test_promises.py::test_the_clock_skew_setting_reaches_decoding_and_its_metrics_count",)),
    Mutation("SIGTERM cancels the batch in flight instead of finishing it", "consumer/worker.py",
             "            if in_flight is not None:\n                await self._wait_keeping_membership(in_flight)\n"
             "        except BaseException:",
             "            if in_flight is not None:\n                in_flight.cancel()\n        except BaseException:",
             ("tests/test_promises.py::test_sigterm_during_a_batch_finishes_and_commits_it",)),
    Mutation("/readyz is always 200", "consumer/probes.py",
             "    async def ready(self) -> tuple[bool, str]:\n",
             "    async def ready(self) -> tuple[bool, str]:\n        return True, 'always'\n",
             ("tests/test_nothing_stuck.py::test_metrics_and_readiness_tell_the_truth_during_a_stall",)),
    Mutation("every OSError is waited out again (a host typo, a missing CA file)", "consumer/retry.py",
             "    if isinstance(exc, FATAL_OS_ERRORS):\n        return False\n",
             "    if isinstance(exc, OSError):\n        return True\n",
             ("tests/test_failure_classes.py",)),
    Mutation("the gateway's receipt order no longer breaks same-second ties", "consumer/coalesce.py",
             "    new = (event.effective_at, event.received_at, event.event_id)",
             "    new = (event.effective_at, event.effective_at, event.event_id)",
             ("tests/test_store.py", "tests/test_store_property.py")),
    Mutation("the report's slices do not import the first one's snapshot", "consumer/report.py",
             "            await conn.execute(f\"SET TRANSACTION SNAPSHOT '{snapshot}'\")\n",
             "            pass\n",
             ("tests/test_report_slices.py::test_the_slices_read_one_snapshot",)),
    Mutation("the report's slices count up to their own now, not the report's", "consumer/report.py",
             "cursors = [await conn.cursor(statement, start, end, as_of, lo, hi)",
             "cursors = [await conn.cursor(statement, start, end, None, lo, hi)",
             ("tests/test_report_slices.py::test_every_slice_counts_up_to_the_reports_now",)),
    Mutation("a failing slice waits for the slices before it to be computed", "consumer/report.py",
             "                rows = await _first_chunk(first, firsts)\n",
             "                rows = await first\n",
             ("tests/test_report_slices.py::test_a_slice_that_fails_fails_the_report",)),
    Mutation("a failed report leaves the other slices' queries running", "consumer/report.py",
             "            for task in firsts:\n                task.cancel()\n"
             "            await asyncio.gather(*firsts, return_exceptions=True)\n",
             "            pass\n",
             ("tests/test_report_slices.py::test_a_slice_that_fails_fails_the_report",)),
    Mutation("a slice's upper bound compares in the database's collation, not byte order",
             "sql/migrations/0008_report_in_slices.sql",
             'AND (charge_point_to IS NULL OR id COLLATE "C" < charge_point_to)',
             "AND (charge_point_to IS NULL OR id < charge_point_to)",
             ("tests/test_report_slices.py::test_any_cut_into_slices_is_the_whole_report",)),
    Mutation("the idle commit reads a partition's last commit from before the wait, when it may be revoked",
             "consumer/partitions.py",
             "            uncommitted_from = self._uncommitted_from.get(tp)\n",
             "            uncommitted_from = self._uncommitted_from[tp]\n",
             ("tests/test_nothing_stuck.py::"
              "test_partition_revoked_while_its_position_is_asked_does_not_stop_the_replica",)),
    Mutation("the report's in-force probe of a 1.6 port sorts the port's recent past again",
             "sql/migrations/0009_in_force_from_the_recent_months.sql",
             "AND n.effective_at >= ocpp_month_before(lo)\n"
             "                ORDER BY n.evse_connector_id DESC, n.effective_at DESC\n",
             "AND n.effective_at >= ocpp_month_before(lo)\n"
             "                ORDER BY n.effective_at DESC\n",
             ("tests/test_report.py::test_the_status_in_force_is_found_without_reading_the_ports_past",)),
    Mutation("the idle commit lets the consumer's refusal of a lost partition stop the replica",
             "consumer/partitions.py",
             "            except (asyncio.TimeoutError, IllegalStateError, *TRANSIENT_KAFKA_ERRORS):\n",
             "            except (asyncio.TimeoutError, *TRANSIENT_KAFKA_ERRORS):\n",
             ("tests/test_nothing_stuck.py::"
              "test_partition_unassigned_before_the_listener_ran_does_not_stop_the_replica",)),
    Mutation("a commit that lands after its partition was revoked sets its gauge again",
             "consumer/partitions.py",
             "            if tp in self.owned:\n"
             "                self.metrics.count_committed(tp.topic, tp.partition, offset)\n",
             "            self.metrics.count_committed(tp.topic, tp.partition, offset)\n"
             "            if tp in self.owned:\n",
             ("tests/test_nothing_stuck.py::"
              "test_a_commit_that_lands_after_its_partition_was_revoked_brings_back_no_gauge",)),
    Mutation("the report looks for a 1.6 port's status in force in every month kept, not the recent ones first",
             "sql/migrations/0009_in_force_from_the_recent_months.sql",
             "AND n.evse_connector_id IS NULL AND n.effective_at <= lo AND n.effective_at >= ocpp_month_before(lo)\n",
             "AND n.evse_connector_id IS NULL AND n.effective_at <= lo\n",
             ("tests/test_report.py::test_the_status_in_force_is_looked_for_in_the_month_before_the_period_first",)),
    Mutation("the report looks for a 2.x port's absent 1.6 series in every month kept",
             "sql/migrations/0009_in_force_from_the_recent_months.sql",
             "                     AND NOT EXISTS (SELECT FROM status_history AS x\n",
             "                     AND true OR NOT EXISTS (SELECT FROM status_history AS x\n",
             ("tests/test_report.py::test_the_status_in_force_is_looked_for_in_the_month_before_the_period_first",)),
    Mutation("the report misses a 1.6 port's status in force from before the month before the period",
             "sql/migrations/0009_in_force_from_the_recent_months.sql",
             "                  AND n.evse_connector_id IS NULL AND n.effective_at < ocpp_month_before(lo)\n",
             "                  AND n.evse_connector_id IS NULL AND n.effective_at < ocpp_month_before(lo) AND false\n",
             ("tests/test_report.py::test_the_status_in_force_is_looked_for_in_the_month_before_the_period_first",)),
    Mutation("the report misses a charge point's own status in force from before the month before the period",
             "sql/migrations/0009_in_force_from_the_recent_months.sql",
             "                WHERE n.charge_point_id = cp.charge_point_id AND n.connector_id = 0\n"
             "                  AND n.effective_at < ocpp_month_before(lo)) END)\n",
             "                WHERE n.charge_point_id = cp.charge_point_id AND n.connector_id = 0\n"
             "                  AND n.effective_at < ocpp_month_before(lo) AND false) END)\n",
             ("tests/test_report.py::test_the_status_in_force_is_looked_for_in_the_month_before_the_period_first",)),
    Mutation("port_outages reads the whole history of a port down at the period's start again",
             "sql/migrations/0009_in_force_from_the_recent_months.sql",
             "ARRAY['1 day', '7 days', '1 month', '3 months', '1 year', NULL]::interval[]",
             "ARRAY[NULL]::interval[]",
             ("tests/test_report.py::"
              "test_an_outage_that_began_before_the_period_is_read_back_only_as_far_as_it_reaches",)),
    Mutation("port_outages takes an outage cut by its look-back window for one that began there",
             "sql/migrations/0009_in_force_from_the_recent_months.sql",
             "            IF port.began = lo THEN\n",
             "            IF port.began < lo THEN\n",
             ("tests/test_report.py::"
              "test_an_outage_that_began_before_the_period_is_read_back_only_as_far_as_it_reaches",)),
    Mutation("port_outages repeats an outage found before its charge point's other ports were",
             "sql/migrations/0009_in_force_from_the_recent_months.sql",
             "        SELECT DISTINCT ON (b.charge_point_id, b.connector_id) b.*\n",
             "        SELECT b.*\n",
             ("tests/test_report.py::"
              "test_an_outage_that_began_before_the_period_is_read_back_only_as_far_as_it_reaches",)),
    Mutation("a batch fetched before a revocation starts once the batch in flight finishes", "consumer/worker.py",
             "                if self._partitions.generation != generation:\n",
             "                if False:\n",
             ("tests/test_nothing_stuck.py::test_a_batch_fetched_before_a_revocation_is_not_started_after_it",)),
    Mutation("a batch breaks a tie between two records of one event the other way from the table",
             "consumer/coalesce.py",
             "    if new > old or (new == old and content_digest(*content(event)) > content_digest(*content(best))):",
             "    if new > old or (new == old and content_digest(*content(event)) < content_digest(*content(best))):",
             ("tests/test_store.py::test_colliding_event_ids_give_one_winner_in_any_order",
              "tests/test_store_property.py")),
    Mutation("a status digest is cached under the wrong values", "consumer/coalesce.py",
             "status_digest = lru_cache(maxsize=1 << 12)(content_digest)",
             "status_digest = lru_cache(maxsize=1 << 12)(lambda *values: content_digest(*values[:1]))",
             ("tests/test_store.py", "tests/test_store_property.py")),
    Mutation("the next batch no longer takes in what arrives while the one before it is written",
             "consumer/worker.py",
             "in_flight = await self._wait_keeping_membership(in_flight, next_batch)",
             "in_flight = await self._wait_keeping_membership(in_flight)",
             ("tests/test_worker.py::test_what_arrives_during_a_write_goes_with_the_next_batch",)),
    Mutation("the next batch fetches past its size while it waits", "consumer/worker.py",
             "max_records=self.settings.batch_max_records - batch.decoded.records))",
             "max_records=self.settings.batch_max_records))",
             ("tests/test_worker.py::test_what_arrives_during_a_write_goes_with_the_next_batch",)),
    Mutation("the next batch takes in records past its bytes while it waits", "consumer/worker.py",
             "and batch.decoded.size < s.batch_max_bytes", "",
             ("tests/test_worker.py::test_the_batch_filled_during_a_write_is_bounded_by_bytes",)),
    Mutation("fetches no longer wait for records to gather", "consumer/clients.py",
             "fetch_min_bytes=min(s.kafka_fetch_min_bytes, s.batch_max_bytes),", "fetch_min_bytes=1,",
             ("tests/test_worker.py::test_a_trickle_is_gathered_into_few_batches",)),
    Mutation("a fetch waits for more bytes than a partition's fetch can hold", "consumer/clients.py",
             "fetch_min_bytes=min(s.kafka_fetch_min_bytes, s.batch_max_bytes),",
             "fetch_min_bytes=s.kafka_fetch_min_bytes,",
             ("tests/test_worker.py::test_a_fetch_of_small_partitions_does_not_wait_for_more_than_they_hold",)),
]


def scratch_copy() -> Path:
    target = Path(tempfile.mkdtemp(prefix="ocpp-mutants-"))
    shutil.copytree(ROOT, target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".git", ".venv", ".stack", "__pycache__", "*.egg-info", "build"))
    return target


def run(mutation: Mutation, copy: Path) -> tuple[bool, float]:
    path = copy / mutation.path
    original = path.read_text()
    if original.count(mutation.old) != 1:
        raise SystemExit(f"mutants: {mutation.path} no longer contains the text of mutation {mutation.what!r}; "
                         "update tests/mutants.py")
    path.write_text(original.replace(mutation.old, mutation.new))
    started = time.monotonic()
    try:
        result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                 *mutation.tests], cwd=copy, capture_output=True, text=True, env=os.environ)
    finally:
        path.write_text(original)
    return result.returncode != 0, time.monotonic() - started


def main(argv: list[str]) -> int:
    chosen = [int(a) for a in argv] or list(range(1, len(MUTATIONS) + 1))
    copy = scratch_copy()
    missed = 0
    try:
        for number in chosen:
            mutation = MUTATIONS[number - 1]
            caught, seconds = run(mutation, copy)
            missed += not caught
            print(f"{number:2d}. {'caught' if caught else 'MISSED'}  {mutation.what}  ({seconds:.0f}s)", flush=True)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    print(f"mutants: {len(chosen) - missed} caught, {missed} missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
