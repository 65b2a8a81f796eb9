"""The HTTP endpoints as a Starlette application: the console at /, the JSON API (described at
/openapi.json), /metrics, the preview images and streams, and the live event feed (SSE).

Every handler is a coroutine that only reads the daemon's state under its short locks; the one piece of
real work, drawing and encoding a preview JPEG, runs in a small thread pool, so the event loop stays free."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from daemon.outputs.preview import PreviewStore
from daemon.service.auth import OPEN_PATHS, TOKEN_COOKIE, HttpAuth
from daemon.service.editor import ConfigEditor, EditorError
from daemon.service.event_feed import EventFeed
from daemon.service.metrics import Metrics
from daemon.service.openapi import openapi_document

MJPEG_BOUNDARY = "argusd-frame"
PREVIEW_KEEPALIVE_S = 5.0  # a stalled camera's last frame is re-sent this often, so dead viewers are noticed
FEED_KEEPALIVE_S = 15.0  # an idle event feed sends an SSE comment this often, so dead viewers are noticed
REQUEST_WORKERS = 16  # ordinary requests served at once, beyond the preview and feed viewers; more get 503
FEED_CLIENTS = 8  # most simultaneous /events/stream viewers; more get 503
# The feed shows an event before the snapshot writer has stored its JPEG: a request for it waits this long.
SNAPSHOT_WAIT_S = 5.0
SNAPSHOT_POLL_S = 0.25
ENCODERS = 2  # preview JPEGs drawn and encoded at once (threads)
CONSOLE = resources.files("daemon") / "console"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """What the endpoints read from the daemon."""

    metrics: Metrics
    camera_status: Callable[[], list[dict]]
    readiness: Callable[[], tuple[bool, dict]]  # (ready, details)
    preview: PreviewStore
    preview_clients: int  # most simultaneous MJPEG viewers
    detector: dict[str, str]  # what /cameras says of the detector all cameras share (runtime, device)
    feed: EventFeed | None = None  # the live event feed; None: /events/stream answers 404
    rules: Callable[[str], dict | None] = field(default=lambda _camera_id: None)  # a camera's zones and lines
    editor: ConfigEditor | None = None  # the zone editor's validation (and, when allowed, writes)
    auth: HttpAuth | None = None
    snapshot_image: Callable[[dict], bytes | None] = field(default=lambda _where: None)  # an event's JPEG
    fleet_status: Callable[[], dict | None] = field(default=lambda: None)  # GET /fleet; None outside fleet mode


def build_app(endpoints: Endpoints) -> ASGIApp:
    api = _Api(endpoints)
    routes = [
        Route("/", api.console, include_in_schema=False),
        Mount("/console", StaticFiles(directory=str(CONSOLE)), name="console"),
        Route("/openapi.json", api.openapi),
        Route("/metrics", api.metrics),
        Route("/healthz", api.healthz),
        Route("/readyz", api.readyz),
        Route("/cameras", api.cameras),
        Route("/fleet", api.fleet),
        Route("/cameras/{camera_id}/latest.jpg", api.latest),
        Route("/cameras/{camera_id}/preview.mjpg", api.preview),
        Route("/cameras/{camera_id}/rules", api.rules),
        Route("/events/stream", api.event_stream),
        Route("/events/{event_id}/snapshot.jpg", api.snapshot),
        Route("/config/rules/validate", api.validate_rules, methods=["POST"]),
        Route("/config/rules/apply", api.apply_rules, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})  # type: ignore[dict-item]
    guarded: ASGIApp = _Authenticated(app, endpoints.auth) if endpoints.auth is not None else app
    streams = endpoints.preview_clients + (FEED_CLIENTS if endpoints.feed is not None else 0)
    return _Bounded(guarded, REQUEST_WORKERS + streams)


def error(status: int, message: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"error": message}, status, headers)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 404:
        return error(404, f"no such endpoint: {request.url.path}")
    return error(exc.status_code, str(exc.detail), None)


class _Api:
    def __init__(self, endpoints: Endpoints) -> None:
        self.e = endpoints
        self.preview_slots = asyncio.Semaphore(endpoints.preview_clients) if endpoints.preview_clients else None
        self.feed_slots = asyncio.Semaphore(FEED_CLIENTS)
        self.encoders = CapacityLimiter(ENCODERS)
        self.document = openapi_document()

    def _known(self, camera_id: str) -> bool:
        return any(camera["id"] == camera_id for camera in self.e.camera_status())

    async def console(self, _request: Request) -> Response:
        return FileResponse(str(CONSOLE / "index.html"), headers={"Cache-Control": "no-store"})

    async def openapi(self, _request: Request) -> Response:
        return JSONResponse(self.document)

    async def metrics(self, _request: Request) -> Response:
        body, content_type = self.e.metrics.exposition()
        return Response(body, media_type=content_type)

    async def healthz(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, _request: Request) -> Response:
        ready, details = self.e.readiness()
        return JSONResponse({"status": "ready" if ready else "not ready", **details}, 200 if ready else 503)

    async def cameras(self, _request: Request) -> Response:
        return JSONResponse({"cameras": self.e.camera_status(), "detector": self.e.detector})

    async def fleet(self, _request: Request) -> Response:
        status = self.e.fleet_status()
        if status is None:
            return error(404, "not a fleet member (no fleet: section)")
        return JSONResponse(status)

    async def rules(self, request: Request) -> Response:
        camera_id = request.path_params["camera_id"]
        rules = self.e.rules(camera_id)
        if rules is None:
            return error(404, f"no such camera: {camera_id}")
        editor = self.e.editor
        return JSONResponse({**rules, "editable": editor is not None, "writable": bool(editor and editor.writable)})

    async def latest(self, request: Request) -> Response:
        camera_id = request.path_params["camera_id"]
        if not self._known(camera_id):
            return error(404, f"no such camera: {camera_id}")
        latest = await anyio.to_thread.run_sync(self.e.preview.latest_jpeg, camera_id, limiter=self.encoders)
        if latest is None:
            return error(503, f"camera {camera_id} has no analysed frame yet", retry_after=1)
        return Response(latest[1], media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def preview(self, request: Request) -> Response:
        camera_id = request.path_params["camera_id"]
        if not self._known(camera_id):
            return error(404, f"no such camera: {camera_id}")
        slots = self.preview_slots
        if slots is None or slots.locked():
            self.e.metrics.preview_rejected.inc()
            return error(503, f"preview limit reached ({self.e.preview_clients} viewer(s))", retry_after=5)
        await slots.acquire()
        return StreamingResponse(self._frames(camera_id, slots), media_type=(
            f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}"), headers={"Cache-Control": "no-store"})

    async def _frames(self, camera_id: str, slot: asyncio.Semaphore) -> AsyncIterator[bytes]:
        """Each new analysed frame once; the last one again every PREVIEW_KEEPALIVE_S while none comes, so a
        viewer that went away is noticed (the connection layer drops one that stops reading)."""
        preview, metrics = self.e.preview, self.e.metrics
        metrics.preview_clients.inc()
        try:
            sent = 0
            while not preview.closed:
                seq = preview.latest_seq(camera_id)
                if seq is None or seq <= sent:
                    if await preview.wakeup.wait(PREVIEW_KEEPALIVE_S):
                        continue
                    if preview.closed or not self._known(camera_id):
                        return  # the daemon is stopping, or the camera was removed
                latest = await anyio.to_thread.run_sync(preview.latest_jpeg, camera_id, limiter=self.encoders)
                if latest is None:
                    continue
                sent, jpeg = latest
                yield (f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                       .encode() + jpeg + b"\r\n")
        finally:
            metrics.preview_clients.dec()
            slot.release()

    async def event_stream(self, request: Request) -> Response:
        feed = self.e.feed
        if feed is None:
            return error(404, "the event feed is off")
        if self.feed_slots.locked():
            return error(503, f"event feed limit reached ({FEED_CLIENTS} viewer(s))", retry_after=5)
        await self.feed_slots.acquire()
        return StreamingResponse(self._events(feed), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def _events(self, feed: EventFeed) -> AsyncIterator[bytes]:
        """Server-sent events from now on: one `data:` line of the published JSON per event."""
        try:
            seen = feed.last_seq
            yield b"retry: 2000\n: argusd event feed\n\n"
            while True:
                items = feed.after(seen)
                if items:
                    seen = items[-1].seq
                    yield b"".join(f"id: {i.seq}\ndata: {json.dumps(i.event, separators=(',', ':'))}\n\n".encode()
                                   for i in items)
                elif not await feed.wakeup.wait(FEED_KEEPALIVE_S):
                    yield b": keep-alive\n\n"
        finally:
            self.feed_slots.release()

    async def snapshot(self, request: Request) -> Response:
        event_id = request.path_params["event_id"]
        where = self.e.feed.snapshot_of(event_id) if self.e.feed is not None else None
        if where is None:
            return error(404, f"no snapshot of a recent event {event_id}")
        deadline = asyncio.get_running_loop().time() + SNAPSHOT_WAIT_S
        while (image := await anyio.to_thread.run_sync(self.e.snapshot_image, where, limiter=self.encoders)) is None:
            if asyncio.get_running_loop().time() >= deadline:
                return error(404, f"the snapshot of {event_id} is not written", retry_after=1)
            await asyncio.sleep(SNAPSHOT_POLL_S)
        return Response(image, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    async def validate_rules(self, request: Request) -> Response:
        return await self._edit(request, apply=False)

    async def apply_rules(self, request: Request) -> Response:
        if self.e.editor is None or not self.e.editor.writable:
            return error(403, "config writes are off (http.allow_config_writes: false)")
        return await self._edit(request, apply=True)

    async def _edit(self, request: Request, apply: bool) -> Response:
        editor = self.e.editor
        if editor is None:
            return error(404, "the daemon runs without a config file")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return error(415, "send the rules as application/json")  # also keeps cross-site forms out
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return error(400, "the body is not JSON")
        run: Callable[..., Awaitable[dict]] = editor.apply if apply else editor.validate
        try:
            result = await run(body)
        except EditorError as problem:
            return JSONResponse({"valid": False, "error": str(problem)}, 422)
        return JSONResponse(result)


class _Authenticated:
    """Every request but the health probes carries http.auth's credentials, or gets 401."""

    def __init__(self, app: ASGIApp, auth: HttpAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        authorization = request.headers.get("authorization")
        cookie = request.cookies.get(TOKEN_COOKIE)
        if self.auth.token is not None:  # a comparison
            allowed = self.auth.allows(authorization, cookie)
        else:  # a first sight of basic credentials costs an scrypt: off the loop
            allowed = await anyio.to_thread.run_sync(self.auth.allows, authorization, cookie)
        if allowed:
            await self.app(scope, receive, send)
            return
        challenge = f'{self.auth.scheme} realm="argusd"'
        response = JSONResponse({"error": "authentication required"}, 401, {"WWW-Authenticate": challenge})
        await response(scope, receive, send)


class _Bounded:
    """At most ``limit`` requests in progress (streams included); beyond that 503 at once."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_progress = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_progress >= self.limit:
            await error(503, "server is busy", retry_after=1)(scope, receive, send)
            return
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1

