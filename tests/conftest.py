"""Shared test fixtures: real assets, real Redis (the machine's, or a private redis-server), free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / ".cache" / "assets"
DETECTOR = ASSETS / "fall-detector.pt"
BIKES = ASSETS / "bikes.mp4"


def require_asset(path: Path) -> Path:
    if not path.is_file():
        pytest.fail(f"{path} missing: run scripts/setup.sh (make test does) to fetch the test assets")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_url() -> str:
    """The Redis every project machine runs on 127.0.0.1:6379."""
    url = os.environ.get("ARGUSD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    redis.Redis.from_url(url).ping()
    return url


@pytest.fixture
def stream_key(redis_url: str) -> Iterator[str]:
    key = f"argusd:test:{uuid.uuid4().hex}"
    yield key
    redis.Redis.from_url(redis_url).delete(key)


class RedisServer:
    """A private redis-server on a free loopback port, for tests that stop and start Redis."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def argusd_command(*args: str) -> list[str]:
    """Run the CLI from this source tree with the test interpreter."""
    return [sys.executable, "-m", "daemon.service.cli", *args]


@pytest.fixture(autouse=True)
def private_state_directory(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's daemons (in-process or subprocess) spool and snapshot under their own directory,
    never a shared /var/lib/argusd, so one test's leftovers cannot reach another test's stream."""
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path_factory.mktemp("state")))
