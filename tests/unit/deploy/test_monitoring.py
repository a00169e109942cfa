"""Alerts, dashboard and scraping: every series they name exists in the code's metric registry, every
alert has a runbook entry, every service is scraped."""

from __future__ import annotations

import importlib
import json
import re

import pytest
from prometheus_client import REGISTRY

from tests.unit.deploy.conftest import ROOT

# Series from the cluster's own exporters, not from wijkmatch (kube-prometheus-stack ships both).
EXTERNAL_SERIES = {
    "container_memory_working_set_bytes": "cAdvisor (kubelet)",
    "kube_pod_container_resource_limits": "kube-state-metrics",
    "kube_pod_container_status_restarts_total": "kube-state-metrics",
}
# The alerts issue 13 asks for, by what they watch.
REQUIRED_ALERTS = {
    "WijkmatchIntakeLagGrowing",  # consumer lag growing (intake: messages)
    "WijkmatchMatcherFallingBehind",  # consumer lag growing (matcher: pool event age)
    "WijkmatchRejectedEventsHigh",  # rejected-event rate
    "WijkmatchRoundsFailing",
    "WijkmatchRoundGapHigh",
    "WijkmatchRegionNotRounded",
    "WijkmatchOutboxBacklogOld",
    "WijkmatchWebhookDeadLetters",
    "WijkmatchSolverMemoryNearLimit",
    "WijkmatchPodRestarting",
}
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "bool", "offset", "inf", "nan"}


