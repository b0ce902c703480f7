"""Errors a user can cause are one line: a server that is not listening, refuses the login or does not resolve
is named (password masked) with the cause, the exit status is non-zero, and no traceback is printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import pytest

from consumer.tools.relay import free_port

SECRET = "s3cr%2Fet-do-not-print"


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_")}
    environment.update(OCPP_METRICS_PORT="0", OCPP_STARTUP_TIMEOUT_SECONDS="2", **env)
    return subprocess.run([sys.executable, "-m", "consumer", *args], env=environment, capture_output=True,
                          text=True, timeout=60, cwd=os.path.dirname(os.path.dirname(__file__)))


def _error_lines(stderr: str) -> list[str]:
    """The lines a user reads: plain lines, and the message of JSON log lines at level error."""
    lines = []
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            lines.append(line)
            continue
        if record.get("level") == "error":
            lines.append(record["msg"])
    return [line for line in lines if line.strip()]


def _closed_dsn() -> str:
    return f"postgresql://ocpp:{SECRET}@127.0.0.1:{free_port()}/ocpp"


@pytest.mark.parametrize("command", ["migrate", "run"])
def test_database_not_listening(command):
    """PostgreSQL is not listening: one line names it (password masked) and the refusal."""
    dsn = _closed_dsn()
    done = _run([command], OCPP_DATABASE_URL=dsn)
    assert done.returncode != 0
    (line,) = _error_lines(done.stderr)
    assert f"cannot reach PostgreSQL at postgresql://ocpp:***@127.0.0.1:{urlsplit(dsn).port}/ocpp" in line
    assert "ConnectionRefusedError" in line
    assert SECRET not in done.stderr and "s3cr" not in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["migrate", "run"])
def test_database_host_does_not_resolve(command):
    """A host name typo: one line naming the host and the resolver's answer."""
    done = _run([command], OCPP_DATABASE_URL=f"postgresql://ocpp:{SECRET}@no-such-host.invalid:5432/ocpp")
    assert done.returncode != 0
    (line,) = _error_lines(done.stderr)
    assert "cannot reach PostgreSQL at postgresql://ocpp:***@no-such-host.invalid:5432/ocpp" in line
    assert "Traceback" not in done.stderr and "s3cr" not in done.stderr


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["migrate", "run"])
def test_database_refuses_the_login(command, admin_dsn):
    """A wrong password: one line naming the server and PostgreSQL's refusal, the password masked."""
    parts = urlsplit(admin_dsn)
    wrong = urlunsplit(parts._replace(netloc=f"{parts.username}:{SECRET}@{parts.hostname}:{parts.port}"))
    done = _run([command], OCPP_DATABASE_URL=wrong)
    assert done.returncode != 0
    (line,) = _error_lines(done.stderr)
    assert f"cannot reach PostgreSQL at postgresql://{parts.username}:***@{parts.hostname}:{parts.port}" in line
    assert "password authentication failed" in line
    assert "Traceback" not in done.stderr and "s3cr" not in done.stderr


@pytest.mark.postgres
def test_run_with_kafka_not_listening(database_url):
    """The database answers but no broker does: after the start-up wait, one line names the broker."""
    from consumer.migrate import migrate
    import asyncio

    asyncio.run(migrate(database_url))
    port = free_port()
    done = _run(["run"], OCPP_DATABASE_URL=database_url, OCPP_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")
    assert done.returncode == 2
    (line,) = _error_lines(done.stderr)
    assert f"cannot reach Kafka at 127.0.0.1:{port}" in line
    assert "Traceback" not in done.stderr


def test_simulate_with_kafka_not_listening():
    """The simulator against a closed port: one line naming the broker, exit 1."""
    port = free_port()
    done = _run(["simulate", "--count", "10", "--quiet", "--bootstrap", f"127.0.0.1:{port}"])
    assert done.returncode == 1
    (line,) = _error_lines(done.stderr)
    assert line.startswith("ocpp-consumer: simulate: cannot reach Kafka")
    assert f"127.0.0.1', {port}" in line
    assert "Traceback" not in done.stderr
