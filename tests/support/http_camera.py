"""The loopback HTTP camera (daemon/testing/http_camera.py) in a subprocess: MJPEG at /mjpeg, files from a
directory the test fills."""

from __future__ import annotations

from pathlib import Path

from tests.support.peers import PeerProcess


class HttpCamera(PeerProcess):
    def __init__(self, root: Path, *extra: str, port: int | None = None) -> None:
        super().__init__("daemon.testing.http_camera", "--root", str(root), *extra, port=port)
        self.root = root

    def url(self, path: str = "/mjpeg", userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}{path}"
