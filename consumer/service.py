"""`ocpp-consumer run` as a process: logging, signals, and what each way of stopping means as an exit status.

Kept apart from the worker so that the worker runs in tests without signal handlers or a process around it.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import signal

from consumer.logs import configure_logging
from consumer.settings import Settings
from consumer.worker import PendingMigrations, Unreachable, Worker

log = logging.getLogger("consumer")

# The cyclic garbage collector's thresholds for this process. A batch keeps tens of thousands of objects alive
# until it is committed, and almost nothing on this path makes reference cycles (tasks, exceptions). At CPython's
# default young threshold (700 objects kept) the collector ran many times a batch, and its older generations
# walked every event in flight again: a quarter of decode + coalesce time (BENCHMARKS.md, "Garbage collection").
# Collecting every 50,000 objects kept costs little memory; python_gc_collections_total shows the counts.
GC_THRESHOLDS = (50_000, 10, 10)

# glibc's malloc serves a block of 128 KiB or more from mmap and gives it back to the system on free, but then raises
# that threshold to the size of each such block freed (up to 32 MiB). A batch's large, short-lived buffers (fetch
# responses of up to OCPP_BATCH_MAX_BYTES a partition, each statement's JSON document of several MB) then come
# from the heap, which they fragment: in a fleet's catch-up the heap grew from ~70 to ~140 MB for minutes, ~60 MB of
# it free but not returned, and peak RSS crossed 200 MB (BENCHMARKS.md, "Where the fleet's peak RSS went"). A
# fixed threshold keeps those buffers in mmap, returned as they are freed, at no CPU cost the side by sides saw.
MMAP_THRESHOLD_BYTES = 256 * 1024
_M_MMAP_THRESHOLD = -3  # malloc.h


def fix_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold (see MMAP_THRESHOLD_BYTES); whether it was set. Elsewhere (another libc, another
    allocator) nothing changes."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1


def run_service(settings: Settings) -> int:
    """Run a worker until SIGTERM/SIGINT: 0 on a clean stop, 1 on a failure, 2 when it cannot start as set up."""
    configure_logging(settings.log_level)
    gc.set_threshold(*GC_THRESHOLDS)
    fix_mmap_threshold()

    async def main() -> int:
        worker = Worker(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        try:
            await worker.run()
        except (PendingMigrations, Unreachable) as exc:
            # The operator's mistake or an absent dependency: one line, the traceback only at debug level.
            log.error(str(exc), exc_info=log.isEnabledFor(logging.DEBUG))
            return 2
        except Exception:
            log.exception("stopping on an unexpected error; nothing past the last commit was committed")
            return 1
        return 0

    return asyncio.run(main())
