"""The HTTP server on its own (no daemon): requests as health-check scripts write them."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator

import pytest

from daemon.outputs.preview import PreviewStore
from daemon.service.http import Endpoints, HttpServer
from daemon.service.metrics import Metrics
from tests.support.assets import free_port


@pytest.fixture
def server() -> Iterator[HttpServer]:
    endpoints = Endpoints(Metrics(), lambda: [], lambda: (True, {}), PreviewStore(), 0, {})
    http = HttpServer("127.0.0.1", free_port(), endpoints)
    http.start()
    yield http
    http.stop()


def healthz(server: HttpServer) -> int:
    with urllib.request.urlopen(f"http://{server.address}/healthz", timeout=2) as reply:
        return reply.status


def test_a_request_with_bare_line_feeds_is_answered(server: HttpServer) -> None:
    host, port = server.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=2) as client:
        client.sendall(b"GET /healthz HTTP/1.0\n\n")
        assert client.recv(64).startswith((b"HTTP/1.1 200", b"HTTP/1.0 200"))
