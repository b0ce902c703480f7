"""The service's connections, built from the settings in one place: the PostgreSQL pool, the Kafka consumer and
the dead-letter producer. Security options, timeouts and buffer bounds are decided here and nowhere else.

At start-up a failure that waiting cannot fix — a host name that does not resolve, a certificate that is not
trusted or not presented, refused credentials, an unreadable file — is raised as `FatalConnectionError`, which
no retry accepts, so the process stops with one line naming the server and the cause. Later, a lost connection
is the retry policy's business (`consumer/retry.py`), as before.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka import errors as kafka_errors
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.protocol.metadata import MetadataRequest

from consumer.settings import Settings

log = logging.getLogger("consumer")

METADATA_MAX_AGE_MS = 30_000
# Closing a Kafka client flushes and leaves the group: with the broker away it would wait forever.
CLOSE_TIMEOUT_SECONDS = 10.0
POOL_CLOSE_TIMEOUT_SECONDS = 5.0
# How long the start-up check waits for one bootstrap server's TLS handshake, authentication and first answer.
KAFKA_CHECK_TIMEOUT_MS = 15_000

# OpenSSL's reasons when the broker refuses our side of the handshake: no client certificate, or one it does not
# trust (TLS 1.3 reports a missing one as CERTIFICATE_REQUIRED; TLS 1.2 as a handshake failure).
_CLIENT_CERTIFICATE_REFUSED = ("CERTIFICATE_REQUIRED", "HANDSHAKE_FAILURE", "BAD_CERTIFICATE", "UNKNOWN_CA",
                               "CERTIFICATE_UNKNOWN", "ACCESS_DENIED")


# The first two bytes of a TLS record: an alert or a handshake, protocol version 3.x (TLS 1.0 to 1.3).
_TLS_RECORDS = (0x1503, 0x1603)


class FatalConnectionError(Exception):
    """Connecting failed in a way that waiting cannot fix; the message names the cause and what to check."""


# ---------------------------------------------------------------------------------------------- PostgreSQL


def database_connect_options(settings: Settings) -> dict:
    """What every connection of the service passes to asyncpg besides the DSN (the pool's and `migrate`'s)."""
    options: dict = {"statement_cache_size": settings.database_statement_cache_size}
    if settings.database_password_value is not None:
        options["password"] = settings.database_password_value
    return options


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """A pool whose statements cannot hang forever: a lock or a dead TCP peer ends in an error we can retry.

    Raises FatalConnectionError when the server cannot be reached as configured (see `fatal_database_error`).
    """
    try:
        return await asyncpg.create_pool(
            settings.database_url.get_secret_value(),
            **database_connect_options(settings),
            min_size=1,
            max_size=settings.database_pool_size,
            command_timeout=settings.database_statement_timeout_seconds,
        )
    except Exception as exc:
        reason = fatal_database_error(exc)
        if reason is None:
            raise
        raise FatalConnectionError(reason) from exc


def fatal_database_error(exc: BaseException) -> str | None:
    """What a connect error means when waiting cannot fix it (None for one worth waiting out)."""
    for error in _chain(exc):
        if isinstance(error, socket.gaierror):
            return f"the host name does not resolve ({error.strerror})"
        if isinstance(error, ssl.SSLCertVerificationError):
            return (f"the server's certificate is not trusted ({error.verify_message}): is the DSN's sslrootcert "
                    "the CA that signed it, and does the certificate name the host connected to?")
        if isinstance(error, ssl.SSLError):
            return f"TLS failed: {_ssl_reason(error)}"
        if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError)):
            return f"cannot read {error.filename}: {error.strerror}"
        if isinstance(error, ConnectionError) and "rejected SSL upgrade" in str(error):
            return "the server does not offer TLS, and the DSN's sslmode requires it"
        if isinstance(error, (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidPasswordError)):
            return f"the server refused the login: {error}"
        if isinstance(error, asyncpg.InvalidCatalogNameError):
            return f"no such database: {error}"
    return None


def describe_database(settings: Settings) -> str:
    """The DSN with its password masked, for messages: operators need to see which server, never the secret.

    By pattern rather than by URL parsing: a password with an un-encoded '/', '#' or '?' misleads a URL parser
    into leaving part of it in the host.
    """
    dsn = settings.database_url.get_secret_value()
    dsn = re.sub(r"(://[^:/@]*:).*@", r"\1***@", dsn)
    return re.sub(r"(password=)[^&\s]*", r"\1***", dsn)


# ---------------------------------------------------------------------------------------------- Kafka


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext:
    """Verify the brokers (against OCPP_KAFKA_SSL_CAFILE, else the system's CAs) and their host names; present
    the client certificate when one is set. settings.py has checked that the files load."""
    s = settings
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=s.kafka_ssl_cafile)
    if s.kafka_ssl_certfile is not None:
        context.load_cert_chain(s.kafka_ssl_certfile, s.kafka_ssl_keyfile, password=s.kafka_key_password or "")
    return context


def kafka_security_options(settings: Settings) -> dict:
    """The security options of every Kafka client: the consumer, the dead-letter producer, admin clients, the
    simulator. An empty dict under PLAINTEXT."""
    s = settings
    options: dict = {"security_protocol": s.kafka_security_protocol}
    if s.kafka_tls:
        options["ssl_context"] = kafka_ssl_context(s)
    if s.kafka_sasl:
        options["sasl_mechanism"] = s.kafka_sasl_mechanism
        options["sasl_plain_username"] = s.kafka_sasl_username
        options["sasl_plain_password"] = s.kafka_password
    return options


def kafka_options(settings: Settings) -> dict:
    """Connection and security options shared by every Kafka client of the service."""
    return {"bootstrap_servers": settings.kafka_bootstrap_servers, **kafka_security_options(settings)}


async def check_kafka_access(settings: Settings) -> None:
    """Connect to the bootstrap servers as the clients will — TCP, TLS handshake, SASL authentication, a metadata
    request — and stop at the first that answers.

    aiokafka's own start-up logs why each server failed but raises only "Unable to bootstrap", which looks like a
    broker that is away and is waited out. Here a failure that only a person can fix raises
    FatalConnectionError naming the server, the cause and the variables to check; one worth waiting out raises
    KafkaConnectionError.
    """
    security = kafka_security_options(settings)
    reasons: list[str] = []
    fatal: list[str] = []
    for host, port, _family in collect_hosts(settings.kafka_bootstrap_servers, randomize=False):
        try:
            conn = await create_conn(host, port, client_id=settings.kafka_client_id,
                                     request_timeout_ms=KAFKA_CHECK_TIMEOUT_MS, **security)
        except Exception as exc:
            reason = _fatal_kafka_error(exc, settings)
            if reason is not None:
                fatal.append(f"{host}:{port}: {reason}")
            reasons.append(f"{host}:{port}: {_describe(exc)}")
            continue
        try:
            await conn.send(MetadataRequest([]))  # the first request aiokafka's bootstrap makes
        except (kafka_errors.KafkaError, asyncio.TimeoutError) as exc:
            if settings.kafka_security_protocol != "PLAINTEXT" and isinstance(exc, kafka_errors.KafkaConnectionError):
                # The broker let us through the handshake, then hung up on the first real request: what a SASL
                # listener does to a client that did not authenticate.
                fatal.append(f"{host}:{port}: the broker closed the connection at the first request after the "
                             f"{settings.kafka_security_protocol} handshake: does this listener expect another "
                             "OCPP_KAFKA_SECURITY_PROTOCOL (SASL_SSL rather than SSL)?")
            reasons.append(f"{host}:{port}: {_describe(exc)}")
            continue
        finally:
            conn.close()
        return
    if fatal:
        raise FatalConnectionError("; ".join(fatal))
    raise kafka_errors.KafkaConnectionError("; ".join(reasons))


def _fatal_kafka_error(exc: BaseException, settings: Settings) -> str | None:
    s = settings
    for error in _chain(exc):
        if isinstance(error, socket.gaierror):
            return f"the host name does not resolve ({error.strerror})"
        if isinstance(error, ssl.SSLCertVerificationError):
            return (f"the broker's certificate is not trusted ({error.verify_message}): is OCPP_KAFKA_SSL_CAFILE "
                    "the CA that signed it, and does the certificate name the host in OCPP_KAFKA_BOOTSTRAP_SERVERS?")
        if isinstance(error, ssl.SSLError):
            reason = _ssl_reason(error)
            if any(refusal in reason.upper() for refusal in _CLIENT_CERTIFICATE_REFUSED):
                presented = ("the client certificate in OCPP_KAFKA_SSL_CERTFILE was refused"
                             if s.kafka_ssl_certfile else "no client certificate was presented")
                return (f"the broker refused the TLS handshake ({reason}): {presented}; this listener requires one "
                        "it trusts (OCPP_KAFKA_SSL_CERTFILE, OCPP_KAFKA_SSL_KEYFILE)")
            return f"TLS failed ({reason}): is this a TLS listener, and OCPP_KAFKA_SECURITY_PROTOCOL right for it?"
        if isinstance(error, (kafka_errors.SaslAuthenticationFailed, kafka_errors.AuthenticationFailedError)):
            return (f"SASL authentication of user {s.kafka_sasl_username!r} with {s.kafka_sasl_mechanism} was "
                    f"refused ({error}): check OCPP_KAFKA_SASL_USERNAME, OCPP_KAFKA_SASL_PASSWORD and "
                    "OCPP_KAFKA_SASL_MECHANISM")
        if isinstance(error, kafka_errors.IllegalSaslStateError):
            return ("the broker refused the SASL handshake: is this a SASL listener? check "
                    "OCPP_KAFKA_SECURITY_PROTOCOL and OCPP_KAFKA_BOOTSTRAP_SERVERS")
        if isinstance(error, (kafka_errors.UnsupportedSaslMechanismError,
                              kafka_errors.AuthenticationMethodNotSupported)):
            return f"the broker does not accept this SASL mechanism ({error}): check OCPP_KAFKA_SASL_MECHANISM"
        if isinstance(error, asyncio.IncompleteReadError) and (error.expected or 0) >> 16 in _TLS_RECORDS:
            # The "size" of the answer is the start of a TLS record: we spoke plain Kafka to a TLS listener.
            return ("the broker answered in TLS: this is a TLS listener, so OCPP_KAFKA_SECURITY_PROTOCOL must be "
                    "SSL or SASL_SSL")
        if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError)):
            return f"cannot read {error.filename}: {error.strerror}"
    return None


def _chain(exc: BaseException):
    """The exception and what it was raised from, outermost first (the cause a client wrapped)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _ssl_reason(error: ssl.SSLError) -> str:
    return getattr(error, "reason", None) or str(error)


def _describe(exc: BaseException) -> str:
    causes = [f"{type(e).__name__}: {e}" for e in _chain(exc)]
    return " ← ".join(causes[:2])


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
        # What aiokafka holds is most of the consumer's memory in catch-up: up to max_partition_fetch_bytes of
        # unread records per owned partition, and while a fetch response is read, about three copies of it
        # (the socket buffer, the response, its record sets). At 32 MiB per response those copies were 100 MB
        # of a fleet's 320 MB peak; 8 MiB responses took it to 191 MB, for ~4 % of a small fleet's catch-up
        # (BENCHMARKS.md, "Fleet scale (#15): the fetch response is read three times").
        max_partition_fetch_bytes=s.batch_max_bytes,
        fetch_max_bytes=2 * s.batch_max_bytes,
        # A live stream arrives a few records at a time. Answered at once, every few milliseconds, each fetch and
        # the small write after it cost more CPU than their records: 1.4 ms per event at 300 events/s, 0.42 at
        # 1,000. Held by the broker for fetch_min_bytes or fetch_max_wait_ms, they gather: 0.41 and 0.15 ms
        # (BENCHMARKS.md, "Fetches gather records"). A fetch holds at most batch_max_bytes of a partition, so
        # more than that could never be met by a replica with one partition.
        fetch_min_bytes=min(s.kafka_fetch_min_bytes, s.batch_max_bytes),
        fetch_max_wait_ms=s.kafka_fetch_max_wait_ms,
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
