"""The alert rules parse, and fire exactly where they should: promtool's rule unit tests on synthetic series
(tests/unit/deploy/alert_cases.yaml); the dashboard's queries parse too. promtool comes from Debian's
prometheus package, unpacked into the venv by `make promtool` (a dependency of `make test`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.unit.deploy.conftest import ROOT

RULE = ROOT / "deploy" / "monitoring" / "prometheusrule.yaml"
DASHBOARD = ROOT / "deploy" / "monitoring" / "dashboards" / "wijkmatch.json"
CASES = Path(__file__).with_name("alert_cases.yaml")


def _promtool() -> str:
    local = Path(sys.executable).with_name("promtool")
    found = str(local) if local.exists() else shutil.which("promtool")
    if not found:
        pytest.fail("promtool not found: `make test` unpacks it into the venv (`make promtool`)")
    return found


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _spec() -> dict:
    return yaml.safe_load(RULE.read_text())["spec"]


def test_the_rules_and_their_annotation_templates_parse(tmp_path):
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(_spec()))
    result = _run("check", "rules", "rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in _spec()['groups'])} rules found" in result.stdout


def test_every_alert_fires_on_its_case_and_stays_quiet_on_the_healthy_ones(tmp_path):
    spec = _spec()
    for group in spec["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)  # the cases compare labels; the annotations are checked above
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    shutil.copy(CASES, tmp_path / "cases.yaml")
    result = _run("test", "rules", "cases.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_does_not():
    cases = [c for test in yaml.safe_load(CASES.read_text())["tests"] for c in test["alert_rule_test"]]
    alerts = {rule["alert"] for group in _spec()["groups"] for rule in group["rules"] if "alert" in rule}
    assert {c["alertname"] for c in cases if c["exp_alerts"]} == alerts
    quiet = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert len(quiet) >= 6


def test_a_wrong_threshold_is_caught(tmp_path):
    spec = _spec()
    for group in spec["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
            if rule.get("alert") == "WijkmatchRoundGapHigh":
                rule["expr"] = rule["expr"].replace("> 0.05", "> 0.5")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    shutil.copy(CASES, tmp_path / "cases.yaml")
    result = _run("test", "rules", "cases.yaml", cwd=tmp_path)
    assert result.returncode != 0 and "WijkmatchRoundGapHigh" in result.stdout + result.stderr


def test_every_dashboard_query_parses(tmp_path):
    panels = json.loads(DASHBOARD.read_text())["panels"]
    rules = [
        {"record": f"dashboard:panel{p['id']}:{t['refId']}", "expr": t["expr"]}
        for p in panels
        for t in p["targets"]
    ]
    (tmp_path / "dashboard.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    result = _run("check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
