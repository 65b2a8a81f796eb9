"""Prometheus and Grafana files: promtool checks the config and the rules and runs the rule unit tests
(also on the series a real daemon exports through a Redis outage); the Grafana provisioning and the
dashboard agree on the datasource."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.assets import BIKES, REPO, free_port, require_asset
from tests.support.configs import daemon_config, write_config
from tests.support.daemon import RunningDaemon, running_daemon
from tests.support.polling import wait_for
from tests.support.prometheus import running_prometheus
from tests.support.redis import RedisServer

PROMETHEUS_DIR = REPO / "config" / "prometheus"
GRAFANA_DIR = REPO / "config" / "grafana"


def _promtool(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("promtool") is None:
        pytest.fail("promtool not installed: run scripts/setup.sh (it installs Debian's prometheus)")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS_DIR)


# What the outage alerts read; every series of these metrics is scraped and fed to promtool.
OUTAGE_METRICS = ("argusd_redis_up", "argusd_publish_queue_events", "argusd_publish_queue_capacity_events",
                  "argusd_spool_events", "argusd_spool_bytes", "argusd_spool_capacity_bytes",
                  "argusd_events_dropped_total")
HEALTHY_SCRAPES, OUTAGE_SCRAPES = 2, 10


def _scrape_outage_series(daemon: RunningDaemon) -> dict[str, float]:
    """One scrape of the outage metrics, keyed by series in promtool's notation (labels sorted)."""
    with urllib.request.urlopen(daemon.url("/metrics"), timeout=5) as response:  # noqa: S310 (loopback http)
        text = response.read().decode()
    series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in OUTAGE_METRICS:
                labels = {"job": "argusd", "instance": "live:9108", **sample.labels}
                rendered = ", ".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
                series[f"{sample.name}{{{rendered}}}"] = sample.value
    return series


def _spooling_daemon_config(redis_server: RedisServer, tmp_path: Path, port: int) -> Path:
    """A daemon (real detector, looping footage) that spools while its private Redis is away."""
    return write_config(tmp_path / "argusd.yaml", daemon_config(
        [{"id": "bikes", "url": f"file://{require_asset(BIKES)}", "fps": 8, "loop": True}],
        tracker={"confirm_frames": 2, "update_interval_s": 1},
        redis={"url": redis_server.url, "stream": "argusd:test:events", "command_timeout_s": 0.5,
               "connect_timeout_s": 0.5, "backoff_max_s": 1},
        spool={"directory": str(tmp_path / "spool"), "max_bytes": 64 * 1024 * 1024}, port=port))


def _record_a_spooled_outage(redis_server: RedisServer, tmp_path: Path) -> list[dict[str, float]]:
    """Scrapes of the spooling daemon while Redis is up, then every second after its Redis was stopped."""
    port = free_port()
    config = _spooling_daemon_config(redis_server, tmp_path, port)
    client = redis.Redis.from_url(redis_server.url)
    with running_daemon(config, "--max-seconds", "120", address=f"127.0.0.1:{port}") as daemon:
        wait_for(lambda: daemon.check_running() and client.xlen("argusd:test:events") >= 2, 90,
                 "the first events in Redis")
        scrapes = [_scrape_outage_series(daemon) for _ in range(HEALTHY_SCRAPES)]
        redis_server.stop()
        for _ in range(OUTAGE_SCRAPES):
            time.sleep(1)
            scrapes.append(_scrape_outage_series(daemon))
    return scrapes


def _go_percentage(fraction: float) -> str:
    """What promtool's humanizePercentage renders (Go's %.4g, which Python's matches)."""
    return f"{fraction * 100:.4g}%"


