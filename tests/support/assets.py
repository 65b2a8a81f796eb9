"""This checkout and its fetched test assets, free loopback ports, and the CLI's command line."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / ".cache" / "assets"
DETECTOR = ASSETS / "fall-detector.pt"
BIKES = ASSETS / "bikes.mp4"
EVENT_SCHEMA = REPO / "daemon" / "schema" / "event.schema.json"


def require_asset(path: Path) -> Path:
    if not path.is_file():
        pytest.fail(f"{path} missing: run scripts/setup.sh (make test does) to fetch the test assets")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def argusd_command(*args: str) -> list[str]:
    """Run the CLI from this source tree with the test interpreter."""
    return [sys.executable, "-m", "daemon.service.cli", *args]


def event_schema() -> dict:
    """The versioned JSON schema every published event validates against."""
    return json.loads(EVENT_SCHEMA.read_text())
