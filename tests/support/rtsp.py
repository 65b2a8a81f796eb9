"""A real RTSP server (GstRtspServer on loopback) in a subprocess, and the pytest fixtures that serve it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.support.assets import REPO, free_port


class RtspServer:
    """``python -m daemon.testing.rtsp_server`` on a free loopback port; killable, stoppable, restartable."""

    def __init__(self, *extra: str, path: str = "/cam", port: int | None = None) -> None:
        self.port = port or free_port()
        self.path = path
        self.extra = extra
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.path}"

    def start(self, timeout: float = 15.0) -> RtspServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daemon.testing.rtsp_server", "--port", str(self.port), "--path", self.path,
             *self.extra],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        ready = threading.Event()
        threading.Thread(target=lambda: (self.process.stdout.readline(), ready.set()), daemon=True).start()
        if not ready.wait(timeout) or self.process.poll() is not None:
            self.kill()
            raise RuntimeError("RTSP test server did not start")
        return self

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            for stream in (self.process.stdout, self.process.stderr):
                stream.close()
            self.process = None

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def drop_clients(self) -> None:
        os.kill(self.process.pid, signal.SIGUSR1)

    def close(self) -> None:
        """Kill the server if it runs, paused or not."""
        if self.process is not None:
            self.resume()  # a SIGSTOPped process must run again to die of SIGKILL promptly
            self.kill()


@contextmanager
def serving(*extra: str, path: str = "/cam") -> Iterator[RtspServer]:
    """A started RtspServer (``extra`` are rtsp_server options, e.g. ``--credentials``), closed on exit."""
    server = RtspServer(*extra, path=path).start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def rtsp_server() -> Iterator[RtspServer]:
    """An RTSP server of the test's own, which it may kill, pause (SIGSTOP) or restart."""
    with serving() as server:
        yield server


@pytest.fixture(scope="module")
def module_rtsp_server() -> Iterator[RtspServer]:
    """One RTSP server shared by a module's tests, which only stream from it."""
    with serving() as server:
        yield server
