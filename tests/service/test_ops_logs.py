"""Logs: repeats are rate-limited per message and camera, JSON lines parse and carry no secrets."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.service.logs import RepeatLimiter, setup_logging
from tests.support.assets import REPO, argusd_command


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited() -> Iterator[tuple[logging.Logger, io.StringIO, Clock]]:
    clock = Clock()
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(RepeatLimiter(burst=3, window_s=60, clock=clock))
    logger = logging.getLogger("argusd.test.repeats")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, output, clock
    logger.removeHandler(handler)


def test_repeats_are_suppressed_then_counted(limited) -> None:
    logger, output, clock = limited
    for attempt in range(10):
        logger.warning("camera %s: reconnecting in %.1f s", "door", 0.5 * attempt)
    assert output.getvalue().count("camera door: reconnecting") == 3
    clock.now += 61
    logger.warning("camera %s: reconnecting in %.1f s", "door", 30.0)
    last = output.getvalue().splitlines()[-1]
    assert last == "camera door: reconnecting in 30.0 s (repeated; 7 similar message(s) suppressed in the last 60 s)"


def test_one_camera_s_repeats_never_hide_another_s(limited) -> None:
    logger, output, _ = limited
    for _ in range(10):
        logger.warning("camera %s: failed: %s", "door", "connection refused")
    logger.warning("camera %s: failed: %s", "yard", "connection refused")
    logger.warning("camera %s: failed: %s", "door", "404 not found")
    lines = output.getvalue().splitlines()
    assert lines.count("camera door: failed: connection refused") == 3
    assert "camera yard: failed: connection refused" in lines
    assert "camera door: failed: 404 not found" in lines


def test_json_lines_parse_and_redact_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("info", json_lines=True)
        logging.getLogger("daemon.sources").warning("camera %s: failed: %s", "door",
                                                    "rtsp://admin:hunter2@192.0.2.5/stream refused")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    (line,) = capsys.readouterr().err.strip().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "warning" and entry["logger"] == "daemon.sources"
    assert entry["msg"] == "camera door: failed: rtsp://***@192.0.2.5/stream refused"
    assert "hunter2" not in line


# Two field errors: the daemon's start-up error is a block of three lines (the file, then one per field).
INVALID_CONFIG = """
cameras:
  - id: door
    url: ftp://192.0.2.5/door
    fps: -1
detector:
  model: /nonexistent/detector.pt
"""


def _run_invalid(tmp_path: Path, extra: str = "", environ: dict[str, str] | None = None) -> tuple[int, str]:
    """``argusd run`` on INVALID_CONFIG (+ ``extra``) with stderr in a file: exit status and output."""
    config = tmp_path / "argusd.yaml"
    config.write_text(INVALID_CONFIG + extra)
    output = tmp_path / "stderr.log"
    with output.open("wb") as stream:
        status = os.fstat(stream.fileno())
        environment = {key: value for key, value in os.environ.items() if key != "JOURNAL_STREAM"}
        environment.update({key: value.format(device=status.st_dev, inode=status.st_ino)
                            for key, value in (environ or {}).items()})
        returncode = subprocess.run(argusd_command("run", "--config", str(config)), cwd=REPO, stderr=stream,
                                    env=environment, timeout=60).returncode
    return returncode, output.read_text()


def test_start_up_config_errors_are_json_when_the_config_asks_for_json(tmp_path: Path) -> None:
    returncode, output = _run_invalid(tmp_path, "log:\n  json: true\n")
    (line,) = output.strip().splitlines()
    entry = json.loads(line)
    assert returncode == 78 and entry["level"] == "error"
    assert "cameras[door].url: scheme must be one of" in entry["msg"] and "cameras[door].fps:" in entry["msg"]


def test_under_journald_every_line_of_an_error_block_carries_its_priority(tmp_path: Path) -> None:
    """systemd sets JOURNAL_STREAM to the device:inode of the stream journald reads; here that is a file."""
    returncode, output = _run_invalid(tmp_path, environ={"JOURNAL_STREAM": "{device}:{inode}"})
    lines = output.strip().splitlines()
    assert returncode == 78 and len(lines) == 3, output
    assert all(line.startswith("<3>") for line in lines), output


def test_without_journald_lines_have_no_priority_prefix(tmp_path: Path) -> None:
    returncode, output = _run_invalid(tmp_path, environ={"JOURNAL_STREAM": "0:0"})  # another stream's
    assert returncode == 78 and "ERROR" in output and "<3>" not in output, output
