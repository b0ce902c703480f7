"""The built wheel is the product: installed plainly in a fresh virtualenv, run from outside the checkout.

Every other test imports `consumer` from the repository, where the top-level sql/ sits beside the package; this
one proves that the wheel carries the SQL and every subpackage, as a deployment (or the Docker image) gets it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from pathlib import Path

import asyncpg
import pytest

from consumer.migrate import read_migrations
from tests.feed import BASE, envelope
from tests.kafka_utils import produce, wait_until

ROOT = Path(__file__).resolve().parent.parent
# What the build needs, as the Dockerfile's build stage copies it.
BUILD_INPUTS = ["pyproject.toml", "README.md", "consumer", "schemas", "sql"]


def configured_packages() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])


def test_every_python_directory_is_packaged():
    """pyproject.toml lists packages one by one: a new directory of Python must be added there to ship."""
    on_disk = {
        ".".join(directory.relative_to(ROOT).parts)
        for top in ("consumer", "schemas")
        for directory in [ROOT / top, *(ROOT / top).rglob("*")]
        if directory.is_dir() and directory.name != "__pycache__" and any(directory.glob("*.py"))
    }
    listed = {name for name in configured_packages() if not name.startswith("consumer.sql")}
    assert on_disk == listed, "make [tool.setuptools] packages in pyproject.toml list exactly these"


def test_docker_build_stage_copies_the_build_inputs():
    """No Docker engine runs here: at least the image builds its wheel from what this test builds it from."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = [source for line in dockerfile.splitlines() if line.startswith("COPY ") and "--from" not in line
              for source in line.split()[1:-1]]
    assert sorted(copied) == sorted(BUILD_INPUTS)
    assert "pip wheel" in dockerfile and "pip install -e" not in dockerfile


def clean_env(**ocpp: str) -> dict[str, str]:
    """The environment without anything that could lead Python, or the settings, back to the checkout."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OCPP_") and k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")}
    return {**env, **ocpp}


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, stdin: bytes | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env or clean_env(), input=stdin,
                          capture_output=True, timeout=timeout)


def check(result: subprocess.CompletedProcess) -> str:
    """Its standard output, or a failure that shows the tail of both streams."""
    assert result.returncode == 0, (
        f"{' '.join(result.args)} exited {result.returncode}:\n"
        f"{result.stdout.decode()[-2000:]}\n{result.stderr.decode()[-3000:]}"
    )
    return result.stdout.decode()


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(bin directory of a fresh virtualenv with the wheel installed, a directory outside the checkout)."""
    base = tmp_path_factory.mktemp("wheel")
    # Built from a copy of its inputs: an in-place build writes build/ and *.egg-info into the shared checkout,
    # and a stale build/lib would ship files that were since deleted.
    source = base / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, source / name)
    check(run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", base / "dist", source, cwd=base))
    (wheel,) = (base / "dist").glob("ocpp_state-*.whl")
    # No pip inside the virtualenv (creating one takes seconds): this pip installs into it, from PyPI and its cache.
    check(run(sys.executable, "-m", "venv", "--without-pip", base / "venv", cwd=base))
    python = base / "venv" / "bin" / "python"
    check(run(sys.executable, "-m", "pip", "--python", python, "install", wheel, cwd=base))
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    return python.parent, elsewhere


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.slow
async def test_installed_wheel_migrates_validates_and_runs(installed, database_url, kafka_bootstrap, topic_factory):
    bin_dir, elsewhere = installed
    site = check(run(bin_dir / "python", "-c",
                     "import consumer.queries as q; print(q.__file__); print(q.SQL_DIR)", cwd=elsewhere))
    module_file, sql_dir = site.splitlines()
    venv = bin_dir.parent
    assert Path(module_file).is_relative_to(venv) and Path(sql_dir).is_relative_to(venv), site

    # migrate: every migration of the checkout, byte for byte (the ledger's checksums).
    env = clean_env(OCPP_KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, OCPP_DATABASE_URL=database_url)
    expected = read_migrations()
    out = check(run(bin_dir / "ocpp-consumer", "migrate", cwd=elsewhere, env=env))
    assert out == f"migrations applied: {', '.join(m.name for m in expected)}\n"
    conn = await asyncpg.connect(database_url)
    try:
        ledger = await conn.fetch("SELECT name, checksum FROM schema_migrations ORDER BY name")
        assert [(r["name"], r["checksum"]) for r in ledger] == [(m.name, m.checksum) for m in expected]
    finally:
        await conn.close()

    # validate: one verdict per line, exit 1 because one line is not valid.
    cp = f"CP-WHEEL-{uuid.uuid4().hex[:6]}"
    boot = envelope(cp, "1.6", "BootNotification", BASE,
                    {"chargePointVendor": "Alfen", "chargePointModel": "Eve", "firmwareVersion": "1.2"})
    result = run(bin_dir / "ocpp-consumer", "validate", cwd=elsewhere, env=env, stdin=boot + b"\nnot json\n")
    assert result.returncode == 1, result.stderr.decode()
    verdicts = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [v["ok"] for v in verdicts] == [True, False]
    assert verdicts[0]["event"]["action"] == "BootNotification"
    assert verdicts[1]["kind"] == "not_json"

    # run: one record in, its row out, SIGTERM, exit 0.
    topic = await topic_factory("wheel")
    await produce(kafka_bootstrap, topic, [(cp.encode(), boot)])
    run_env = {**env, "OCPP_KAFKA_TOPICS": topic, "OCPP_KAFKA_GROUP_ID": f"g-{uuid.uuid4().hex[:8]}",
               "OCPP_DLQ_TOPIC": f"{topic}.dlq", "OCPP_METRICS_PORT": "0", "OCPP_BATCH_MAX_WAIT_MS": "50"}
    log_path = elsewhere / "run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(bin_dir / "ocpp-consumer"), "run"], cwd=elsewhere, env=run_env,
                                   stdout=log, stderr=log)
    try:
        async def row() -> asyncpg.Record | None:
            conn = await asyncpg.connect(database_url)
            try:
                return await conn.fetchrow("SELECT vendor, model FROM charge_point WHERE serial_number = $1", cp)
            finally:
                await conn.close()

        async def written() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"run exited {process.returncode}:\n{log_path.read_text()[-3000:]}")
            return await row() is not None

        await wait_until(written, timeout=60, what=f"{cp} in charge_point")
        assert dict(await row()) == {"vendor": "Alfen", "model": "Eve"}
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 40
        while process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert process.returncode == 0, f"run exited {process.returncode}:\n{log_path.read_text()[-3000:]}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
