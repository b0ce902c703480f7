"""The secured local stack as the tests reach it: its variables (`stack/stack.sh env --secure` and friends), the
test's own database behind them, a CA nobody trusts, and the service run as a command.

There is no fallback: a stack without the secured listeners, the TLS cluster or the roles fails these tests with a
message that says to run `make up`; nothing is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def stack_env(flag: str) -> dict[str, str]:
    """`bash stack/stack.sh env <flag>` as a dict; fails the test when the stack cannot say."""
    done = subprocess.run(["bash", str(ROOT / "stack" / "stack.sh"), "env", flag], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, (
        f"`stack/stack.sh env {flag}` failed: {done.stderr.strip()}. The secured stack (TLS listeners on 9093/9094, "
        "TLS PostgreSQL, the roles, PgBouncer) is started by `make up` (`make up PGBOUNCER=1` for PgBouncer)."
    )
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def on_database(dsn: str, database_dsn: str) -> str:
    """`dsn` (its user, host, port, TLS options) on the database of `database_dsn` (a test's own)."""
    return urlunsplit(urlsplit(dsn)._replace(path=urlsplit(database_dsn).path))


def read_secret(env: dict[str, str], name: str) -> str:
    return Path(env[name]).read_text()


def untrusted_ca(directory: Path) -> Path:
    """A self-signed CA that signed none of the stack's certificates."""
    key, cert = directory / "untrusted-ca.key", directory / "untrusted-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=nobody's CA"],
                   check=True, capture_output=True)
    return cert


def service_env(**env: str) -> dict[str, str]:
    """The environment of a service command: nothing OCPP_* inherited, no metrics port."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_")}
    environment["OCPP_METRICS_PORT"] = "0"
    environment.update(env)
    return environment


def run_command(args: list[str], env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess:
    """`python -m <args>` (e.g. ["consumer", "migrate"]) to completion."""
    return subprocess.run([sys.executable, "-m", *args], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def error_lines(stderr: str) -> list[str]:
    """What a user reads: plain lines, and the message of JSON log lines at level error."""
    lines = []
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            if line.strip():
                lines.append(line)
            continue
        if record.get("level") == "error":
            lines.append(record["msg"])
    return lines


def fragments(secret: str) -> list[str]:
    """The secret, its URL-encoded form, and every piece of it between special characters (4 characters or more)."""
    from urllib.parse import quote

    pieces = [secret, quote(secret, safe="")]
    current = ""
    for char in secret + "/":
        if char.isalnum():
            current += char
        else:
            if len(current) >= 4:
                pieces.append(current)
            current = ""
    return pieces


def assert_no_secret(text: str, secret: str) -> None:
    for piece in fragments(secret):
        assert piece not in text, f"a fragment of a password ({len(piece)} characters) appears in the output"
