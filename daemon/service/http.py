"""The HTTP endpoints: /metrics, /healthz, /readyz, /cameras, /cameras/{id}/latest.jpg and
/cameras/{id}/preview.mjpg, loopback by default. Connections are bounded (see ``_Server``)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import selectors
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from daemon.outputs.preview import PreviewStore
from daemon.service.metrics import Metrics

log = logging.getLogger(__name__)

MJPEG_BOUNDARY = "argusd-frame"
PREVIEW_KEEPALIVE_S = 5.0  # a stalled camera's last frame is re-sent this often, so dead viewers are noticed
CLIENT_TIMEOUT_S = 10.0  # a viewer that stops reading is dropped after this long, freeing its slot
# A preview connection's kernel send buffer (Linux doubles it). Left to autotuning it grows to megabytes, which
# a viewer that stops reading fills only after a minute of frames, before CLIENT_TIMEOUT_S even starts.
PREVIEW_SEND_BUFFER = 64 * 1024
REQUEST_TIMEOUT_S = 5.0  # a request must arrive whole within this long of connecting
MAX_WAITING = 256  # open connections whose request has not arrived; the oldest is closed beyond this
MAX_REQUEST_BYTES = 16384  # a request line and headers larger than this are handed over (and refused) as they are
REQUEST_WORKERS = 16  # requests served at once, beyond the preview viewers; more get 503
ACCEPT_PAUSE_S = 0.1  # after accept() fails (no descriptor left), the listening socket rests this long


@dataclass(frozen=True, slots=True)
class Endpoints:
    """What the endpoints read from the daemon."""

    metrics: Metrics
    camera_status: Callable[[], list[dict]]
    readiness: Callable[[], tuple[bool, dict]]  # (ready, details)
    preview: PreviewStore
    preview_clients: int  # most simultaneous MJPEG viewers
    detector: dict[str, str]  # what /cameras says of the detector all cameras share (runtime, device)
    fleet_status: Callable[[], dict | None] = lambda: None  # GET /fleet; None outside fleet mode


def fleet_reply(endpoints: Endpoints) -> tuple[int, dict]:
    """GET /fleet: the members, this member's cameras and the assignment; 404 outside fleet mode."""
    status = endpoints.fleet_status()
    return (404, {"error": "not a fleet member (no fleet: section)"}) if status is None else (200, status)


