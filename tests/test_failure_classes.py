"""Failures classified by what they mean, each raised from its real source: a real PostgreSQL, a real broker, a
real relay. Waited out: the dependency is away or asks us to try again. Fatal: only a person can fix it.
docs/failures.md is the table these tests keep honest."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from consumer.retry import is_data_error, is_transient_database_error, is_transient_kafka_error
from consumer.tools.relay import TcpProxy, free_port

pytestmark = [pytest.mark.postgres]


async def raised(call) -> BaseException:
    try:
        await call
    except BaseException as exc:  # noqa: BLE001 - the point is to capture whatever the real source raises
        return exc
    raise AssertionError("expected the call to fail")


def with_netloc(dsn: str, netloc: str, query: str = "") -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(netloc=netloc, query=query or parts.query))


async def test_connection_refused_is_waited_out(admin_dsn):
    exc = await raised(asyncpg.connect(with_netloc(admin_dsn, f"ocpp:ocpp@127.0.0.1:{free_port()}")))
    assert isinstance(exc, ConnectionRefusedError) and is_transient_database_error(exc)


async def test_connection_reset_mid_statement_is_waited_out(database_url):
    target = urlsplit(database_url)
    proxy = TcpProxy(target.hostname, target.port)
    await proxy.start()
    conn = await asyncpg.connect(with_netloc(database_url, f"{target.username}:{target.password}@127.0.0.1:{proxy.port}"))
    try:
        query = asyncio.create_task(conn.fetchval("SELECT pg_sleep(5)"))
        await asyncio.sleep(0.3)
        await proxy.cut()
        exc = await raised(query)
    finally:
        conn.terminate()
        proxy.thaw()
    assert is_transient_database_error(exc), repr(exc)


async def test_terminated_backend_lock_timeout_deadlock_serialization_and_timeout_are_waited_out(database_url):
    """What a busy or restarting server says: each is retried, never dead-lettered as data."""
    a, b, admin = [await asyncpg.connect(database_url) for _ in range(3)]
    try:
        await a.execute("CREATE TABLE t (k int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0), (2, 0)")
        # pg_terminate_backend, as a fast shutdown or an operator does: of an idle connection, and mid-statement
        pid = await a.fetchval("SELECT pg_backend_pid()")
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        terminated = await raised(a.fetchval("SELECT 1"))
        a = await asyncpg.connect(database_url)
        pid = await a.fetchval("SELECT pg_backend_pid()")
        sleeping = asyncio.create_task(a.fetchval("SELECT pg_sleep(5)"))
        await asyncio.sleep(0.2)
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        terminated_mid_statement = await raised(sleeping)
        a = await asyncpg.connect(database_url)
        # lock_timeout while another session holds the lock
        async with b.transaction():
            await b.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            await a.execute("SET lock_timeout = '100ms'")
            lock_timeout = await raised(a.execute("UPDATE t SET v = 1 WHERE k = 1"))
        # a statement timeout
        timeout = await raised(a.execute("SET statement_timeout = '50ms'; SELECT pg_sleep(1)"))
        await a.execute("RESET statement_timeout; RESET lock_timeout")
        # a deadlock: two sessions lock the two rows in opposite orders
        ta, tb = a.transaction(), b.transaction()
        await ta.start()
        await tb.start()
        await a.execute("UPDATE t SET v = 1 WHERE k = 1")
        await b.execute("UPDATE t SET v = 2 WHERE k = 2")
        results = await asyncio.gather(a.execute("UPDATE t SET v = 1 WHERE k = 2"),
                                       b.execute("UPDATE t SET v = 2 WHERE k = 1"), return_exceptions=True)
        deadlock = next(r for r in results if isinstance(r, BaseException))
        for tx in (ta, tb):
            await tx.rollback()
        # a serialization failure: two serializable transactions that read and write each other's rows
        ta, tb = a.transaction(isolation="serializable"), b.transaction(isolation="serializable")
        await ta.start()
        await tb.start()
        await a.fetch("SELECT sum(v) FROM t")
        await b.fetch("SELECT sum(v) FROM t")
        await a.execute("UPDATE t SET v = v + 1 WHERE k = 1")
        await b.execute("UPDATE t SET v = v + 1 WHERE k = 2")
        await ta.commit()
        serialization = await raised(tb.commit())
    finally:
        for conn in (a, b, admin):
            conn.terminate()
    # Used at once, a connection terminated while idle fails in one of several ways, depending on how much of the
    # termination asyncpg has read (its state machine, "connection is closed", or the server's reason).
    assert isinstance(terminated, (asyncpg.PostgresConnectionError, asyncpg.AdminShutdownError,
                                   asyncpg.InternalClientError, asyncpg.InterfaceError))
    assert isinstance(lock_timeout, asyncpg.LockNotAvailableError)
    assert isinstance(timeout, asyncpg.QueryCanceledError)
    assert isinstance(deadlock, asyncpg.DeadlockDetectedError)
    assert isinstance(serialization, asyncpg.SerializationError)
    assert isinstance(terminated_mid_statement, asyncpg.ConnectionDoesNotExistError)
    for exc in (terminated, terminated_mid_statement, lock_timeout, timeout, deadlock, serialization):
        assert is_transient_database_error(exc) and not is_data_error(exc), repr(exc)


async def test_name_resolution_tls_files_authentication_and_permissions_are_fatal(admin_dsn, database_url):
    """Waiting cannot fix these: a host name typo, a missing CA file, a wrong password, an unknown database,
    a role without privileges, a malformed DSN option."""
    parts = urlsplit(admin_dsn)
    typo = await raised(asyncpg.connect(with_netloc(admin_dsn, "ocpp:ocpp@no-such-host.invalid:5432")))
    missing_ca = await raised(asyncpg.connect(
        with_netloc(admin_dsn, parts.netloc, "sslmode=verify-full&sslrootcert=/nonexistent/root.crt")))
    password = await raised(asyncpg.connect(with_netloc(admin_dsn, f"{parts.username}:wrong@{parts.hostname}:{parts.port}")))
    unknown_db = await raised(asyncpg.connect(urlunsplit(parts._replace(path="/no_such_database"))))
    bad_option = await raised(asyncpg.connect(with_netloc(admin_dsn, parts.netloc, "sslmode=sometimes")))
    conn = await asyncpg.connect(database_url)
    try:  # what only a superuser may do, as the service's (non-superuser) role
        denied = await raised(conn.execute("ALTER SYSTEM SET work_mem = '8MB'"))
    finally:
        await conn.close()
    assert isinstance(typo, OSError) and isinstance(missing_ca, FileNotFoundError)
    assert isinstance(password, asyncpg.InvalidPasswordError)
    assert isinstance(unknown_db, asyncpg.InvalidCatalogNameError)
    assert isinstance(bad_option, asyncpg.ClientConfigurationError)
    assert isinstance(denied, asyncpg.InsufficientPrivilegeError)
    for exc in (typo, missing_ca, password, unknown_db, bad_option, denied):
        assert not is_transient_database_error(exc), repr(exc)
        assert not is_data_error(exc), repr(exc)


async def test_client_side_encoding_errors_are_data(database_url):
    """A parameter asyncpg cannot encode is the data's fault: the batch is split, not retried."""
    conn = await asyncpg.connect(database_url)
    try:
        exc = await raised(conn.fetchval("SELECT $1::int", "not a number"))
    finally:
        await conn.close()
    assert is_data_error(exc) and not is_transient_database_error(exc)


@pytest.mark.kafka
async def test_a_broker_that_is_away_is_waited_out():
    producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{free_port()}", request_timeout_ms=1000)
    exc = await raised(producer.start())
    await producer.stop()
    assert is_transient_kafka_error(exc), repr(exc)
