"""docker-compose.yml is a valid Compose file with the services an operator scales; checked by a real client.

No Docker engine runs here; the Compose client parses and resolves the file without one.
"""

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def compose_command() -> list[str]:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise AssertionError("no Docker Compose client: `make test` installs one (stack/tools.sh)")


def test_compose_config_resolves():
    """`compose config` accepts the file; the consumer can scale, is built here and waits for migrations."""
    result = subprocess.run(
        [*compose_command(), "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert set(services) == {"kafka", "postgres", "migrate", "consumer", "prometheus", "grafana"}
    consumer = services["consumer"]
    assert "container_name" not in consumer  # a fixed name would forbid --scale
    assert not consumer.get("ports")  # a published host port would collide between replicas
    assert consumer["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert consumer["environment"]["OCPP_DATABASE_URL"].startswith("postgresql://")
    # Passwords come from Compose secrets, not the environment.
    assert consumer["environment"]["OCPP_DATABASE_PASSWORD_FILE"] == "/run/secrets/database-password"
    assert "ocpp:ocpp@" not in consumer["environment"]["OCPP_DATABASE_URL"]
    assert [s["source"] if isinstance(s, dict) else s for s in consumer["secrets"]] == ["database-password"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/database-password"
    assert services["migrate"]["command"] == ["ocpp-consumer", "migrate"]
