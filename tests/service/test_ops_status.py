"""`argusd status` against a running daemon: readiness and one line per camera, from /readyz and /cameras."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.assets import BIKES, REPO, argusd_command, free_port, require_asset
from tests.support.configs import daemon_config, write_config
from tests.support.daemon import running_daemon
from tests.support.polling import wait_for


def _status(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(argusd_command("status", *args), cwd=REPO, capture_output=True, text=True, timeout=60)


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback http)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _started(cameras: list[dict], tmp_path: Path) -> tuple[Path, int]:
    """A config for ``cameras`` on a free HTTP port; its Redis never answers (events stay in its own spool)."""
    port = free_port()
    redis = {"url": f"redis://127.0.0.1:{free_port()}/0", "connect_timeout_s": 0.5}
    return write_config(tmp_path / "argusd.yaml", daemon_config(cameras, port=port, redis=redis)), port


def test_status_of_a_ready_daemon_measures_each_camera(tmp_path: Path) -> None:
    config, port = _started([
        {"id": "bikes", "url": f"file://{require_asset(BIKES)}", "fps": 8, "loop": True},
        {"id": "gone", "url": f"rtsp://127.0.0.1:{free_port()}/x", "backoff_max_s": 1},
    ], tmp_path)
    with running_daemon(config, "--max-seconds", "120", address=f"127.0.0.1:{port}") as daemon:
        wait_for(lambda: daemon.check_running() and _http_status(daemon.url("/readyz")) == 200, 90,
                 "the daemon to be ready", ignoring=(OSError,))
        result = _status("--url", daemon.url(""), "--interval", "2")
    assert result.returncode == 0, result.stderr
    summary, header, *rows = result.stdout.splitlines()
    assert summary.startswith(f"http://127.0.0.1:{port}: ready: 1/2 camera(s) streaming"), result.stdout
    assert header.split() == ["camera", "state", "fps", "last", "frame", "objects", "events", "last", "error"]
    lines = {row.split()[0]: row.split() for row in rows}
    _, state, fps, age, unit, ago, objects, events = lines["bikes"]
    measured, target = fps.split("/")
    assert (state, target, unit, ago) == ("streaming", "8", "s", "ago") and float(measured) > 0, result.stdout
    assert float(age) < 5 and int(objects) >= 0 and int(events) >= 0, result.stdout
    assert lines["gone"][1] in ("backoff", "starting") and lines["gone"][2:4] == ["0.0/5", "-"], result.stdout


def test_status_of_a_daemon_that_is_not_ready_exits_1_saying_why(tmp_path: Path) -> None:
    config, port = _started([{"id": "gone", "url": f"rtsp://127.0.0.1:{free_port()}/x"}], tmp_path)
    with running_daemon(config, "--max-seconds", "120", address=f"127.0.0.1:{port}") as daemon:
        wait_for(lambda: daemon.check_running() and _http_status(daemon.url("/readyz")) == 503, 90,
                 "the daemon to answer", ignoring=(OSError,))
        result = _status("--config", str(config), "--interval", "0")
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (f"http://127.0.0.1:{port}: not ready (camera_streaming): 0/1 "
                                             "camera(s) streaming, 0 event(s) in memory, 0 spooled"), result.stdout


def test_status_without_a_daemon_is_one_line_and_exit_69() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = _status("--url", url)
    assert result.returncode == 69 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"argusd status: no argusd answering at {url}: "
                                                  "<urlopen error [Errno 111] Connection refused>"]
