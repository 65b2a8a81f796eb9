"""A real RTSP server (GstRtspServer on loopback) in a subprocess, and the pytest fixtures that serve it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.support.peers import PeerProcess


class RtspServer(PeerProcess):
    """``python -m daemon.testing.rtsp_server`` on a free loopback port; killable, stoppable, restartable."""

    def __init__(self, *extra: str, path: str = "/cam", port: int | None = None) -> None:
        super().__init__("daemon.testing.rtsp_server", "--path", path, *extra, port=port)
        self.path = path

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.path}"

    def start(self, timeout: float = 15.0) -> RtspServer:
        super().start(timeout)
        return self

    def drop_clients(self) -> None:
        os.kill(self.process.pid, signal.SIGUSR1)


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
