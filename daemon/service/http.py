"""The HTTP server: the Starlette application (http_app.py) on uvicorn, in the daemon's process, on its own
thread and event loop, so no request ever waits on (or holds up) the inference thread.

uvicorn rather than a hand-written server: it is maintained, speaks HTTP/1.1 through h11, and streams
(MJPEG, SSE) as coroutines, so a thousand idle or slow clients cost descriptors, never threads. The
connection bounds uvicorn lacks are added in http_connections.py. The loop is uvloop's: accepting and
setting up a connection in C keeps a flood of them from starving /healthz in a process whose other threads
want the GIL (asyncio's own loop took 1.3-2.5 s to reach /healthz behind 1,100 slow clients; uvloop 0.3 s)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

import uvicorn
import uvloop

from daemon.service.http_app import Endpoints, build_app
from daemon.service.http_connections import CLIENT_TIMEOUT_S, REQUEST_TIMEOUT_S, bounded_protocol

__all__ = ["CLIENT_TIMEOUT_S", "REQUEST_TIMEOUT_S", "Endpoints", "HttpServer"]

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 16384  # a request line and headers larger than this are refused (400)
BACKLOG = 2048  # connections the kernel holds before accept(); the bounds apply once accepted
# asyncio accepts up to its create_server() backlog in one turn before any connection is set up (and the oldest
# waiting closed): a large batch under a 1,024-descriptor limit runs out of descriptors, and asyncio then
# stops accepting for a whole second. So uvicorn gets a small backlog, and the kernel's queue is widened after.
ACCEPT_BATCH = 64
STOP_TIMEOUT_S = 3.0  # open streams get this long to end when the daemon stops


class HttpServer:
    def __init__(self, host: str, port: int, endpoints: Endpoints) -> None:
        """Binds at once, so an address in use fails here (OSError), before anything else starts."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family, backlog=BACKLOG)
        self._endpoints = endpoints
        config = uvicorn.Config(
            build_app(endpoints), lifespan="off", log_config=None, access_log=False, server_header=False,
            http=bounded_protocol(), ws="none", timeout_keep_alive=int(REQUEST_TIMEOUT_S),
            h11_max_incomplete_event_size=MAX_REQUEST_BYTES, timeout_graceful_shutdown=int(STOP_TIMEOUT_S),
            backlog=ACCEPT_BATCH,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"{host}:{port}"

    def start(self) -> None:
        self._thread.start()
        log.info("http: serving the console, /metrics /healthz /readyz /cameras on http://%s", self.address)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(STOP_TIMEOUT_S + 5)
        self._socket.close()

    def _serve(self) -> None:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self._serve_on_loop())

    async def _serve_on_loop(self) -> None:
        loop = asyncio.get_running_loop()
        wakeups = [self._endpoints.preview.wakeup]
        if self._endpoints.feed is not None:
            wakeups.append(self._endpoints.feed.wakeup)
        for wakeup in wakeups:
            wakeup.attach(loop)
        try:
            serving = asyncio.create_task(self._server.serve(sockets=[self._socket]))
            while not self._server.started and not serving.done():
                await asyncio.sleep(0.01)
            self._socket.listen(BACKLOG)  # uvicorn listened with ACCEPT_BATCH
            await serving
        finally:
            for wakeup in wakeups:
                wakeup.detach()
