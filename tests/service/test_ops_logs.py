"""Logs: repeats are rate-limited per message and camera, JSON lines parse and carry no secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from daemon.service.logs import RepeatLimiter, setup_logging


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
