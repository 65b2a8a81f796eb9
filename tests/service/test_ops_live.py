"""Operations against one running daemon (real detector, GStreamer cameras, Redis) scraped by a real
Prometheus: every dashboard and alert expression finds series, the exposition lints, every metric is
documented, and the HTTP endpoints (readiness, latest.jpg, MJPEG preview) serve what they promise."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from email.message import Message
from http.client import HTTPResponse

import cv2
import numpy as np
import pytest
import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.assets import BIKES, DETECTOR, REPO, free_port, require_asset
from tests.support.configs import daemon_config, detector_config, write_config
from tests.support.daemon import RunningDaemon, running_daemon
from tests.support.polling import wait_for
from tests.support.prometheus import PROMETHEUS_DIR, RunningPrometheus, running_prometheus

DASHBOARD = REPO / "config" / "grafana" / "dashboards" / "argusd-overview.json"
DOCS = REPO / "docs" / "operations.md"
PATTERN_SIZE = (320, 240)  # the test:// camera's configured processing size
BIKES_SIZE = (640, 272)
PREVIEW_CLIENTS = 2
ZONE = [[0.0, 0.0], [0.3, 0.0], [0.3, 0.3], [0.0, 0.3]]  # on the pattern camera (a ball on black)
LINE = [[0.05, 0.9], [0.95, 0.9]]
RATE_INTERVAL = "15s"  # what the test substitutes for Grafana's $__rate_interval (scrapes every 1 s)
NOT_YET = (OSError, ValueError)  # not listening yet, or a reply that does not parse yet: poll again


def _get(url: str, timeout: float = 5.0) -> tuple[int, Message, bytes]:
    """Status, headers (looked up case-insensitively, as HTTP names them) and body."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    require_asset(DETECTOR)
    require_asset(BIKES)
    directory = tmp_path_factory.mktemp("ops-daemon")
    stream = f"argusd:test:{uuid.uuid4().hex}"
    port = free_port()
    config = daemon_config(
        [
            {"id": "pattern", "url": "test://ball", "fps": 4, "width": PATTERN_SIZE[0], "height": PATTERN_SIZE[1],
             "zones": [{"name": "corner", "polygon": ZONE}], "lines": [{"name": "gate", "points": LINE}]},
            {"id": "bikes", "url": BIKES.as_uri(), "fps": 3, "loop": True},
        ],
        detector=detector_config(DETECTOR),
        redis={"stream": stream},
        port=port, http={"preview_clients": PREVIEW_CLIENTS},
    )
    try:
        with running_daemon(write_config(directory / "argusd.yaml", config), address=f"127.0.0.1:{port}",
                            stop_timeout=30) as running:
            wait_for(lambda: running.check_running() and _get(running.url("/readyz"))[0] == 200, 90,
                     "the daemon to become ready", interval=0.25, ignoring=NOT_YET)
            yield running
    finally:
        redis.Redis().delete(stream)


@pytest.fixture(scope="module")
def prometheus(daemon: RunningDaemon, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPrometheus]:
    """Debian's Prometheus with the shipped example config and rules, scraping the test daemon each second."""
    assert daemon.address is not None
    with running_prometheus(daemon.address, tmp_path_factory.mktemp("prometheus")) as server:
        # Enough history for rates over RATE_INTERVAL, and at least one published event to rate.
        wait_for(lambda: server.query('up{job="argusd"} == 1'), 30, "the first scrape", interval=0.25)
        wait_for(lambda: server.query("argusd_events_published_total > 0"), 90, "a published event", interval=0.25)
        time.sleep(5)
        yield server


# -- Prometheus and Grafana -------------------------------------------------------------------------------


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        # label_values(selector, label): the selector must find series that carry the label.
        selector, label = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"]["query"]).groups()
        expressions.append(f"count by ({label}) ({selector})")
    return expressions


def _grafana_to_promql(expr: str, values: dict[str, str]) -> str:
    for variable, value in values.items():
        expr = expr.replace(f"${variable}", value)
    assert "$" not in expr.replace("$__rate_interval", ""), expr
    return expr.replace("$__rate_interval", RATE_INTERVAL)