def series_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (label matchers, groupings, ranges removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"(?<![a-zA-Z_:])\d[\d.]*(?:[eE][-+]?\d+)?[smhdwy]*", " ", text)  # numbers, durations
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group() in PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def exported_series() -> set[str]:
    """Every series name the services can export: import each module that defines Prometheus metrics."""
    for path in sorted((ROOT / "services").rglob("*.py")):
        if "prometheus_client" in path.read_text() and "migrations" not in path.parts:
            importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
    names = set()
    # What a scrape shows per family type (a family without children yet has no samples to look at).
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("_sum", "_count"),
    }
    for collector in list(REGISTRY._collector_to_names):  # the registry's own index of what it serves
        for family in collector.describe() if hasattr(collector, "describe") else collector.collect():
            names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def _alert_rules(production: list[dict]) -> list[dict]:
    rule = next(doc for doc in production if doc["kind"] == "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r]


def _dashboard(production: list[dict]) -> dict:
    config = next(
        doc
        for doc in production
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "wijkmatch-dashboard"
    )
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    return json.loads(config["data"]["wijkmatch.json"])


def test_series_names_reads_promql():
    expr = 'sum by (region) (rate(a_total{x="y", z=~"b|c"}[5m])) / on (region) b_gauge > 0.5 and c'
    assert series_names(expr) == {"a_total", "b_gauge", "c"}
    assert series_names("histogram_quantile(0.95, sum by (le) (rate(h_bucket[10m])))") == {"h_bucket"}
    assert series_names("x_total unless x_total offset 15m > 1e-9") == {"x_total"}


def test_the_required_alerts_exist_with_runbook_entries(production):
    alerts = _alert_rules(production)
    assert {a["alert"] for a in alerts} >= REQUIRED_ALERTS
    operations = (ROOT / "docs" / "operations.md").read_text()
    headings = {
        re.sub(r"[^a-z0-9]", "", line.lower()) for line in operations.splitlines() if line.startswith("#")
    }
    for alert in alerts:
        assert alert["annotations"]["runbook_url"] == f"docs/operations.md#{alert['alert'].lower()}"
        assert alert["alert"].lower() in headings, (
            f"docs/operations.md has no runbook entry for {alert['alert']}"
        )
        assert alert["labels"]["severity"] in {"warning", "critical"}


def test_every_series_an_alert_or_panel_names_is_exported(production):
    exported = exported_series()
    assert "wijkmatch_outbox_oldest_pending_seconds" in exported  # the import walk found the platform
    expressions = [a["expr"] for a in _alert_rules(production)]
    panels = _dashboard(production)["panels"]
    expressions += [t["expr"] for p in panels for t in p["targets"]]
    missing = {
        (name, expr.strip()[:80])
        for expr in expressions
        for name in series_names(expr)
        if name not in exported and name not in EXTERNAL_SERIES
    }
    assert not missing, missing


def test_an_unknown_series_is_caught(production):
    assert "wijkmatch_intake_accepted" not in exported_series()  # counters are exported with _total
    assert "wijkmatch_matcher_round_gap_total" not in exported_series()


@pytest.mark.parametrize(
    "needle",
    [
        "wijkmatch_intake_accepted_total",  # events in by type
        "wijkmatch_intake_rejected_total",  # rejected by type
        "wijkmatch_intake_consumer_lag",  # lag
        "wijkmatch_matcher_rounds_total",  # rounds
        "wijkmatch_matcher_round_gap",  # gap
        "wijkmatch_matcher_round_duration_seconds_bucket",  # duration
        "wijkmatch_matcher_last_round_placed",  # placed by group
        "wijkmatch_matcher_last_round_unplaced_by_reason",  # unplaced by reason
        "wijkmatch_matcher_pool_size",  # proposals by status (units proposed)
        "wijkmatch_notifier_offers_total",  # offers
        "wijkmatch_notifier_http_answers_total",  # answers
        "wijkmatch_notifier_webhook_attempts_total",  # webhook deliveries
    ],
)
def test_the_dashboard_shows(production, needle):
    exprs = [t["expr"] for p in _dashboard(production)["panels"] for t in p["targets"]]
    assert any(needle in series_names(e) for e in exprs)


def test_every_deployment_is_scraped_on_the_port_that_serves_metrics(production):
    monitors = {doc["metadata"]["name"]: doc for doc in production if doc["kind"] == "ServiceMonitor"}
    services = {doc["metadata"]["name"]: doc for doc in production if doc["kind"] == "Service"}
    for deployment in (doc for doc in production if doc["kind"] == "Deployment"):
        name = deployment["metadata"]["name"]
        monitor = monitors[name]
        service = services[name]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        container_port = next(p for p in container["ports"] if p["name"] == port["targetPort"])
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        metrics_ports = [v for k, v in env.items() if k.endswith("_METRICS_PORT")]
        if len(container["ports"]) > 1:
            # a service with an API serves /metrics only on its internal health port, never on the API
            # port its probes and clients use (issue 17); the process binds what the env says
            (metrics_port,) = metrics_ports
            assert container_port["containerPort"] == int(metrics_port)
            assert container_port["name"] == "metrics" and port["name"] == "metrics"
            assert container["readinessProbe"]["httpGet"]["port"] != container_port["name"]
            host = next(k for k in env if k.endswith("_METRICS_HOST"))
            assert env[host] == "0.0.0.0"  # reachable by Prometheus on the pod IP
        else:
            # intake's processor: no API, its one port is its health port (/healthz, /readyz, /metrics)
            assert not metrics_ports
            assert container["readinessProbe"]["httpGet"]["port"] == container_port["name"]


def test_health_ports_are_open_to_prometheus_only_and_api_ports_never_serve_metrics(production):
    """The NetworkPolicies: every containerPort is allowed by exactly one policy; a `metrics` port (and
    intake's health-only port) only from the labelled scrape/ingress namespaces, not from every pod."""
    policies = {doc["metadata"]["name"]: doc for doc in production if doc["kind"] == "NetworkPolicy"}
    api_rule = policies["wijkmatch-allow-http"]["spec"]["ingress"][0]
    metrics_rule = policies["wijkmatch-allow-metrics"]["spec"]["ingress"][0]
    api_ports = {p["port"] for p in api_rule["ports"]}
    metrics_ports = {p["port"] for p in metrics_rule["ports"]}
    assert not any("podSelector" in source for source in metrics_rule["from"])
    assert not api_ports & metrics_ports
    for deployment in (doc for doc in production if doc["kind"] == "Deployment"):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        if "metrics" in ports:
            assert ports["metrics"] in metrics_ports and ports["http"] in api_ports
        else:
            assert ports["http"] in metrics_ports, deployment["metadata"]["name"]
