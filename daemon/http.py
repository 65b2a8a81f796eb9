"""The HTTP endpoints: /metrics, /healthz, /cameras. Served from a small thread pool, loopback by default."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .metrics import Metrics

log = logging.getLogger(__name__)


class HttpServer:
    def __init__(self, host: str, port: int, metrics: Metrics, camera_status: Callable[[], list[dict]]) -> None:
        handler = _make_handler(metrics, camera_status)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> None:
        self._thread.start()
        log.info("http: serving /metrics /healthz /cameras on http://%s", self.address)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def _make_handler(metrics: Metrics, camera_status: Callable[[], list[dict]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "argusd"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            if path == "/metrics":
                body, content_type = metrics.exposition()
                self._reply(200, body, content_type)
            elif path == "/healthz":
                self._json(200, {"status": "ok"})
            elif path == "/cameras":
                self._json(200, {"cameras": camera_status()})
            else:
                self._json(404, {"error": f"no such endpoint: {path}"})

        def _json(self, status: int, payload: object) -> None:
            self._reply(status, json.dumps(payload, indent=1).encode(), "application/json")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log.debug("http: " + format, *args)

    return Handler
