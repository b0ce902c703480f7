"""Every metric the alerting rules and the dashboard query is one a running consumer replica really exports.

The names are compared with what /metrics serves, sample by sample, not with the names in consumer/metrics.py:
Prometheus stores what is exposed, so a Counter declared as `ocpp_retries` must be queried as
`ocpp_retries_total`, a Histogram as `<name>_bucket` / `_sum` / `_count`, and a typo in either place would leave
an alert that can never fire and a panel that stays empty.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from consumer.worker import Worker
from tests.feed import invalid_records, valid_records
from tests.kafka_utils import produce, wait_drained, wait_until
from consumer.tools.relay import TcpProxy, free_port
from tests.test_alerts import DASHBOARD, RULES, dashboard_panels
from tests.service import running

# Metrics that Prometheus itself makes, not the consumer.
PROMETHEUS_OWN = {"up"}
PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "inf", "nan",
}
COUNTER_FUNCTIONS = re.compile(r"\b(rate|irate|increase)\s*\(\s*([A-Za-z_:][\w:]*)")
QUANTILE_OF = re.compile(r"\bhistogram_quantile\s*\([^,]+,.*?\b([A-Za-z_:][\w:]*_bucket)\b")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects.

    Not a full parser, but it knows what else an identifier can be: a function or aggregation (followed by
    `(`), a keyword, a label name (inside `{…}` or a `by`/`on`/… list), a duration or a number.
    """
    if "__name__" in expr:
        raise ValueError(f"selecting by __name__ is not supported here: {expr}")
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # string literals
    e = re.sub(r"\{[^}]*\}", " ", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)  # ranges and subqueries, $__rate_interval included
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)  # label lists
    e = re.sub(r"\boffset\s+-?[\w$]+", " ", e)
    e = re.sub(r"@\s*[\w.()]+", " ", e)
    names = set()
    for match in re.finditer(r"(?<![\w:.$])[A-Za-z_:][\w:]*", e):
        name = match.group(0)
        if name.lower() in PROMQL_KEYWORDS or re.match(r"\s*\(", e[match.end():]):
            continue
        names.add(name)
    return names


def queried_expressions() -> tuple[dict[str, str], set[str]]:
    """{where: expression} for every rule and dashboard target, and the names the rules record themselves."""
    exprs, recorded = {}, set()
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule["record"]
            if "record" in rule:
                recorded.add(rule["record"])
            exprs[f"{RULES.name}: {name}"] = rule["expr"]
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            exprs[f"{DASHBOARD.name}: {panel['title']} ({target['refId']})"] = target["expr"]
    return exprs, recorded


def test_metric_names_are_extracted_from_promql():
    """The extractor finds selectors and only selectors, in the forms the rules and the dashboard use."""
    assert metric_names('sum by (kind) (rate(ocpp_dead_letters_total{kind!~"a|b"}[10m])) > 0.1') == {
        "ocpp_dead_letters_total"
    }
    assert metric_names(
        "histogram_quantile(0.99, sum by (le) (rate(ocpp_event_commit_latency_seconds_bucket[$__rate_interval])))"
    ) == {"ocpp_event_commit_latency_seconds_bucket"}
    assert metric_names(
        "max by (topic, partition) (lag and (offset_a == on (topic, partition) group_left "
        "max by (topic, partition) (offset_b)))"
    ) == {"lag", "offset_a", "offset_b"}
    assert metric_names('x unless y offset 15m or absent(up{job="ocpp-consumer"} == 1) and on () sum(z) > 1e3') == {
        "x", "y", "up", "z"
    }
    assert metric_names("ocpp:lag:current > 1000 and deriv(ocpp:lag:current[15m]) > 0") == {"ocpp:lag:current"}
    with pytest.raises(ValueError):
        metric_names('{__name__="ocpp_events_total"}')


def test_every_rule_and_panel_queries_something():
    exprs, _ = queried_expressions()
    for where, expr in exprs.items():
        assert metric_names(expr), f"{where}: no metric found in {expr!r}"


async def http_get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    response = (await reader.read()).decode()
    writer.close()
    return int(response.split()[1]), response.split("\r\n\r\n", 1)[1]


@pytest.mark.kafka
@pytest.mark.postgres
async def test_every_queried_metric_is_exported_by_a_running_replica(
    kafka_bootstrap, topic_factory, db, make_settings  # noqa: F811 (the imported fixtures)
):
    """A real replica consumes valid records and an invalid one, and retried its database connection at start-up
    (the database was behind a relay that was not listening yet), so that the labelled series exist too. Every
    metric name in the rules and the dashboard is then a sample name on its /metrics; what rate() and increase()
    read are counters, and what histogram_quantile() reads is a histogram's buckets."""
    topic = await topic_factory("events")
    dlq = await topic_factory("dlq")
    [(key, value, _)] = [record for record in invalid_records(seed=31) if record[2] == "key_mismatch"]
    await produce(kafka_bootstrap, topic, valid_records(40, seed=31) + [(key, value)])
    target = urlsplit(db)
    relay = TcpProxy(target.hostname, target.port)  # not started: connections are refused until it is
    settings = make_settings(
        db.replace(f"{target.hostname}:{target.port}", f"127.0.0.1:{relay.port}"), topic, dlq,
        metrics_port=free_port(),
    )
    worker = Worker(settings)
    try:
        async with running(worker):
            async def retried() -> bool:
                return worker.totals.retries > 0

            await wait_until(retried, timeout=30, what="a retried database connection")
            await relay.start()
            await wait_drained(kafka_bootstrap, settings.kafka_group_id, topic)
            status, body = await http_get(settings.metrics_port, "/metrics")
    finally:
        await relay.cut()
    assert status == 200

    exported = {
        sample.name: family.type for family in text_string_to_metric_families(body) for sample in family.samples
    }
    exprs, recorded = queried_expressions()
    missing = {}
    for where, expr in exprs.items():
        for name in metric_names(expr) - recorded - PROMETHEUS_OWN:
            if name not in exported:
                missing.setdefault(name, []).append(where)
    assert not missing, f"queried but not exported by the consumer: {missing}"

    for where, expr in exprs.items():
        for _, name in COUNTER_FUNCTIONS.findall(expr):
            assert exported.get(name) in {"counter", "histogram"}, f"{where}: rate/increase of {name}, not a counter"
        for name in QUANTILE_OF.findall(expr):
            assert exported.get(name) == "histogram", f"{where}: histogram_quantile over {name}, not a histogram"
