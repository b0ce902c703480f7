"""Production-shaped connections against the real secured listeners of the local stack (no mocks): SASL_SSL with
SCRAM on 9093, TLS with required client certificates on 9094, SASL_PLAINTEXT on 9095, PostgreSQL with
sslmode=verify-full as the least-privilege writer; and the failures an operator can cause, each one clear line
and exit 2 at once rather than a retry loop. The stack's writer password holds / # ? @ % :, so every test here
also shows that it never reaches a DSN or the output.
"""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.request
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from consumer.settings import Settings
from consumer.tools.relay import free_port
from consumer.worker import Worker
from tests.feed import invalid_records, valid_records
from tests.kafka_utils import committed_offsets, end_offsets, produce, wait_until
from tests.secure_stack import (
    assert_no_secret,
    error_lines,
    on_database,
    read_secret,
    run_command,
    service_env,
    stack_env,
    untrusted_ca,
)
from tests.service import expected_from, running, tables

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

# What a start-up failure that waiting cannot fix may take at most: no back-off, no start-up timeout.
FAST_SECONDS = 20


async def _wait_committed(bootstrap: str, group: str, topic: str, count: int, *, timeout: float,
                          alive=lambda: None) -> None:
    """Until the group has committed `count` records of the topic; `alive()` fails the wait at once if the
    consumer is gone."""

    async def done() -> bool:
        alive()
        return sum((await committed_offsets(bootstrap, group, topic)).values()) >= count

    await wait_until(done, timeout=timeout, what=f"group {group} to commit {count} records of {topic}")


def _settings_from(env: dict[str, str], **overrides) -> Settings:
    """Settings built from `stack.sh env` lines, as the process would read them from its environment."""
    options = {name.removeprefix("OCPP_").lower(): value for name, value in env.items()}
    return Settings(**(options | overrides))


async def _other_sessions(dsn: str, password: str) -> list[asyncpg.Record]:
    """The other sessions of the DSN's user in its database, with whether each is TLS (a role sees all of its own
    sessions' details)."""
    conn = await asyncpg.connect(dsn, password=password)
    try:
        return await conn.fetch(
            "SELECT a.pid, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
            "WHERE a.usename = current_user AND a.datname = current_database() AND a.pid <> pg_backend_pid()")
    finally:
        await conn.close()


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--secure", "--mtls"])
async def test_run_end_to_end_over_the_secured_listeners(flag, kafka_bootstrap, topic_factory, db, replicas):
    """`ocpp-consumer run` as `stack.sh env --secure` (SASL_SSL, SCRAM-SHA-512, 9093) or `--mtls` (client
    certificate, 9094) sets it up, PostgreSQL over verify-full as ocpp_app: every record lands, the database
    session is TLS as the writer, and neither password appears in its output."""
    env = stack_env(flag)
    assert env["OCPP_DATABASE_URL"].startswith("postgresql://ocpp_app@")
    assert "sslmode=verify-full" in env["OCPP_DATABASE_URL"]
    topic = await topic_factory("secure")
    group = f"g-{uuid.uuid4().hex[:8]}"
    records = valid_records(3000, seed=71, charge_points=30)
    await produce(kafka_bootstrap, topic, records)  # through the plain listener: the same broker, the same topic
    overrides = {k: v for k, v in env.items() if k != "OCPP_DATABASE_URL"}
    replica = replicas(on_database(env["OCPP_DATABASE_URL"], db), topic, group, OCPP_BATCH_MAX_RECORDS="500",
                       **overrides)
    def alive() -> None:
        assert replica.process.poll() is None, replica.log_path.read_text()[-3000:]

    await _wait_committed(kafka_bootstrap, group, topic, len(records), timeout=90, alive=alive)
    writer_password = read_secret(env, "OCPP_DATABASE_PASSWORD_FILE")
    sessions = await _other_sessions(on_database(env["OCPP_DATABASE_URL"], db), writer_password)
    assert sessions and all(row["ssl"] for row in sessions), sessions  # the consumer's pool, over TLS
    replica.signal(signal.SIGTERM)
    assert await replica.wait(30) == 0
    assert await tables(db) == expected_from(records)
    output = replica.log_path.read_text()
    assert '"msg":"consuming"' in output
    assert_no_secret(output, writer_password)
    if "OCPP_KAFKA_SASL_PASSWORD_FILE" in env:
        assert_no_secret(output, read_secret(env, "OCPP_KAFKA_SASL_PASSWORD_FILE"))


