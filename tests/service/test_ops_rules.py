"""Prometheus and Grafana files: promtool checks the config and the rules and runs the rule unit tests;
the Grafana provisioning and the dashboard agree on the datasource."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from tests.support.assets import REPO

PROMETHEUS_DIR = REPO / "config" / "prometheus"
GRAFANA_DIR = REPO / "config" / "grafana"


def _promtool(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("promtool") is None:
        pytest.fail("promtool not installed: run scripts/setup.sh (it installs Debian's prometheus)")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS_DIR)


def test_example_config_and_rules_pass_promtool_check() -> None:
    config = _promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    assert "argusd-alerts.yml" in config.stdout  # the rule file was loaded with the config
    rules = _promtool("check", "rules", "argusd-alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_alert_rule_unit_tests_pass() -> None:
    result = _promtool("test", "rules", "argusd-alerts.test.yml")
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_and_the_issue_s_alerts_exist() -> None:
    rules = yaml.safe_load((PROMETHEUS_DIR / "argusd-alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {"ArgusdCameraDown", "ArgusdCameraStalled", "ArgusdFrameDropRateHigh", "ArgusdLatencyHigh",
            "ArgusdSpoolGrowing", "ArgusdRedisUnreachable"} <= alerts
    tests = yaml.safe_load((PROMETHEUS_DIR / "argusd-alerts.test.yml").read_text())
    fired = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"] if case["exp_alerts"]}
    quiet = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]
             if not case["exp_alerts"]}
    assert fired == alerts and quiet == alerts


def test_grafana_provisioning_matches_the_dashboard() -> None:
    datasources = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "argusd-prometheus.yaml").read_text())
    assert datasources["apiVersion"] == 1
    (datasource,) = datasources["datasources"]
    assert datasource["type"] == "prometheus"
    providers = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "argusd.yaml").read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]

    dashboard = json.loads((GRAFANA_DIR / "dashboards" / "argusd-overview.json").read_text())
    queried = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    used = {json.dumps(panel["datasource"], sort_keys=True) for panel in queried}
    used |= {json.dumps(target["datasource"], sort_keys=True) for panel in queried for target in panel["targets"]}
    used |= {json.dumps(variable["datasource"], sort_keys=True) for variable in dashboard["templating"]["list"]}
    assert used == {json.dumps({"type": "prometheus", "uid": datasource["uid"]}, sort_keys=True)}
    titles = " ".join(panel["title"].lower() for panel in queried)
    for wanted in ("cameras streaming", "fps", "dropped", "capture to redis", "events /s by type", "queue",
                   "inference"):
        assert wanted in titles, wanted
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
