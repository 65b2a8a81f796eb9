"""The HTTP endpoints: /metrics, /healthz, /readyz, /cameras, /cameras/{id}/latest.jpg and
/cameras/{id}/preview.mjpg. One thread per connection, loopback by default."""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from daemon.outputs.preview import PreviewStore
from daemon.service.metrics import Metrics

log = logging.getLogger(__name__)

MJPEG_BOUNDARY = "argusd-frame"
PREVIEW_KEEPALIVE_S = 5.0  # a stalled camera's last frame is re-sent this often, so dead viewers are noticed
CLIENT_TIMEOUT_S = 10.0  # a viewer that stops reading is dropped after this long, freeing its slot


@dataclass(frozen=True, slots=True)
class Endpoints:
    """What the endpoints read from the daemon."""

    metrics: Metrics
    camera_status: Callable[[], list[dict]]
    readiness: Callable[[], tuple[bool, dict]]  # (ready, details)
    preview: PreviewStore
    preview_clients: int  # most simultaneous MJPEG viewers


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    server_address: tuple[str, int] | tuple[str, int, int, int]  # an AF_INET or AF_INET6 socket's getsockname()

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), handler)

    def handle_error(self, request: object, client_address: tuple) -> None:
        # A viewer closing its connection mid-reply is routine; anything else is a bug worth a traceback,
        # in the log rather than on stderr.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("http: client %s went away: %s", client_address[0], error)
        else:
            # socketserver calls handle_error from inside its except block, so the traceback is there to log
            log.exception("http: error while serving %s", client_address[0])  # noqa: LOG004


class HttpServer:
    def __init__(self, host: str, port: int, endpoints: Endpoints) -> None:
        handler = _make_handler(endpoints, threading.BoundedSemaphore(max(1, endpoints.preview_clients)))
        self._server = _Server(host, port, handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> None:
        self._thread.start()
        log.info("http: serving /metrics /healthz /readyz /cameras on http://%s", self.address)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def _make_handler(endpoints: Endpoints, preview_slots: threading.BoundedSemaphore) -> type[BaseHTTPRequestHandler]:
    metrics = endpoints.metrics
    preview = endpoints.preview

    def _known(camera_id: str) -> bool:
        return any(camera["id"] == camera_id for camera in endpoints.camera_status())

    class Handler(BaseHTTPRequestHandler):
        server_version = "argusd"
        timeout = CLIENT_TIMEOUT_S

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            if path == "/metrics":
                body, content_type = metrics.exposition()
                self._reply(200, body, content_type)
            elif path == "/healthz":
                self._json(200, {"status": "ok"})
            elif path == "/readyz":
                ready, details = endpoints.readiness()
                self._json(200 if ready else 503, {"status": "ready" if ready else "not ready", **details})
            elif path == "/cameras":
                self._json(200, {"cameras": endpoints.camera_status()})
            elif path.startswith("/cameras/") and path.endswith(("/latest.jpg", "/preview.mjpg")):
                camera_id, _, resource = path.removeprefix("/cameras/").rpartition("/")
                if not _known(camera_id):
                    self._json(404, {"error": f"no such camera: {camera_id}"})
                elif resource == "latest.jpg":
                    self._latest(camera_id)
                else:
                    self._preview(camera_id)
            else:
                self._json(404, {"error": f"no such endpoint: {path}"})

        def _latest(self, camera_id: str) -> None:
            latest = preview.latest_jpeg(camera_id)
            if latest is None:
                self._json(503, {"error": f"camera {camera_id} has no analysed frame yet"}, retry_after=1)
            else:
                self._reply(200, latest[1], "image/jpeg", {"Cache-Control": "no-store"})

        def _preview(self, camera_id: str) -> None:
            if endpoints.preview_clients == 0 or not preview_slots.acquire(blocking=False):
                metrics.preview_rejected.inc()
                self._json(503, {"error": f"preview limit reached ({endpoints.preview_clients} viewer(s))"},
                           retry_after=5)
                return
            metrics.preview_clients.inc()
            self.close_connection = True
            try:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self._stream(camera_id)
            except OSError:  # the viewer went away or stopped reading (timeout): free the slot
                pass
            finally:
                metrics.preview_clients.dec()
                preview_slots.release()

        def _stream(self, camera_id: str) -> None:
            seq = 0
            while not preview.closed:
                latest = preview.next_jpeg(camera_id, seq, PREVIEW_KEEPALIVE_S)
                if latest is None:
                    if preview.closed or not _known(camera_id):
                        return  # the daemon is stopping, or the camera was removed
                    latest = preview.latest_jpeg(camera_id)  # keep-alive: the same frame again
                    if latest is None:
                        continue
                seq, jpeg = latest
                self.wfile.write(
                    f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                    + jpeg + b"\r\n"
                )
                self.wfile.flush()

        def _json(self, status: int, payload: object, retry_after: int | None = None) -> None:
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            self._reply(status, json.dumps(payload, indent=1).encode(), "application/json", headers)

        def _reply(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log.debug("http: " + format, *args)  # noqa: G003 (prefixes the template; formatting stays lazy)

    return Handler
