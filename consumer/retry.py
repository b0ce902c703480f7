"""Which failures are time (retry them) and which are data (split the batch and dead-letter the culprit).

Retries are only for the named transient types below, never a bare Exception: anything unforeseen stops the
service without committing, and the supervisor's restart replays the batch, which the idempotent SQL makes safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
from aiokafka import errors as kafka_errors
from tenacity import AsyncRetrying, retry_if_exception, wait_random_exponential

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
    asyncpg.exceptions.QueryCanceledError,  # a statement timeout, or pg_cancel_backend
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # a failover in progress: we reached the old primary
)

# The database refuses the data itself: retrying cannot help, finding the event that causes it can.
DATA_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DataError,  # class 22: value too long, invalid text representation, ...
    asyncpg.exceptions.IntegrityConstraintViolationError,  # class 23: check, not-null, foreign key
    asyncpg.exceptions._base.DataError,  # asyncpg could not encode a parameter
)


def is_transient_database_error(exc: BaseException) -> bool:
    """A named transient type; or asyncpg's InterfaceError when it only reports a connection that died.

    asyncpg raises InterfaceError for misuse and bad configuration too (a DSN typo), which must not be retried
    forever. But a connection lost inside a transaction surfaces as an InterfaceError raised while leaving the
    transaction, with the real, transient error as its context; and a pooled connection the server closed
    reports "connection is closed". Only those are retried.
    """
    if isinstance(exc, TRANSIENT_DATABASE_ERRORS):
        return True
    if isinstance(exc, asyncpg.exceptions.InterfaceError) and not isinstance(exc, DATA_ERRORS):
        cause = exc.__cause__ or exc.__context__
        if cause is not None and cause is not exc and is_transient_database_error(cause):
            return True
        return "connection is closed" in str(exc)
    return False


def is_transient_kafka_error(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_KAFKA_ERRORS)

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
    is_transient: Callable[[BaseException], bool], *, max_wait_seconds: float, sleep, before_sleep=None
) -> AsyncRetrying:
    """Retry forever on what `is_transient` accepts, with jittered exponential backoff capped at `max_wait_seconds`.

    There is no attempt cap on purpose: the batch in hand has not reached the database, and giving up would
    mean either losing it or committing past it. `sleep` is where the caller keeps its group membership alive
    (and may raise to abandon the retry, e.g. at shutdown).
    """
    return AsyncRetrying(
        retry=retry_if_exception(is_transient),
        wait=wait_random_exponential(multiplier=0.1, max=max_wait_seconds),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