def test_outage_alerts_fire_on_the_series_of_a_real_spooled_outage(redis_server: RedisServer,
                                                                    tmp_path: Path) -> None:
    """While Redis is down the memory queue stays empty and events go to the spool: the outage alerts
    must fire on exactly what the daemon exports then. Each scrape (1 s apart) stands for one minute of
    promtool time, so the rules' `for:` durations pass within the recording."""
    scrapes = _record_a_spooled_outage(redis_server, tmp_path)
    last = scrapes[-1]
    spool_bytes = next(v for k, v in last.items() if k.startswith("argusd_spool_bytes{"))
    capacity = next(v for k, v in last.items() if k.startswith("argusd_spool_capacity_bytes{"))
    assert spool_bytes > 0, last
    end = f"{len(scrapes) - 1}m"
    labels = {"job": "argusd", "instance": "live:9108"}
    rule_test = {
        "rule_files": [str(PROMETHEUS_DIR / "argusd-alerts.yml")],
        "evaluation_interval": "15s",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": name, "values": " ".join(repr(scrape.get(name, 0.0)) for scrape in scrapes)}
                             for name in sorted(set().union(*scrapes))],
            "alert_rule_test": [
                *({"eval_time": "1m", "alertname": name, "exp_alerts": []}
                  for name in ("ArgusdRedisUnreachable", "ArgusdSpoolGrowing")),
                {"eval_time": end, "alertname": "ArgusdRedisUnreachable", "exp_alerts": [{
                    "exp_labels": {"severity": "critical", **labels},
                    "exp_annotations": {
                        "summary": "argusd on live:9108 cannot reach Redis",
                        "description": "Redis has not answered for 2 minutes; events are kept in the spool "
                                       "(argusd_spool_events) and sent when it returns."}}]},
                {"eval_time": end, "alertname": "ArgusdSpoolGrowing", "exp_alerts": [{
                    "exp_labels": {"severity": "warning", **labels},
                    "exp_annotations": {
                        "summary": f"argusd on live:9108: events are piling up in the spool "
                                   f"({_go_percentage(spool_bytes / capacity)} of spool.max_bytes)",
                        "description": "Events have been spooled to disk for 5 minutes and the spool still "
                                       "grows: Redis is slow or unreachable. When the spool is full its oldest "
                                       "events are dropped (spool_full)."}}]},
                # Nothing was lost and the spool is far from its cap.
                *({"eval_time": end, "alertname": name, "exp_alerts": []}
                  for name in ("ArgusdEventsDropped", "ArgusdSpoolNearlyFull")),
            ],
        }],
    }
    test_file = tmp_path / "outage.test.yml"
    test_file.write_text(yaml.safe_dump(rule_test, sort_keys=False))
    result = _promtool("test", "rules", str(test_file))
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\nseries:\n{test_file.read_text()}"


ALERT_FOR = "2s"  # every `for:` in the live test's copy of the rules, so an outage fires within seconds


def test_a_live_prometheus_fires_redis_unreachable_when_the_daemons_redis_stops(redis_server: RedisServer,
                                                                                  tmp_path: Path) -> None:
    """The shipped rules (their `for:` cut to ALERT_FOR) on a real Prometheus scraping the daemon each second:
    ArgusdRedisUnreachable is quiet while Redis answers and fires once it is stopped."""
    port = free_port()
    target = f"127.0.0.1:{port}"
    config = _spooling_daemon_config(redis_server, tmp_path, port)
    client = redis.Redis.from_url(redis_server.url)
    with running_daemon(config, "--max-seconds", "120", address=target) as daemon, \
            running_prometheus(target, tmp_path, alert_for=ALERT_FOR) as prometheus:
        wait_for(lambda: daemon.check_running() and client.xlen("argusd:test:events") >= 2, 90,
                 "the first events in Redis")
        # argusd_redis_up is 0 until the first reply (the real `for:` covers that), so with ALERT_FOR the alert
        # may fire at start-up; it must clear while Redis answers. Only it is watched: on a busy CPU the
        # detector may fall behind, which ArgusdFrameDropRateHigh rightly reports.
        wait_for(lambda: "ArgusdRedisUnreachable" not in prometheus.alert_states(), 30,
                 "ArgusdRedisUnreachable to be quiet while Redis answers", interval=0.5,
                 details=prometheus.alert_states)
        assert all(rule["health"] == "ok" for rule in prometheus.rules().values()), prometheus.rules()
        redis_server.stop()
        wait_for(lambda: daemon.check_running() and prometheus.alert_states().get("ArgusdRedisUnreachable")
                 == "firing", 30, "ArgusdRedisUnreachable to fire", interval=0.5, details=prometheus.alert_states)


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
                   "spool", "inference"):
        assert wanted in titles, wanted
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_spool_is_watched_by_the_dashboard_and_the_alerts() -> None:
    """During an outage the events are in the spool, not the memory queue: both must show it."""
    dashboard = json.loads((GRAFANA_DIR / "dashboards" / "argusd-overview.json").read_text())
    panel_queries = " ".join(target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", []))
    rules = yaml.safe_load((PROMETHEUS_DIR / "argusd-alerts.yml").read_text())
    rule_queries = " ".join(rule["expr"] for group in rules["groups"] for rule in group["rules"])
    for metric in ("argusd_spool_events", "argusd_spool_bytes", "argusd_spool_capacity_bytes"):
        assert metric in panel_queries and metric in rule_queries, metric
