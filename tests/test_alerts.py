"""The operators' alerting rules and dashboard (deploy/): checked and unit-tested by Prometheus' own promtool.

promtool is a test tool that `make test` installs (stack/tools.sh, Debian's prometheus package). Without it these
tests fail, never skip: a rule file nobody evaluated is exactly what pages nobody at 3 a.m.
That every metric the rules and the dashboard query is one the consumer exports is in test_dashboards_metrics.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
RULE_TESTS = PROMETHEUS / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "ocpp-state.json"
GRAFANA_PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
# Grafana's interval variables, replaced by a duration so that a dashboard query is plain PromQL.
GRAFANA_INTERVALS = re.compile(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}")


def promtool(*args: str) -> subprocess.CompletedProcess:
    path = shutil.which("promtool")
    if path is None:
        raise AssertionError("promtool not found: `make test` installs it (stack/tools.sh: apt-get install prometheus)")
    return subprocess.run([path, *args], capture_output=True, text=True, cwd=ROOT)


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def alerts() -> list[dict]:
    return [rule for rule in rules() if "alert" in rule]


def dashboard_panels(panels: list[dict] | None = None) -> list[dict]:
    """Every panel of the dashboard, including those inside rows."""
    if panels is None:
        panels = json.loads(DASHBOARD.read_text())["panels"]
    out = []
    for panel in panels:
        out.append(panel)
        out += dashboard_panels(panel.get("panels", []))
    return out


def test_rules_are_valid():
    """promtool accepts the rule file: YAML, rule syntax and every PromQL expression."""
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_unit_tests_pass():
    """alerts_test.yml: each alert fires on the series meant to fire it (labels and rendered annotations as
    expected) and stays silent on the series close to it that must not."""
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_silent_case():
    """No alert goes untested: each one is expected to fire somewhere in alerts_test.yml and to stay silent
    somewhere else."""
    cases = [
        case
        for group in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in group.get("alert_rule_test", [])
    ]
    for alert in alerts():
        name = alert["alert"]
        own = [case for case in cases if case["alertname"] == name]
        assert any(case.get("exp_alerts") for case in own), f"{name}: no test case where it fires"
        assert any(not case.get("exp_alerts") for case in own), f"{name}: no test case where it must stay silent"


def test_every_alert_tells_the_operator_what_to_do():
    """Severity, summary and description on every alert; the description names a metric it is about and where to
    read on (a README section, the contract or another alert)."""
    for alert in alerts():
        name, annotations = alert["alert"], alert.get("annotations", {})
        assert alert.get("labels", {}).get("severity") in {"critical", "warning", "info"}, name
        assert annotations.get("summary"), f"{name}: no summary"
        description = annotations.get("description", "")
        assert re.search(r"\b(ocpp_\w+|up)\b", description), f"{name}: the description names no metric"
        assert re.search(r'README "\w+"|docs/contract\.md|Ocpp[A-Z]\w+', description), (
            f"{name}: the description says nowhere to look"
        )


def test_prometheus_config_is_valid_and_scrapes_every_replica():
    """promtool accepts prometheus.yml (with alerts.yml as its rule file); the consumer's replicas are found by
    Compose DNS under the job name the rules select."""
    result = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    [job] = [job for job in config["scrape_configs"] if job["job_name"] == "ocpp-consumer"]
    [sd] = job["dns_sd_configs"]
    assert (sd["names"], sd["type"], sd["port"]) == (["consumer"], "A", 9108)
    assert 'up{job="ocpp-consumer"}' in RULES.read_text()


def test_dashboard_queries_are_valid_promql(tmp_path):
    """Every dashboard query parses as PromQL: promtool checks them as the expressions of a throw-away rule file."""
    exprs = [
        GRAFANA_INTERVALS.sub("5m", target["expr"])
        for panel in dashboard_panels()
        for target in panel.get("targets", [])
    ]
    assert exprs
    scratch = tmp_path / "dashboard_queries.yml"
    scratch.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(exprs)
    ]}]}))
    result = promtool("check", "rules", str(scratch))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_is_provisioned_with_its_data_source():
    """Grafana loads the dashboard from the directory docker-compose.yml mounts, and every panel queries the
    provisioned Prometheus (through the dashboard's data source variable, which defaults to it)."""
    [source] = yaml.safe_load((GRAFANA_PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    [provider] = yaml.safe_load((GRAFANA_PROVISIONING / "dashboards" / "dashboards.yml").read_text())["providers"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in compose["grafana"]["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in compose["grafana"]["volumes"]
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in compose["prometheus"]["volumes"]

    dashboard = json.loads(DASHBOARD.read_text())
    [variable] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus" and variable["current"]["value"] == source["uid"]
    for panel in dashboard_panels():
        if panel.get("type") == "row":
            continue
        for item in [panel, *panel["targets"]]:
            assert item["datasource"] == {"type": "prometheus", "uid": "${%s}" % variable["name"]}, panel["title"]
