"""Cameras added, removed and fixed at run time (reload / SIGHUP) without disturbing a streaming camera."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from tests.support.assets import BIKES, free_port, require_asset
from tests.support.cameras import Recorder, largest_gap
from tests.support.configs import daemon_config, write_config
from tests.support.daemon import running_daemon
from tests.support.polling import wait_for
from tests.support.rtsp import RtspServer

from daemon.service.daemon import Daemon
from daemon.config.loading import load_config
from daemon.core.types import Frame
from daemon.inference.batcher import FramePuller

STEADY_FPS = 4.0
ALLOWED_GAP_S = 1 / STEADY_FPS + 1.0  # the steady camera's frame interval plus one second


def steady_camera(url: str) -> dict:
    return {"id": "steady", "url": url, "fps": STEADY_FPS, "width": 320, "watchdog_s": 3}


def write_cameras(path: Path, cameras: list[dict], redis_url: str, stream_key: str, port: int) -> None:
    write_config(path, daemon_config(cameras, redis={"url": redis_url, "stream": stream_key}, port=port))


def test_reload_adds_removes_and_retries_cameras_without_disturbing_others(
    module_rtsp_server: RtspServer, tmp_path: Path, redis_url: str, stream_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="daemon")
    path = tmp_path / "argusd.yaml"
    steady = steady_camera(module_rtsp_server.url)
    added = {"id": "added", "url": "test://ball", "fps": 5, "width": 160}
    late_file = tmp_path / "late.mp4"
    late = {"id": "late", "url": late_file.as_uri(), "fps": 5, "width": 160, "loop": True}
    write_cameras(path, [steady], redis_url, stream_key, free_port())
    daemon = Daemon(load_config(path), str(path))
    recorder = Recorder()
    register = daemon.batcher.register  # observe every frame inference pulls from the sources

    def observe(camera_id: str, pull: FramePuller) -> None:
        def observed(timeout_s: float) -> Frame | None:
            frame = pull(timeout_s)
            if frame is not None:
                recorder.on_frame(frame)
            return frame

        register(camera_id, observed)

    daemon.batcher.register = observe  # type: ignore[method-assign]
    daemon.start()
    try:
        states = lambda: {c["id"]: c for c in daemon.camera_status()}  # noqa: E731
        wait_for(lambda: states()["steady"]["frames_analysed"] > 2, 60, "the steady camera to be analysed",
                 details=daemon.camera_status)
        started = time.monotonic()

        write_cameras(path, [steady, added], redis_url, stream_key, daemon.config.http.port)
        daemon.reload()
        wait_for(lambda: recorder.count("added") >= 3, 10, "frames from the added camera", details=daemon.camera_status)
        wait_for(lambda: states()["added"]["frames_analysed"] > 0, 10, "the worker to serve the added camera too")

        write_cameras(path, [steady], redis_url, stream_key, daemon.config.http.port)
        daemon.reload()
        assert "added" not in states()
        exposition = daemon.metrics.exposition()[0].decode()
        assert 'argusd_camera_state{camera="added"' not in exposition

        write_cameras(path, [{**steady, "fps": 0}], redis_url, stream_key, daemon.config.http.port)
        daemon.reload()
        assert "reload rejected, keeping the running config" in caplog.text
        assert "cameras[steady].fps: Input should be greater than 0" in caplog.text
        assert daemon.config.cameras[0].fps == STEADY_FPS

        write_cameras(path, [{**steady, "classes": ["unicorn"]}], redis_url, stream_key, daemon.config.http.port)
        daemon.reload()
        assert "cameras[steady].classes: unicorn not among the detector's classes" in caplog.text
        assert daemon.config.cameras[0].classes is None

        write_cameras(path, [steady, late], redis_url, stream_key, daemon.config.http.port)
        daemon.reload()
        wait_for(lambda: states()["late"]["state"] == "failed", 5, "the late camera to fail",
                 details=lambda: states()["late"])
        shutil.copy(require_asset(BIKES), late_file)
        daemon.reload()  # same config: the failed camera is retried
        wait_for(lambda: recorder.count("late") >= 3, 10, "frames from the retried camera",
                 details=lambda: states()["late"])

        ended = time.monotonic()
        analysed_before = states()["steady"]["frames_analysed"]
        wait_for(lambda: states()["steady"]["frames_analysed"] > analysed_before, 10, "the steady camera to go on")
        gap = largest_gap(recorder.frame_times("steady"), started, ended)
        assert gap < ALLOWED_GAP_S, f"steady camera had a {gap:.2f} s gap during reloads"
        assert states()["steady"]["reconnects"] == 0
        assert 'argusd_config_reloads_total{result="rejected"} 2.0' in exposition_of(daemon)
        assert 'argusd_config_reloads_total{result="applied"} 4.0' in exposition_of(daemon)
    finally:
        daemon.shutdown()


def exposition_of(daemon: Daemon) -> str:
    return daemon.metrics.exposition()[0].decode()


def cameras_over_http(port: int) -> dict[str, dict]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/cameras", timeout=2) as reply:
        return {c["id"]: c for c in json.load(reply)["cameras"]}


def test_sighup_to_the_running_daemon(module_rtsp_server: RtspServer, tmp_path: Path, redis_url: str,
                                      stream_key: str) -> None:
    path, port = tmp_path / "argusd.yaml", free_port()
    steady = steady_camera(module_rtsp_server.url)
    added = {"id": "added", "url": "test://ball", "fps": 5, "width": 160}
    write_cameras(path, [steady], redis_url, stream_key, port)
    ages: list[float] = []
    sampling = threading.Event()

    def sample_steady_frame_age() -> None:  # 10 Hz: the largest age seen is the largest gap between frames
        while sampling.is_set():
            age = cameras_over_http(port)["steady"]["last_frame_age_s"]
            ages.append(age if age is not None else 0.0)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample_steady_frame_age, daemon=True)
    with running_daemon(path) as daemon:
        try:
            wait_for(lambda: cameras_over_http(port)["steady"]["frames_analysed"] > 2, 90,
                     "the steady camera to be analysed", interval=0.5,
                     ignoring=(OSError, KeyError),  # not listening yet, or cameras not added yet
                     details=daemon.output)
            sampling.set()
            sampler.start()

            write_cameras(path, [steady, added], redis_url, stream_key, port)
            daemon.send_signal(signal.SIGHUP)
            wait_for(lambda: cameras_over_http(port).get("added", {}).get("frames_received", 0) >= 3, 15,
                     "frames from the added camera", details=daemon.output)
            time.sleep(1.0)  # both cameras analysed side by side for a while

            write_cameras(path, [steady], redis_url, stream_key, port)
            daemon.send_signal(signal.SIGHUP)
            wait_for(lambda: "added" not in cameras_over_http(port), 10, "the camera to be removed",
                     details=daemon.output)

            path.write_text("cameras: [this is not: valid")
            daemon.send_signal(signal.SIGHUP)
            wait_for(lambda: "reload rejected" in daemon.output(), 10, "the reload to be rejected",
                     details=daemon.output)
            time.sleep(1.0)
            sampling.clear()
            sampler.join(5)

            assert daemon.poll() is None
            final = cameras_over_http(port)
            assert list(final) == ["steady"] and final["steady"]["state"] == "streaming"
            assert final["steady"]["reconnects"] == 0
            assert len(ages) >= 15 and max(ages) < ALLOWED_GAP_S, f"steady frame age reached {max(ages):.2f} s"
        finally:
            sampling.clear()
        assert daemon.stop(30) == 0, daemon.output()
    logged = daemon.output()
    assert "Traceback" not in logged
    assert "reload: adding camera added" in logged and "reload: removed camera added" in logged