@pytest.mark.parametrize(
    ("flag", "mechanism"),
    [("--secure", "PLAIN"), ("--secure", "SCRAM-SHA-256"), ("--sasl-plaintext", "SCRAM-SHA-512"),
     ("--sasl-plaintext", "SCRAM-SHA-256"), ("--sasl-plaintext", "PLAIN")],
)
async def test_every_sasl_mechanism_over_both_sasl_protocols(flag, mechanism, kafka_bootstrap, topic_factory, db):
    """PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, over SASL_SSL and SASL_PLAINTEXT: the worker consumes and writes.
    (SCRAM-SHA-512 over SASL_SSL is the end-to-end test above.)"""
    env = stack_env(flag)
    topic = await topic_factory("sasl")
    records = valid_records(200, seed=72, charge_points=5)
    await produce(kafka_bootstrap, topic, records)
    # One user per mechanism in the stack: a client that used another mechanism than it says is refused.
    user = {"SCRAM-SHA-512": "ocpp", "SCRAM-SHA-256": "ocpp_sha256", "PLAIN": "ocpp_plain"}[mechanism]
    settings = _settings_from(env, kafka_sasl_mechanism=mechanism, kafka_sasl_username=user, kafka_topics=topic,
                              kafka_group_id=f"g-{uuid.uuid4().hex[:8]}", dlq_topic=f"{topic}.dlq", metrics_port=0,
                              batch_max_wait_ms=50, retry_max_seconds=1,
                              database_url=on_database(env["OCPP_DATABASE_URL"], db))
    worker = Worker(settings)
    async with running(worker) as task:
        def alive() -> None:
            if task.done():
                task.result()  # the worker's own error
                raise AssertionError("the worker stopped")

        await _wait_committed(kafka_bootstrap, settings.kafka_group_id, topic, len(records), timeout=60, alive=alive)
    assert await tables(db) == expected_from(records)


async def _run_until_consuming(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    import sys

    from tests.secure_stack import ROOT

    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "consumer", "run", env=env, cwd=ROOT,
                                                   stdout=log.open("ab"), stderr=asyncio.subprocess.STDOUT)

    async def consuming() -> bool:
        assert process.returncode is None, log.read_text()[-2000:]
        return '"msg":"consuming"' in log.read_text()

    await wait_until(consuming, timeout=60, what="the consumer to start consuming")
    return process


@pytest.mark.slow
async def test_a_password_with_url_characters_never_appears(tmp_path, kafka_bootstrap, topic_factory, db):
    """The writer's password holds / # ? @ % and ':'. Un-encoded in the DSN it is a configuration error (exit 2,
    the DSN masked); percent-encoded, or given as OCPP_DATABASE_PASSWORD, `run` consumes and dead-letters; a
    wrong one is refused; `migrate` as the writer refuses. None of it prints any piece of the password: not the
    logs, not /metrics, not the dead letters' headers, not the settings' repr."""
    from urllib.parse import quote

    env = stack_env("--secure")
    password = read_secret(env, "OCPP_DATABASE_PASSWORD_FILE")
    assert all(char in password for char in "/#?@%")
    dsn = on_database(env["OCPP_DATABASE_URL"], db)
    base = {k: v for k, v in env.items() if not k.startswith("OCPP_DATABASE_")}
    raw_dsn = dsn.replace("ocpp_app@", f"ocpp_app:{password}@")
    encoded_dsn = dsn.replace("ocpp_app@", f"ocpp_app:{quote(password, safe='')}@")
    outputs = []

    for command in ("run", "migrate"):  # un-encoded: refused before connecting, the DSN masked
        done = run_command(["consumer", command], service_env(**base, OCPP_DATABASE_URL=raw_dsn))
        assert done.returncode == 2, done.stderr
        (line,) = error_lines(done.stderr)
        assert line.startswith("ocpp-consumer: configuration error: OCPP_DATABASE_URL:") and "percent-encoded" in line
        outputs.append(done.stdout + done.stderr)

        wrong = run_command(["consumer", command], service_env(
            **base, OCPP_DATABASE_URL=dsn, OCPP_DATABASE_PASSWORD=password[::-1], OCPP_STARTUP_TIMEOUT_SECONDS="30"))
        assert wrong.returncode == 2, wrong.stderr
        (line,) = error_lines(wrong.stderr)
        assert "password authentication failed" in line and "ocpp_app" in line
        outputs.append(wrong.stdout + wrong.stderr)

    refused = run_command(["consumer", "migrate"], service_env(**base, OCPP_DATABASE_URL=encoded_dsn))
    assert refused.returncode == 2
    (line,) = error_lines(refused.stderr)
    assert "may not change the schema" in line and "ocpp_app:***@" in line
    outputs.append(refused.stdout + refused.stderr)

    topic = await topic_factory("secret")
    await produce(kafka_bootstrap, topic, [(key, value) for key, value, _ in invalid_records(seed=73)[:3]])
    metrics_port = free_port()
    apart = {"OCPP_DATABASE_URL": dsn, "OCPP_DATABASE_PASSWORD": password}
    for variables in ({"OCPP_DATABASE_URL": encoded_dsn}, apart):
        log = tmp_path / f"run-{len(outputs)}.log"
        process = await _run_until_consuming(service_env(
            **base, **variables, OCPP_KAFKA_TOPICS=topic, OCPP_DLQ_TOPIC=f"{topic}.dlq",
            OCPP_KAFKA_GROUP_ID=f"g-{uuid.uuid4().hex[:8]}", OCPP_METRICS_PORT=str(metrics_port),
            OCPP_LOG_LEVEL="DEBUG"), log)
        try:
            await _wait_committed(kafka_bootstrap, _group_of(log), topic, 3, timeout=60)
            metrics = await asyncio.to_thread(
                lambda: urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode())
            assert "ocpp_dead_letters_total" in metrics
            outputs.append(metrics)
        finally:
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 30) == 0
        outputs.append(log.read_text())

    headers = await _dead_letter_headers(kafka_bootstrap, f"{topic}.dlq", expected=6)
    assert len(headers) == 6
    outputs.append(repr(headers))
    outputs.append(repr(Settings(database_url=encoded_dsn, database_password=None)))
    outputs.append(repr(Settings(database_url=dsn, database_password=password)))
    for output in outputs:
        assert_no_secret(output, password)


