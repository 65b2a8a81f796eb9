"""config/kubernetes/ against the Kubernetes API schemas (kubernetes-validate ships them; offline, strict:
unknown fields fail), and against argusd itself: the ConfigMap's config loads, and the names that tie the
objects together (labels, ports, probes, Secret, ConfigMap) agree. The ServiceMonitor is a CRD of the
Prometheus Operator, outside those schemas: it is checked only for the Service labels and port it names."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from daemon.config.loading import load_config
from tests.support.assets import REPO

MANIFESTS = REPO / "config" / "kubernetes"
KUBERNETES_VERSION = "1.37.0"
BUILT_IN = ("ConfigMap", "Secret", "Service", "StatefulSet", "PodDisruptionBudget")


def manifests() -> dict[str, dict]:
    documents = [doc for path in sorted(MANIFESTS.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())]
    by_kind = {doc["kind"]: doc for doc in documents}
    assert len(by_kind) == len(documents), "one object of each kind expected"
    return by_kind


@pytest.mark.parametrize("kind", BUILT_IN)
def test_manifest_validates_against_the_kubernetes_schema(kind: str) -> None:
    kubernetes_validate.validate(manifests()[kind], KUBERNETES_VERSION, strict=True)


def test_a_broken_manifest_is_rejected() -> None:
    statefulset = manifests()["StatefulSet"]
    statefulset["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pathh"] = "/healthz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, KUBERNETES_VERSION, strict=True)


def test_the_objects_refer_to_each_other_and_to_argusd(tmp_path: Path) -> None:
    objects = manifests()
    config_file = tmp_path / "argusd.yaml"
    config_file.write_text(objects["ConfigMap"]["data"]["argusd.yaml"])
    config = load_config(str(config_file))
    assert config.fleet is not None and config.redis.is_cluster
    pod = objects["StatefulSet"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    port = next(p for p in container["ports"] if p["name"] == "http")
    assert port["containerPort"] == config.http.port and config.http.host == "0.0.0.0"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["envFrom"][0]["secretRef"]["name"] == objects["Secret"]["metadata"]["name"]
    assert "ARGUSD_REDIS_URL" in objects["Secret"]["stringData"]
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == objects["ConfigMap"]["metadata"]["name"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert container["args"][-1] == f"{mounts['config']}/argusd.yaml"
    assert config.spool.directory is not None and config.spool.directory.startswith(mounts["state"])
    labels = pod["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        selector = objects[kind]["spec"]["selector"]
        assert (selector.get("matchLabels") or selector).items() <= labels.items(), kind
    monitor = objects["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= objects["Service"]["metadata"]["labels"].items()
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {p["name"] for p in objects["Service"]["spec"]["ports"]}
    # the members listen beyond loopback, so they require a token: the Secret holds it, the scrape sends it
    secret = objects["Secret"]
    assert config.http.auth is not None and config.http.auth.token_env in secret["stringData"]
    for endpoint in monitor["spec"]["endpoints"]:
        token = endpoint["bearerTokenSecret"]
        assert token["name"] == secret["metadata"]["name"] and token["key"] == config.http.auth.token_env