class _Server(socketserver.TCPServer):
    """Bounded connections: requests are read whole by one selector thread before a handler thread sees them.

    A client that connects and sends nothing, or drips its request, costs a file descriptor in the selector,
    never a thread; it is closed after ``REQUEST_TIMEOUT_S``, and when ``MAX_WAITING`` such connections are
    open the oldest is closed to make room, so a health check always gets through. A complete request gets
    a handler thread, at most ``workers`` at once; beyond that it is answered 503 at once.
    """

    allow_reuse_address = True

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler], workers: int) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        self._workers = threading.BoundedSemaphore(workers)
        self._waiting: dict[socket.socket, _Waiting] = {}  # insertion order: oldest first
        self._selector = selectors.DefaultSelector()  # before binding: a failed bind calls server_close()
        self._stopping = threading.Event()
        self._accept_paused_until = 0.0  # after a failed accept (out of descriptors): do not spin on it
        super().__init__((host, port), handler)
        self._selector.register(self.socket, selectors.EVENT_READ)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=poll_interval):
                try:
                    if key.fileobj is self.socket:
                        self._accept()
                    else:
                        self._read(key.fileobj)  # type: ignore[arg-type]
                except Exception:  # one connection's trouble must never end the server
                    log.exception("http: error while handling a connection")
                    if key.fileobj is not self.socket:
                        self._close(key.fileobj)  # type: ignore[arg-type]
            self._expire()
            if self._accept_paused_until and time.monotonic() >= self._accept_paused_until:
                self._accept_paused_until = 0.0
                self._selector.register(self.socket, selectors.EVENT_READ)
        for connection in list(self._waiting):
            self._close(connection)

    def shutdown(self) -> None:
        self._stopping.set()

    def server_close(self) -> None:
        self._selector.close()
        super().server_close()

    def _accept(self) -> None:
        try:
            connection, address = self.socket.accept()
        except OSError:  # out of file descriptors, or the client already gave up: retry in a moment
            self._selector.unregister(self.socket)
            self._accept_paused_until = time.monotonic() + ACCEPT_PAUSE_S
            return
        if len(self._waiting) >= MAX_WAITING:
            self._evict_oldest()
        connection.setblocking(False)
        self._waiting[connection] = _Waiting(address, time.monotonic() + REQUEST_TIMEOUT_S)
        self._selector.register(connection, selectors.EVENT_READ)

    def _read(self, connection: socket.socket) -> None:
        waiting = self._waiting.get(connection)
        if waiting is None:  # closed (evicted) earlier in this same turn of the selector
            return
        try:
            chunk = connection.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._close(connection)
            return
        waiting.data += chunk
        if not _request_complete(waiting.data) and len(waiting.data) < MAX_REQUEST_BYTES:
            return
        self._selector.unregister(connection)
        del self._waiting[connection]
        connection.setblocking(True)
        if not self._workers.acquire(blocking=False):
            _answer_busy(connection)
            return
        try:
            threading.Thread(target=self._handle, args=(connection, waiting), name="http-request",
                             daemon=True).start()
        except RuntimeError:  # no thread to be had (TasksMax): answer busy rather than fail
            self._workers.release()
            _answer_busy(connection)

    def _handle(self, connection: socket.socket, waiting: _Waiting) -> None:
        try:
            self.RequestHandlerClass(_Prefetched(connection, waiting.data), waiting.address, self)  # type: ignore[arg-type]
        except (ConnectionError, TimeoutError) as error:  # a viewer closing mid-reply is routine
            log.debug("http: client %s went away: %s", waiting.address[0], error)
        except Exception:
            log.exception("http: error while serving %s", waiting.address[0])
        finally:
            connection.close()
            self._workers.release()

    def _expire(self) -> None:
        now = time.monotonic()
        for connection in [c for c, w in self._waiting.items() if w.deadline < now]:
            self._close(connection)

    def _evict_oldest(self) -> None:
        if self._waiting:
            self._close(next(iter(self._waiting)))

    def _close(self, connection: socket.socket) -> None:
        self._waiting.pop(connection, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(connection)
        connection.close()


@dataclass(slots=True)
class _Waiting:
    """A connection whose request has not fully arrived."""

    address: tuple
    deadline: float  # time.monotonic() by which the request must be complete
    data: bytes = b""


class _Prefetched:
    """The connection as the request handler sees it: its request already read, the socket for replies."""

    def __init__(self, connection: socket.socket, request: bytes) -> None:
        self._connection = connection
        self._request = request

    def makefile(self, *_args: object) -> io.BytesIO:
        """The request's reader (replies go straight to the socket: handlers write unbuffered)."""
        return io.BytesIO(self._request)

    def settimeout(self, timeout: float | None) -> None:
        self._connection.settimeout(timeout)

    def setsockopt(self, *args: int) -> None:
        self._connection.setsockopt(*args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._connection, name)


def _request_complete(data: bytes) -> bool:
    """The request line and headers have arrived (CRLF as HTTP says, or the bare LF some scripts send)."""
    return b"\r\n\r\n" in data or b"\n\n" in data


def _answer_busy(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.settimeout(1.0)
        connection.sendall(b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 27\r\nConnection: close\r\n\r\n{\"error\": \"server is busy\"}\n")
    connection.close()


class HttpServer:
    def __init__(self, host: str, port: int, endpoints: Endpoints) -> None:
        handler = _make_handler(endpoints, threading.BoundedSemaphore(max(1, endpoints.preview_clients)))
        self._server = _Server(host, port, handler, REQUEST_WORKERS + endpoints.preview_clients)
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"{host}:{port}"

    def start(self) -> None:
        self._thread.start()
        log.info("http: serving /metrics /healthz /readyz /cameras on http://%s", self.address)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
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
                self._json(200, {"cameras": endpoints.camera_status(), "detector": endpoints.detector})
            elif path == "/fleet":
                self._json(*fleet_reply(endpoints))
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
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PREVIEW_SEND_BUFFER)
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
