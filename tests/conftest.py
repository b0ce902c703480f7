"""Real services for the tests: a Kafka broker and a PostgreSQL server, never a stand-in.

Where they come from, in order:
1. `OCPP_KAFKA_BOOTSTRAP_SERVERS` and `OCPP_DATABASE_URL`, as `make test` sets them after `make up`;
2. testcontainers, when a Docker engine is reachable;
3. otherwise the run stops at once with a message that says to run `make up` — it never skips.

Every test gets its own database (created from nothing, dropped afterwards) and its own uniquely named topics,
so tests cannot see each other's rows or records and may run in any order.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from consumer.tools.support import drop_database

MISSING_SERVICES = (
    "The tests need a real Kafka broker and a real PostgreSQL server, and found neither configured nor a Docker "
    "engine for testcontainers. Run `make up` (then `make test`), or set OCPP_KAFKA_BOOTSTRAP_SERVERS and "
    "OCPP_DATABASE_URL."
)


def _docker_reachable() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # any failure to reach an engine means "no Docker here"
        return False


@pytest.fixture(scope="session")
def services() -> Iterator[tuple[str, str]]:
    """(Kafka bootstrap servers, PostgreSQL admin DSN) of real servers, for the whole session."""
    bootstrap = os.environ.get("OCPP_KAFKA_BOOTSTRAP_SERVERS")
    dsn = os.environ.get("OCPP_DATABASE_URL")
    if bootstrap and dsn:
        yield bootstrap, dsn
        return
    if not _docker_reachable():
        pytest.exit(MISSING_SERVICES, returncode=3)
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka, PostgresContainer(
        "postgres:16", driver=None
    ) as postgres:
        yield kafka.get_bootstrap_server(), postgres.get_connection_url()


@pytest.fixture(scope="session")
def kafka_bootstrap(services: tuple[str, str]) -> str:
    return services[0]


@pytest.fixture(scope="session")
def admin_dsn(services: tuple[str, str]) -> str:
    return services[1]


def dsn_for_database(dsn: str, database: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture
async def database_url(admin_dsn: str) -> AsyncIterator[str]:
    """DSN of a new, empty database that is dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield dsn_for_database(admin_dsn, name)
        await drop_database(admin, name)
    finally:
        await admin.close()


@pytest.fixture
async def topic_factory(kafka_bootstrap: str) -> AsyncIterator:
    """Create uniquely named topics for one test; all are deleted after it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    created: list[str] = []

    async def create(prefix: str = "t", partitions: int = 1) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        created.append(name)
        return name

    try:
        yield create
    finally:
        if created:
            await admin.delete_topics(created)
        await admin.close()