def _alert_rules() -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS_DIR / "argusd-alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _signal_of(expr: str) -> str:
    """An alert expression with every threshold comparison turned into `bool`, so it returns 0/1 series
    whenever its inputs exist, whether or not the alert condition holds right now."""
    return re.sub(r"(==|!=|>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)(?![\w.])", r"\1 bool \2", expr)


@pytest.mark.parametrize("selection", ["All", "one camera"])
def test_every_dashboard_expression_returns_series(prometheus: RunningPrometheus, daemon: RunningDaemon,
                                                   selection: str) -> None:
    # All: the variables' allValue (".*"); one camera: what picking this daemon and camera in Grafana sends.
    values = ({"job": ".*", "instance": ".*", "camera": ".*"} if selection == "All"
              else {"job": "argusd", "instance": str(daemon.address), "camera": "bikes"})
    expressions = _dashboard_expressions()
    assert len(expressions) >= 20
    empty = [expr for expr in expressions if not prometheus.query(_grafana_to_promql(expr, values))]
    assert not empty, "dashboard expressions without series:\n" + "\n".join(empty)


def test_every_alert_expression_returns_series(prometheus: RunningPrometheus) -> None:
    rules = _alert_rules()
    empty = []
    for rule in rules:
        signal = _signal_of(rule["expr"])
        assert signal != rule["expr"], f"{rule['alert']}: no threshold comparison found"
        if not prometheus.query(signal):
            empty.append(f"{rule['alert']}: {signal}")
    assert not empty, "alert expressions without series:\n" + "\n".join(empty)
    loaded = prometheus.rules()
    assert set(loaded) == {rule["alert"] for rule in rules}
    assert all(rule["health"] == "ok" for rule in loaded.values()), loaded
    # A healthy daemon fires nothing (ArgusdRedisUnreachable: redis_up is 1 once events were published).
    firing = [name for name, rule in loaded.items() if rule["state"] == "firing"]
    assert not firing


def test_promtool_check_metrics_on_live_scrape(daemon: RunningDaemon) -> None:
    status, headers, body = _get(daemon.url("/metrics"))
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    lint = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(), lint


def _documented_metrics() -> set[str]:
    return set(re.findall(r"^\| `([a-z_:]+)` \|", DOCS.read_text(), re.MULTILINE))


def test_every_metric_is_documented(daemon: RunningDaemon) -> None:
    _, _, body = _get(daemon.url("/metrics"))
    exposed = set()
    for family in text_string_to_metric_families(body.decode()):
        suffix = {"counter": "_total", "info": "_info"}.get(family.type, "")
        exposed.add(family.name + suffix)
        assert family.name.startswith(("argusd_", "process_", "python_")), family.name
    documented = _documented_metrics()
    assert exposed - documented == set(), "metrics missing from docs/operations.md"
    assert documented - exposed == set(), "docs/operations.md lists metrics the daemon does not expose"


# -- HTTP endpoints ---------------------------------------------------------------------------------------


def test_health_and_readiness(daemon: RunningDaemon) -> None:
    assert _get(daemon.url("/healthz"))[0] == 200
    status, _, body = _get(daemon.url("/readyz"))
    ready = json.loads(body)
    assert status == 200 and ready["status"] == "ready"
    assert ready["checks"] == {"model_loaded": True, "camera_streaming": True, "events_deliverable": True,
                               "events_kept": True}
    assert ready["events_problem"] is None
    assert ready["cameras_streaming"] == 2


def test_unknown_camera_is_404(daemon: RunningDaemon) -> None:
    assert _get(daemon.url("/cameras/nope/latest.jpg"))[0] == 404
    assert _get(daemon.url("/cameras/nope/preview.mjpg"))[0] == 404


@pytest.mark.parametrize(("camera", "size"), [("pattern", PATTERN_SIZE), ("bikes", BIKES_SIZE)])
def test_latest_jpg_is_the_camera_frame(daemon: RunningDaemon, camera: str, size: tuple[int, int]) -> None:
    status, headers, body = _get(daemon.url(f"/cameras/{camera}/latest.jpg"))
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and (image.shape[1], image.shape[0]) == size


