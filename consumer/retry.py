"""Which failures are time (retry them) and which are data (split the batch and dead-letter the culprit).

Retries are only for the named transient types below, never a bare Exception: anything unforeseen stops the
service without committing, and the supervisor's restart replays the batch, which the idempotent SQL makes safe.
"""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka import errors as kafka_errors
from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential

# The server is unreachable, restarting, shutting down, overloaded, or asked us to try the transaction again.
TRANSIENT_DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # connection refused or reset: the server is down or restarting
    asyncio.TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,  # class 08, incl. "connection was closed in the middle of operation"
    asyncpg.exceptions.CannotConnectNowError,  # the server is starting up or shutting down
    asyncpg.exceptions.AdminShutdownError,  # pg_terminate_backend, or a fast shutdown
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TransactionRollbackError,  # serialization failure, deadlock detected
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.exceptions.InterfaceError,  # the pool handed out a connection that the server has since closed
)

# The database refuses the data itself: retrying cannot help, finding the event that causes it can.
DATA_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DataError,  # class 22: value too long, invalid text representation, ...
    asyncpg.exceptions.IntegrityConstraintViolationError,  # class 23: check, not-null, foreign key
)

# The broker is unreachable, or the group coordinator moved; the client recovers once the cluster settles.
TRANSIENT_KAFKA_ERRORS: tuple[type[BaseException], ...] = (
    kafka_errors.KafkaConnectionError,
    kafka_errors.NodeNotReadyError,
    kafka_errors.RequestTimedOutError,
    kafka_errors.KafkaTimeoutError,
    kafka_errors.NotCoordinatorForGroupError,
    kafka_errors.GroupCoordinatorNotAvailableError,
    kafka_errors.GroupLoadInProgressError,
    kafka_errors.NotLeaderForPartitionError,
    kafka_errors.LeaderNotAvailableError,
    kafka_errors.NotEnoughReplicasError,
    kafka_errors.NotEnoughReplicasAfterAppendError,
)

def retrying(
    transient: tuple[type[BaseException], ...], *, max_wait_seconds: float, sleep, before_sleep=None
) -> AsyncRetrying:
    """Retry forever on `transient`, with jittered exponential backoff capped at `max_wait_seconds`.

    There is no attempt cap on purpose: the batch in hand has not reached the database, and giving up would
    mean either losing it or committing past it. `sleep` is where the caller keeps its group membership alive
    (and may raise to abandon the retry, e.g. at shutdown).
    """
    return AsyncRetrying(
        retry=retry_if_exception_type(transient),
        wait=wait_random_exponential(multiplier=0.1, max=max_wait_seconds),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
