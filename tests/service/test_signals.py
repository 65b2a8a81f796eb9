"""Signals are queued, never handled under a lock: a storm of SIGHUP and SIGTERM reloads, then stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import yaml

from tests.support.assets import DETECTOR, argusd_command, free_port, require_asset


def write_config(path: Path, cameras: list[str], stream_key: str) -> None:
    path.write_text(yaml.safe_dump({
        "cameras": [{"id": camera, "url": "test://ball", "fps": 5} for camera in cameras],
        "detector": {"model": str(require_asset(DETECTOR)), "imgsz": 320, "device": "cpu"},
        "redis": {"stream": stream_key},
        "http": {"listen": f"127.0.0.1:{free_port()}"},
        "log": {"level": "info"},
    }))


def wait_for_line(log_path: Path, text: str, timeout: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log_path.read_text():
            return
        assert process.poll() is None, f"argusd exited early:\n{log_path.read_text()}"
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} in the log within {timeout} s:\n{log_path.read_text()}")


def test_a_storm_of_sighup_and_sigterm_reloads_then_stops_cleanly(tmp_path: Path, stream_key: str) -> None:
    config_path, log_path = tmp_path / "argusd.yaml", tmp_path / "argusd.log"
    write_config(config_path, ["a"], stream_key)
    with log_path.open("w") as log:
        process = subprocess.Popen(argusd_command("run", "--config", str(config_path)), stdout=log,
                                   stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        wait_for_line(log_path, "camera a: streaming", 60, process)
        write_config(config_path, ["a", "b"], stream_key)
        for _ in range(300):  # back to back: most land while the main loop is busy reloading
            os.kill(process.pid, signal.SIGHUP)
        wait_for_line(log_path, "camera b: streaming", 30, process)
        for _ in range(100):
            os.kill(process.pid, signal.SIGHUP)
            os.kill(process.pid, signal.SIGTERM)
        assert process.wait(30) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log_path.read_text()
    assert "reload: adding camera b" in text and "reload: done, 2 camera(s)" in text
    assert text.count("reload: adding camera b") == 1, "later reloads found nothing to change"
    assert "stopped:" in text and "Traceback" not in text, text
