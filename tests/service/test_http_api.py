"""The HTTP API on a running daemon: its OpenAPI document validates, a property-based fuzz of the JSON
endpoints (schemathesis) gets no 5xx, http.auth lets in only its credentials, and a listen beyond loopback
without auth is refused with one line and exit 78."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate

from tests.support.assets import argusd_command, free_port
from tests.support.configs import daemon_config, detector_config, write_config
from tests.support.daemon import RunningDaemon, running_daemon
from tests.support.polling import wait_for

TOKEN = "test-token-0123456789"  # noqa: S105 (a test's own token)
TORCH = detector_config(runtime="torch")  # the model as it is: no conversion at start, the API is the subject


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    tmp_path = tmp_path_factory.mktemp("api")
    port = free_port()
    config = write_config(tmp_path / "argusd.yaml", daemon_config(
        [{"id": "a", "url": "test://ball", "fps": 4, "width": 320,
          "zones": [{"name": "left", "polygon": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]}]}],
        port=port, redis={"stream": f"argusd:test:api:{port}"}, detector=TORCH,
        http={"auth": {"token_env": "ARGUSD_TEST_TOKEN"}, "allow_config_writes": False}))
    with running_daemon(config, address=f"127.0.0.1:{port}",
                        env={**os.environ, "ARGUSD_TEST_TOKEN": TOKEN}) as running:
        wait_for(lambda: running.check_running() and "camera a: streaming" in running.output(), 120, "streaming")
        yield running


def status_of(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def test_the_openapi_document_validates(daemon: RunningDaemon) -> None:
    with urllib.request.urlopen(urllib.request.Request(daemon.url("/openapi.json"), headers=bearer()),
                                timeout=10) as reply:
        document = json.loads(reply.read())
    validate(document)
    assert {"/healthz", "/readyz", "/cameras", "/cameras/{camera_id}/rules",
            "/config/rules/validate"} <= set(document["paths"])


def test_only_the_token_lets_requests_in_and_probes_stay_open(daemon: RunningDaemon) -> None:
    assert status_of(daemon.url("/healthz")) == 200
    assert status_of(daemon.url("/cameras")) == 401
    assert status_of(daemon.url("/metrics"), {"Authorization": "Bearer wrong"}) == 401
    assert status_of(daemon.url("/cameras"), bearer()) == 200
    assert status_of(daemon.url("/"), {"Cookie": f"argusd_token={TOKEN}"}) == 200  # the console's cookie


def test_config_writes_are_refused_when_not_allowed(daemon: RunningDaemon) -> None:
    request = urllib.request.Request(daemon.url("/config/rules/apply"), method="POST", data=b'{"camera": "a"}',
                                     headers={**bearer(), "Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("apply was accepted with allow_config_writes: false")
    except urllib.error.HTTPError as error:
        assert error.code == 403


def test_a_fuzzed_json_api_never_answers_5xx(daemon: RunningDaemon) -> None:
    schema = schemathesis.openapi.from_url(daemon.url("/openapi.json"), headers=bearer())
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers=bearer(), timeout=10)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

        fuzz()
    assert operations >= 7
    assert failures == []
    assert daemon.check_running()


def test_a_listen_beyond_loopback_without_auth_is_refused(tmp_path: Path) -> None:
    config = daemon_config([{"id": "a", "url": "test://ball"}])
    config["http"] = {"listen": f"0.0.0.0:{free_port()}"}
    path = write_config(tmp_path / "argusd.yaml", config)
    for command in (argusd_command("run", "--config", str(path)), argusd_command("check-config", "--offline", str(path))):
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 78, result
        lines = [line for line in (result.stdout + result.stderr).splitlines() if "beyond loopback" in line]
        assert len(lines) == 1 and "http" in lines[0] and "auth" in lines[0], result
        assert "Traceback" not in result.stderr


def test_basic_auth_with_a_hashed_password(tmp_path: Path) -> None:
    hashed = subprocess.run(argusd_command("hash-password"), input="s3cret\n", capture_output=True, text=True,
                            timeout=60, check=True).stdout.strip()
    port = free_port()
    config = write_config(tmp_path / "argusd.yaml", daemon_config(
        [{"id": "a", "url": "test://ball", "fps": 2, "width": 320}], port=port,
        redis={"stream": f"argusd:test:basic:{port}"}, detector=TORCH,
        http={"auth": {"user": "ops", "password_hash": hashed}}))
    with running_daemon(config, address=f"127.0.0.1:{port}") as running:
        wait_for(lambda: running.check_running() and status_of(running.url("/healthz")) == 200, 90, "serving",
                 ignoring=(urllib.error.URLError, ConnectionError))
        good = base64.b64encode(b"ops:s3cret").decode()
        bad = base64.b64encode(b"ops:wrong").decode()
        assert status_of(running.url("/cameras"), {"Authorization": f"Basic {good}"}) == 200
        assert status_of(running.url("/cameras"), {"Authorization": f"Basic {bad}"}) == 401
        assert status_of(running.url("/cameras")) == 401