def _group_of(log: Path) -> str:
    import json

    for line in log.read_text().splitlines():
        if line.startswith("{") and json.loads(line).get("msg") == "consuming":
            return json.loads(line)["group_id"]
    raise AssertionError("no consuming line")


async def _dead_letter_headers(bootstrap: str, topic: str, expected: int) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    headers: list = []
    try:
        deadline = time.monotonic() + 30
        while len(headers) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                headers += [record.headers for record in records]
    finally:
        await consumer.stop()
    return headers


# ---------------------------------------------------------------------------------------------- fatal at start-up


def _fatal_run(env: dict[str, str]) -> str:
    """Run `ocpp-consumer run` with a start-up wait far longer than FAST_SECONDS; it must exit 2 within it, with
    one line and no retry in between. Returns that line."""
    started = time.monotonic()
    done = run_command(["consumer", "run"], service_env(**env, OCPP_STARTUP_TIMEOUT_SECONDS="120"), timeout=150)
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert elapsed < FAST_SECONDS, f"took {elapsed:.0f}s: retried instead of stopping"
    assert "retrying" not in done.stderr
    (line,) = error_lines(done.stderr)
    return line


def test_a_wrong_kafka_password_stops_at_once(tmp_path, db):
    env = stack_env("--secure")
    wrong = tmp_path / "kafka-password"
    wrong.write_text("not-the-password\n")
    line = _fatal_run({**env, "OCPP_DATABASE_URL": on_database(env["OCPP_DATABASE_URL"], db),
                       "OCPP_KAFKA_SASL_PASSWORD_FILE": str(wrong)})
    assert f"cannot reach Kafka at {env['OCPP_KAFKA_BOOTSTRAP_SERVERS']}" in line
    assert "SASL authentication of user 'ocpp' with SCRAM-SHA-512 was refused" in line
    assert "not-the-password" not in line


def test_an_untrusted_kafka_ca_stops_at_once(tmp_path, db):
    env = stack_env("--secure")
    line = _fatal_run({**env, "OCPP_DATABASE_URL": on_database(env["OCPP_DATABASE_URL"], db),
                       "OCPP_KAFKA_SSL_CAFILE": str(untrusted_ca(tmp_path))})
    assert f"cannot reach Kafka at {env['OCPP_KAFKA_BOOTSTRAP_SERVERS']}" in line
    assert "the broker's certificate is not trusted" in line and "OCPP_KAFKA_SSL_CAFILE" in line


def test_a_missing_client_certificate_stops_at_once(db):
    env = stack_env("--mtls")
    del env["OCPP_KAFKA_SSL_CERTFILE"], env["OCPP_KAFKA_SSL_KEYFILE"]
    line = _fatal_run({**env, "OCPP_DATABASE_URL": on_database(env["OCPP_DATABASE_URL"], db)})
    assert f"cannot reach Kafka at {env['OCPP_KAFKA_BOOTSTRAP_SERVERS']}" in line
    assert "no client certificate was presented" in line and "OCPP_KAFKA_SSL_CERTFILE" in line


