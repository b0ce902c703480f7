"""Which failures are time (retry them) and which are data (split the batch and dead-letter the culprit).

Retries are only for the named transient types below, never a bare Exception: anything unforeseen stops the
service without committing, and the supervisor's restart replays the batch, which the idempotent SQL makes safe.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from aiokafka import errors as kafka_errors
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, stop_never, wait_random_exponential

log = logging.getLogger("consumer")
T = TypeVar("T")

# How often a back-off checks the shutdown deadline: SIGTERM must not wait out a 30 s back-off.
DEADLINE_CHECK_SECONDS = 0.5

# Waited out: the server is unreachable, restarting, shutting down, overloaded, or asked us to try the transaction
# again. docs/failures.md lists every class and what the service does with it.
TRANSIENT_DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted, broken pipe: the server is down, restarting, or the network blinked
    TimeoutError,  # a connect or a statement that took too long (asyncio.TimeoutError is the same class)
    asyncpg.exceptions.PostgresConnectionError,  # class 08, incl. "connection was closed in the middle of operation"
    asyncpg.exceptions.CannotConnectNowError,  # the server is starting up or shutting down
    asyncpg.exceptions.AdminShutdownError,  # pg_terminate_backend, or a fast shutdown
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TransactionRollbackError,  # serialization failure, deadlock detected
    asyncpg.exceptions.LockNotAvailableError,  # lock_timeout: someone else holds the lock, for now
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.exceptions.QueryCanceledError,  # a statement timeout, or pg_cancel_backend
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # a failover in progress: we reached the old primary
    # A connection the server terminated while it sat idle in the pool, used before asyncpg has read the
    # termination: "cannot switch to state …; another operation is in progress" (tests/test_failure_classes.py
    # raises it from a real server). The retry takes a fresh connection from the pool.
    asyncpg.exceptions.InternalClientError,
)

# OS errors that only a person can fix: a host name that does not resolve, a TLS or certificate failure, a
# missing or unreadable file (a CA, a client key). They are OSErrors like a refused connection, so they are
# named here and checked first, or they would be waited out forever.
FATAL_OS_ERRORS: tuple[type[BaseException], ...] = (
    socket.gaierror, ssl.SSLError, ssl.CertificateError, FileNotFoundError, PermissionError, IsADirectoryError,
    NotADirectoryError,
)
# Network errnos that a plain OSError (not a ConnectionError) carries when the path to the server is down.
_NETWORK_ERRNOS = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTDOWN,
                             errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT})

# The database refuses the data itself: retrying cannot help, finding the event that causes it can.
DATA_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DataError,  # class 22: value too long, invalid text representation, ...
    asyncpg.exceptions.IntegrityConstraintViolationError,  # class 23: check, not-null, foreign key
)


def is_data_error(exc: BaseException) -> bool:
    """Refused by the server as data (DATA_ERRORS), or a parameter asyncpg could not encode.

    asyncpg's encoding error is a private class (an InterfaceError that is also a ValueError); it is recognised
    by those two public bases rather than imported from asyncpg's internals. ClientConfigurationError has the
    same two bases and is configuration, not data.
    """
    if isinstance(exc, DATA_ERRORS):
        return True
    return (isinstance(exc, asyncpg.exceptions.InterfaceError) and isinstance(exc, ValueError)
            and not isinstance(exc, asyncpg.exceptions.ClientConfigurationError))


def is_transient_database_error(exc: BaseException) -> bool:
    """A named transient type; or asyncpg's InterfaceError when it only reports a connection that died.

    asyncpg raises InterfaceError for misuse and bad configuration too, which must not be retried forever. But
    a connection lost inside a transaction surfaces as an InterfaceError raised while leaving the transaction,
    with the real, transient error as its context; and a pooled connection the server closed reports
    "connection is closed". Only those are retried; a ClientConfigurationError never is, whatever it chains to
    (a missing sslrootcert is a FileNotFoundError underneath, which is fatal anyway).
    """
    if isinstance(exc, FATAL_OS_ERRORS):
        return False
    if isinstance(exc, TRANSIENT_DATABASE_ERRORS):
        return True
    if type(exc) is OSError:  # the bare class: judged by its errno
        return exc.errno in _NETWORK_ERRNOS
    if isinstance(exc, asyncpg.exceptions.ClientConfigurationError):
        return False
    if isinstance(exc, asyncpg.exceptions.InterfaceError) and not is_data_error(exc):
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
    is_transient: Callable[[BaseException], bool], *, max_wait_seconds: float, sleep, before_sleep=None,
    give_up_after: float | None = None,
) -> AsyncRetrying:
    """Retry on what `is_transient` accepts, with jittered exponential backoff capped at `max_wait_seconds`.

    By default there is no attempt cap on purpose: the batch in hand has not reached the database, and giving up
    would mean either losing it or committing past it. Only start-up gives up (`give_up_after` seconds, then the
    last error is raised), because with nothing in hand an operator is better served by one clear line. `sleep`
    may raise to abandon the retry, e.g. at shutdown.
    """
    return AsyncRetrying(
        retry=retry_if_exception(is_transient),
        stop=stop_never if give_up_after is None else stop_after_delay(give_up_after),
        wait=wait_random_exponential(multiplier=0.1, max=max_wait_seconds),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )


class ShutdownAbandon(Exception):
    """The shutdown deadline passed while work was still waiting on a dependency: leave it uncommitted."""


class Retrier:
    """Runs a call until it succeeds, waiting out transient failures; every retry is counted and logged.

    The worker hands one to each stage, so that every wait on PostgreSQL or Kafka obeys one policy: jittered,
    capped back-off with no attempt cap, and ShutdownAbandon once the shutdown deadline passes. (Group
    membership during a long wait is the worker's job: it polls with partitions paused meanwhile.)
    """

    def __init__(self, *, max_wait_seconds: float, on_retry: Callable[[str], None],
                 deadline: Callable[[], float | None], waiting: Callable[[], None] = lambda: None) -> None:
        self.max_wait_seconds = max_wait_seconds
        self._on_retry = on_retry
        self._deadline = deadline
        self._waiting = waiting  # called as the back-off goes on: a process that waits is alive, not stuck

    async def __call__(self, operation: str, is_transient: Callable[[BaseException], bool],
                       call: Callable[[], Awaitable[T]], *, give_up_after: float | None = None) -> T:
        def before_sleep(state) -> None:
            self._on_retry(operation)
            error = state.outcome.exception()
            log.warning(
                "transient failure, retrying",
                extra={"operation": operation, "attempt": state.attempt_number,
                       "error": f"{type(error).__name__}: {error}", "wait_s": round(state.next_action.sleep, 2)},
            )

        async for attempt in retrying(
            is_transient, max_wait_seconds=self.max_wait_seconds, sleep=self._sleep, before_sleep=before_sleep,
            give_up_after=give_up_after,
        ):
            with attempt:
                return await call()
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    def check_deadline(self) -> None:
        deadline = self._deadline()
        if deadline is not None and time.monotonic() > deadline:
            raise ShutdownAbandon()

    async def _sleep(self, seconds: float) -> None:
        """Back off, unless shutdown's deadline passes first: then the work in hand is left uncommitted."""
        until = time.monotonic() + seconds
        while (remaining := until - time.monotonic()) > 0:
            self.check_deadline()
            self._waiting()
            await asyncio.sleep(min(remaining, DEADLINE_CHECK_SECONDS))
