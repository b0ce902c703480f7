"""The service's connections, built from the settings in one place: the PostgreSQL pool, the Kafka consumer and
the dead-letter producer. Security options, timeouts and buffer bounds are decided here and nowhere else."""

from __future__ import annotations

import asyncio
import logging
import re

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.helpers import create_ssl_context

from consumer.settings import Settings

log = logging.getLogger("consumer")

METADATA_MAX_AGE_MS = 30_000
# Closing a Kafka client flushes and leaves the group: with the broker away it would wait forever.
CLOSE_TIMEOUT_SECONDS = 10.0
POOL_CLOSE_TIMEOUT_SECONDS = 5.0


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """A pool whose statements cannot hang forever: a lock or a dead TCP peer ends in an error we can retry."""
    return await asyncpg.create_pool(
        settings.database_url.get_secret_value(),
        min_size=1,
        max_size=settings.database_pool_size,
        command_timeout=settings.database_statement_timeout_seconds,
    )


def kafka_options(settings: Settings) -> dict:
    """Connection and security options shared by every Kafka client of the service."""
    s = settings
    options: dict = {"bootstrap_servers": s.kafka_bootstrap_servers, "security_protocol": s.kafka_security_protocol}
    if s.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(cafile=s.kafka_ssl_cafile)
    if s.kafka_security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = s.kafka_sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = s.kafka_sasl_username
        options["sasl_plain_password"] = s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else None
    return options


def create_consumer(settings: Settings, listener: ConsumerRebalanceListener) -> AIOKafkaConsumer:
    """A subscribed consumer that commits only when told to (offsets follow the database commit)."""
    s = settings
    consumer = AIOKafkaConsumer(
        **kafka_options(s),
        client_id=s.kafka_client_id,
        group_id=s.kafka_group_id,
        enable_auto_commit=False,
        # Records of aborted producer transactions must never be applied; lag is measured to the stable offset.
        isolation_level="read_committed",
        auto_offset_reset=s.kafka_auto_offset_reset,
        max_poll_records=s.batch_max_records,
        # What aiokafka buffers ahead is most of the consumer's memory in catch-up: bounded per partition, and
        # in total, whatever the number of partitions this replica owns (BENCHMARKS.md has the figures).
        max_partition_fetch_bytes=s.batch_max_bytes,
        fetch_max_bytes=4 * s.batch_max_bytes,
        fetch_max_wait_ms=s.batch_max_wait_ms,
        max_poll_interval_ms=s.kafka_max_poll_interval_ms,
        # Partitions added to a topic are found at the next metadata refresh: 30 s, not Kafka's 5 minutes, so
        # their records do not wait (the chaos run adds partitions mid-stream).
        metadata_max_age_ms=METADATA_MAX_AGE_MS,
    )
    consumer.subscribe(s.topics, listener=listener)
    return consumer


def create_producer(settings: Settings) -> AIOKafkaProducer:
    """The dead-letter producer: acknowledged by all in-sync replicas and idempotent, so that a retried send
    neither loses a dead letter nor writes it twice."""
    return AIOKafkaProducer(
        **kafka_options(settings), acks="all", enable_idempotence=True, linger_ms=5,
        client_id=f"{settings.kafka_client_id}-dlq",
    )


def describe_database(settings: Settings) -> str:
    """The DSN with its password masked, for messages: operators need to see which server, never the secret.

    By pattern rather than by URL parsing: a password with an un-encoded '/', '#' or '?' misleads a URL parser
    into leaving part of it in the host.
    """
    dsn = settings.database_url.get_secret_value()
    dsn = re.sub(r"(://[^:/@]*:).*@", r"\1***@", dsn)
    return re.sub(r"(password=)[^&\s]*", r"\1***", dsn)


async def close(consumer: AIOKafkaConsumer | None, producer: AIOKafkaProducer | None, pool: asyncpg.Pool | None,
                *, wait_for_database: bool) -> None:
    """Close everything, each within a bound, whatever state it is in; closing must not hide the error that
    brought us here, so failures are logged, not raised.

    The consumer goes first: leaving the group promptly lets the other replicas take its partitions now, not
    after a session timeout. A pool whose connections may hang (a batch abandoned on a hung database) is
    terminated instead of waited for.
    """
    for client in (consumer, producer):
        if client is not None:
            try:
                await asyncio.wait_for(client.stop(), timeout=CLOSE_TIMEOUT_SECONDS)
            except Exception:
                log.exception("error while closing a Kafka client")
    if pool is not None:
        try:
            await asyncio.wait_for(pool.close(), timeout=POOL_CLOSE_TIMEOUT_SECONDS if wait_for_database else 0)
        except Exception:
            pool.terminate()