def test_plain_kafka_to_a_tls_listener_stops_at_once(db):
    """A protocol that does not match the listener is named, not waited out."""
    env = stack_env("--mtls")
    line = _fatal_run({"OCPP_KAFKA_BOOTSTRAP_SERVERS": env["OCPP_KAFKA_BOOTSTRAP_SERVERS"], "OCPP_DATABASE_URL": db})
    assert "the broker answered in TLS" in line and "OCPP_KAFKA_SECURITY_PROTOCOL" in line


# ---------------------------------------------------------------------------------------------- PostgreSQL over TLS


async def test_postgres_verify_full_connects_over_tls(db):
    """The documented DSN (sslmode=verify-full, the CA in sslrootcert) reaches the stack's cluster over TLS, as
    the writer, with the certificate checked against the CA and the host name."""
    from consumer.clients import database_connect_options

    env = stack_env("--secure")
    settings = _settings_from(env, database_url=on_database(env["OCPP_DATABASE_URL"], db))
    conn = await asyncpg.connect(settings.database_url.get_secret_value(), **database_connect_options(settings))
    try:
        row = await conn.fetchrow("SELECT s.ssl, s.version, current_user AS who FROM pg_stat_ssl s "
                                  "WHERE s.pid = pg_backend_pid()")
    finally:
        await conn.close()
    assert row["ssl"] is True and row["version"].startswith("TLS") and row["who"] == "ocpp_app"


@pytest.mark.parametrize("command", ["run", "migrate"])
def test_an_untrusted_postgres_ca_stops_at_once(command, tmp_path, db):
    env = stack_env("--secure")
    ca = untrusted_ca(tmp_path)
    dsn = on_database(env["OCPP_DATABASE_URL"], db).replace(env["OCPP_KAFKA_SSL_CAFILE"], str(ca))
    started = time.monotonic()
    done = run_command(["consumer", command], service_env(**{**env, "OCPP_DATABASE_URL": dsn},
                                                          OCPP_STARTUP_TIMEOUT_SECONDS="120"), timeout=150)
    assert done.returncode == 2, done.stderr
    assert time.monotonic() - started < FAST_SECONDS and "retrying" not in done.stderr
    (line,) = error_lines(done.stderr)
    assert "cannot reach PostgreSQL at postgresql://ocpp_app@127.0.0.1:" in line
    assert "the server's certificate is not trusted" in line and "sslrootcert" in line


@pytest.mark.parametrize("command", ["run", "migrate"])
def test_a_missing_sslrootcert_is_named(command, tmp_path, db):
    env = stack_env("--secure")
    missing = tmp_path / "no-such-ca.pem"
    dsn = on_database(env["OCPP_DATABASE_URL"], db).replace(env["OCPP_KAFKA_SSL_CAFILE"], str(missing))
    done = run_command(["consumer", command], service_env(**{**env, "OCPP_DATABASE_URL": dsn}))
    assert done.returncode == 2
    (line,) = error_lines(done.stderr)
    assert line == (f"ocpp-consumer: configuration error: OCPP_DATABASE_URL: cannot read sslrootcert {missing}: "
                    "No such file or directory")


def test_migrate_refuses_to_run_as_the_writer(db):
    """Migrations are the owner's: as a member of ocpp_writer, one line says so, exit 2."""
    env = stack_env("--secure")
    done = run_command(["consumer", "migrate"], service_env(
        OCPP_DATABASE_URL=on_database(env["OCPP_DATABASE_URL"], db),
        OCPP_DATABASE_PASSWORD_FILE=env["OCPP_DATABASE_PASSWORD_FILE"]))
    assert done.returncode == 2
    (line,) = error_lines(done.stderr)
    assert line.startswith("ocpp-consumer: migrate: the user of postgresql://ocpp_app@")
    assert "may not change the schema" in line and "owner of the tables" in line


@pytest.mark.parametrize("flag", ["--secure", "--mtls"])
async def test_the_simulator_publishes_over_the_secured_listeners(flag, kafka_bootstrap, topic_factory):
    """`ocpp-consumer simulate` reaches a secured broker with the service's own OCPP_KAFKA_* settings: the
    records arrive, read back through the plain listener."""
    env = stack_env(flag)
    topic = await topic_factory("secure-sim")
    done = run_command(["consumer", "simulate", "--topic", topic, "--count", "50", "--quiet"],
                       service_env(**{k: v for k, v in env.items() if k.startswith("OCPP_KAFKA")}))
    assert done.returncode == 0, done.stderr[-2000:]
    assert sum((await end_offsets(kafka_bootstrap, topic)).values()) == 50
