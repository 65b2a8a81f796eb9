"""Debian's Prometheus for the length of a ``with`` block: the shipped example config pointed at one daemon,
scraping and evaluating the shipped alert rules every second; running_prometheus() and its handle."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.support.assets import REPO, free_port
from tests.support.polling import wait_for

PROMETHEUS_DIR = REPO / "config" / "prometheus"


class RunningPrometheus:
    def __init__(self, process: subprocess.Popen, base: str) -> None:
        self.process = process
        self.base = base

    def get(self, path: str, **params: str) -> dict:
        """The ``data`` of an API answer; a request Prometheus refuses fails the test with its reason."""
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback http)
                payload = json.load(response)
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{path} {params} failed: {error.read()[:300]!r}") from None
        assert payload["status"] == "success", payload
        return payload["data"]

    def query(self, expr: str) -> list[dict]:
        return self.get("/api/v1/query", query=expr)["result"]

    def rules(self) -> dict[str, dict]:
        return {rule["name"]: rule for group in self.get("/api/v1/rules")["groups"] for rule in group["rules"]}

    def alert_states(self) -> dict[str, str]:
        """Pending and firing alerts: name -> state."""
        return {alert["labels"]["alertname"]: alert["state"] for alert in self.get("/api/v1/alerts")["alerts"]}

    def ready(self) -> bool:
        with urllib.request.urlopen(f"{self.base}/-/ready", timeout=5) as response:  # noqa: S310
            return response.status == 200


@contextmanager
def running_prometheus(target: str, directory: Path, alert_for: str | None = None) -> Iterator[RunningPrometheus]:
    """Prometheus scraping ``target`` (host:port) every second, its files and data in ``directory``. With
    ``alert_for``, the rules are a copy whose every `for:` is that duration, so an alert fires within a test."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not installed: run scripts/setup.sh (it installs Debian's prometheus)")
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update({"scrape_interval": "1s", "evaluation_interval": "1s"})
    config["rule_files"] = [str(_rules_file(PROMETHEUS_DIR / name, directory, alert_for))
                            for name in config["rule_files"]]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [target]}]
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with (directory / "prometheus.log").open("wb") as log_file:
        process = subprocess.Popen(
            [binary, f"--config.file={directory / 'prometheus.yml'}", f"--storage.tsdb.path={directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log_file, stderr=subprocess.STDOUT)
    server = RunningPrometheus(process, f"http://127.0.0.1:{port}")
    try:
        wait_for(server.ready, 30, "Prometheus to start", interval=0.25, ignoring=(OSError,))
        yield server
    finally:
        process.terminate()
        process.wait(30)


def _rules_file(shipped: Path, directory: Path, alert_for: str | None) -> Path:
    if alert_for is None:
        return shipped
    rules = yaml.safe_load(shipped.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = alert_for
    copy = directory / shipped.name
    copy.write_text(yaml.safe_dump(rules, sort_keys=False))
    return copy