def test_latest_jpg_draws_zones_and_lines(daemon: RunningDaemon) -> None:
    from daemon.outputs.annotate import LINE_COLOUR, ZONE_COLOUR

    _, _, body = _get(daemon.url("/cameras/pattern/latest.jpg"))
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).astype(float)
    width, height = PATTERN_SIZE
    # The zone is a translucent amber fill over black; the line a magenta stroke (medians shrug off the ball).
    inside = np.median(image[int(0.1 * height):int(0.25 * height), int(0.1 * width):int(0.25 * width)], axis=(0, 1))
    assert np.allclose(inside, 0.2 * np.array(ZONE_COLOUR), atol=20), inside
    outside = np.median(image[int(0.4 * height):int(0.6 * height), int(0.6 * width):int(0.9 * width)], axis=(0, 1))
    assert np.all(outside < 20), outside  # black: the fill stays inside its polygon
    stroke = np.median(image[int(0.9 * height), int(0.5 * width):int(0.9 * width)], axis=0)
    assert np.allclose(stroke, LINE_COLOUR, atol=60), stroke


def _open_preview(daemon: RunningDaemon, camera: str) -> HTTPResponse:
    return urllib.request.urlopen(daemon.url(f"/cameras/{camera}/preview.mjpg"), timeout=10)


def _read_part(stream: HTTPResponse, boundary: bytes) -> tuple[dict[str, str], bytes]:
    line = stream.readline()
    while line in (b"\r\n", b""):  # the CRLF that ends the previous part
        if line == b"":
            raise AssertionError("stream ended")
        line = stream.readline()
    assert line.rstrip(b"\r\n") == b"--" + boundary, line
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers, stream.read(int(headers["content-length"]))


def test_preview_mjpeg_parts_decode_as_camera_sized_jpegs(daemon: RunningDaemon) -> None:
    with _open_preview(daemon, "pattern") as stream:
        content_type = stream.headers["Content-Type"]
        assert content_type.startswith("multipart/x-mixed-replace")
        boundary = re.search(r"boundary=([^;\s]+)", content_type).group(1).encode()
        parts = [_read_part(stream, boundary) for _ in range(3)]
    for headers, body in parts:
        assert headers["content-type"] == "image/jpeg"
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and (image.shape[1], image.shape[0]) == PATTERN_SIZE
    assert len({body for _, body in parts}) == 3, "every part is a new analysed frame"


def _gauge(daemon: RunningDaemon, name: str) -> float:
    _, _, body = _get(daemon.url("/metrics"))
    return float(re.search(rf"^{name} (\S+)$", body.decode(), re.MULTILINE).group(1))


def test_preview_viewers_are_bounded(daemon: RunningDaemon) -> None:
    wait_for(lambda: _gauge(daemon, "argusd_preview_clients") == 0, 15, "earlier viewers to be noticed gone",
             interval=0.25, ignoring=NOT_YET)
    rejected_before = _gauge(daemon, "argusd_preview_rejected_total")
    viewers = [_open_preview(daemon, "bikes") for _ in range(PREVIEW_CLIENTS)]
    try:
        assert _gauge(daemon, "argusd_preview_clients") == PREVIEW_CLIENTS
        status, headers, _ = _get(daemon.url("/cameras/pattern/preview.mjpg"))
        assert status == 503 and headers["Retry-After"] == "5"
        assert _gauge(daemon, "argusd_preview_rejected_total") == rejected_before + 1
    finally:
        viewers.pop().close()
    # The server notices the closed viewer at its next frame and frees the slot for a new one.
    wait_for(lambda: _gauge(daemon, "argusd_preview_clients") == PREVIEW_CLIENTS - 1, 15, "the slot to free",
             interval=0.25, ignoring=NOT_YET)
    with _open_preview(daemon, "pattern") as again:
        assert again.status == 200
    for viewer in viewers:
        viewer.close()
