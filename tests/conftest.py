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
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from consumer.migrate import migrate
from consumer.settings import Settings
from consumer.tools.support import drop_database
from tests.service import Replica

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


@asynccontextmanager
async def connections(dsn: str, count: int) -> AsyncIterator[list[asyncpg.Connection]]:
    """`count` connections to `dsn`, all closed at the end (for the report's slices, one per job)."""
    conns = [await asyncpg.connect(dsn) for _ in range(count)]
    try:
        yield conns
    finally:
        for conn in conns:
            await conn.close()


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

    async def create(prefix: str = "t", partitions: int = 1, configs: dict[str, str] | None = None) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                            topic_configs=configs or {})])
        created.append(name)
        return name

    try:
        yield create
    finally:
        if created:
            await admin.delete_topics(created)
        await admin.close()


@pytest.fixture
async def db(database_url: str) -> str:
    """A new database with every migration applied."""
    await migrate(database_url)
    return database_url


@pytest.fixture
async def conn(db: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a new database with every migration applied."""
    connection = await asyncpg.connect(db)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
def make_settings(kafka_bootstrap: str):
    """Settings for a worker under test: fast fetches and retries, no metrics port, a group of its own."""

    def make(database_url: str, topic: str, dlq: str, **overrides) -> Settings:
        options = dict(
            kafka_bootstrap_servers=kafka_bootstrap, kafka_topics=topic, kafka_group_id=f"g-{uuid.uuid4().hex[:8]}",
            dlq_topic=dlq, database_url=database_url, metrics_port=0, batch_max_wait_ms=50, retry_max_seconds=1,
        )
        return Settings(**(options | overrides))

    return make


@pytest.fixture
def replicas(tmp_path, kafka_bootstrap):
    """Start `python -m consumer run` processes on the test's database and topic; all are killed afterwards."""
    started: list[Replica] = []

    def start(database_url: str, topic: str, group: str, **env_overrides: str) -> Replica:
        env = {
            **os.environ,
            "OCPP_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "OCPP_DATABASE_URL": database_url,
            "OCPP_KAFKA_TOPICS": topic,
            "OCPP_KAFKA_GROUP_ID": group,
            "OCPP_DLQ_TOPIC": f"{topic}.dlq",
            "OCPP_METRICS_PORT": "0",
            "OCPP_BATCH_MAX_WAIT_MS": "50",
            **env_overrides,
        }
        replica = Replica(env, tmp_path / f"replica-{len(started)}.log")
        started.append(replica)
        return replica

    yield start
    for replica in started:
        if replica.process.poll() is None:
            replica.process.kill()
            replica.process.wait()
