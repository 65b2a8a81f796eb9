"""uvicorn's HTTP/1.1 protocol with the connection bounds argusd needs beyond what uvicorn offers.

uvicorn closes an idle keep-alive connection, but a client that connects and never sends (or drips) its
request keeps its descriptor for ever, and a viewer that stops reading keeps its preview slot for ever.
Here a connection whose request has not arrived whole within ``REQUEST_TIMEOUT_S`` is closed, at most
``MAX_WAITING`` such connections are open (the oldest is closed to make room, so a health check always gets
through even under a descriptor limit), and a connection whose replies have not drained for
``CLIENT_TIMEOUT_S`` is aborted. All of it runs on the server's event loop: no thread per connection.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

REQUEST_TIMEOUT_S = 5.0  # a request must arrive whole within this long of connecting (or of the last reply)
MAX_WAITING = 256  # open connections whose request has not arrived; the oldest is closed beyond this
CLIENT_TIMEOUT_S = 10.0  # a client that stops reading is dropped after this long, freeing its slot
# Every connection's kernel send buffer (Linux doubles it). Left to autotuning it grows to megabytes, which
# a preview viewer that stops reading fills only after a minute of frames, before CLIENT_TIMEOUT_S starts.
SEND_BUFFER = 64 * 1024
SWEEP_S = 0.5  # how often connections past their request deadline are looked for


@dataclass(slots=True)
class ConnectionBounds:
    """The waiting connections of one server, oldest first (a dict keeps insertion order)."""

    waiting: dict[BoundedH11Protocol, float] = field(default_factory=dict)  # -> deadline (time.monotonic())
    sweeper: asyncio.TimerHandle | None = None

    def wait_for_request(self, connection: BoundedH11Protocol) -> None:
        self.waiting.pop(connection, None)
        while len(self.waiting) >= MAX_WAITING:
            oldest = next(iter(self.waiting))
            self.done_waiting(oldest)
            oldest.transport.abort()
        self.waiting[connection] = time.monotonic() + REQUEST_TIMEOUT_S
        if self.sweeper is None:
            self.sweeper = connection.loop.call_later(SWEEP_S, self._sweep, connection.loop)

    def done_waiting(self, connection: BoundedH11Protocol) -> None:
        self.waiting.pop(connection, None)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        for connection in [c for c, deadline in self.waiting.items() if deadline < now]:
            self.done_waiting(connection)
            connection.transport.abort()
        self.sweeper = loop.call_later(SWEEP_S, self._sweep, loop) if self.waiting else None


class BoundedH11Protocol(H11Protocol):
    """Set ``bounds`` on a subclass per server (bounded_protocol())."""

    bounds: ConnectionBounds
    _stuck: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        self.bounds.wait_for_request(self)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in: it is being served
            self.bounds.done_waiting(self)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():  # kept alive: waiting for its next request
            self.bounds.wait_for_request(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.bounds.done_waiting(self)
        self._unstick()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stuck is None:
            self._stuck = self.loop.call_later(CLIENT_TIMEOUT_S, self.transport.abort)

    def resume_writing(self) -> None:
        self._unstick()
        super().resume_writing()

    def _unstick(self) -> None:
        if self._stuck is not None:
            self._stuck.cancel()
            self._stuck = None


def bounded_protocol() -> type[BoundedH11Protocol]:
    """A protocol class with its own ConnectionBounds, for one server."""
    return type("ServerH11Protocol", (BoundedH11Protocol,), {"bounds": ConnectionBounds()})
