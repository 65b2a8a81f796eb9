"""Fault: a /cameras/{id}/preview.mjpg viewer that stops reading (a tiny receive buffer, never recv()).
After CLIENT_TIMEOUT_S, plus a margin, its slot is free: a new viewer gets 200, not 503, and
argusd_preview_clients drops (issue item 10: such a viewer kept its slot for ever)."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.assets import free_port
from tests.support.configs import daemon_config, write_config
from tests.support.daemon import running_daemon
from tests.support.polling import wait_for

from daemon.service.http import CLIENT_TIMEOUT_S

MARGIN_S = 8.0


def preview_clients(address: str) -> float | None:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith("argusd_preview_clients "):
                return float(line.split()[1])
    return None


def preview_status(address: str) -> int:
    try:
        with urllib.request.urlopen(f"http://{address}/cameras/a/preview.mjpg", timeout=5) as reply:
            reply.read(100)
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_viewer_that_stops_reading_frees_its_slot(tmp_path: Path, stream_key: str) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    config = write_config(tmp_path / "argusd.yaml", daemon_config(
        [{"id": "a", "url": "test://ball", "fps": 10, "width": 640}], port=port,
        redis={"stream": stream_key}, http={"preview_clients": 1}))
    with running_daemon(config, address=address) as daemon:
        wait_for(lambda: daemon.check_running() and "camera a: streaming" in daemon.output(), 90, "streaming")
        wait_for(lambda: urllib.request.urlopen(daemon.url("/cameras/a/latest.jpg"), timeout=5).status == 200,
                 30, "a first analysed frame", ignoring=(urllib.error.HTTPError,))
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            stuck.connect(("127.0.0.1", port))
            stuck.sendall(b"GET /cameras/a/preview.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")  # then never reads
            wait_for(lambda: preview_clients(address) == 1, 10, "the stuck viewer to hold the slot")
            assert preview_status(address) == 503  # the only slot is taken
            stopped_reading = time.monotonic()
            wait_for(lambda: preview_clients(address) == 0, CLIENT_TIMEOUT_S + MARGIN_S,
                     "the stuck viewer's slot to be freed", interval=0.5)
            freed_after = time.monotonic() - stopped_reading
            assert preview_status(address) == 200
        finally:
            stuck.close()
        daemon.check_running()
    assert freed_after < CLIENT_TIMEOUT_S + MARGIN_S
