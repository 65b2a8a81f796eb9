"""Camera sources: one supervised GStreamer pipeline per camera, frames out as BGR numpy arrays.

GStreamer's threads decode, drop to the analysis rate (videorate, in C), scale and convert; Python only
sees frames that will be analysed. A pipeline is never reused after an error: a fresh one is built.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np

from .config import CameraConfig
from .gst import GLib, Gst, GstVideo
from .redact import redact_text, redact_url
from .types import Frame

log = logging.getLogger(__name__)


class CameraState(str, enum.Enum):
    STARTING = "starting"
    STREAMING = "streaming"
    STALLED = "stalled"
    BACKOFF = "backoff"
    FAILED = "failed"
    FINISHED = "finished"  # a file source that reached its end and does not loop
    STOPPED = "stopped"


TEST_PATTERNS = {"smpte", "ball", "snow", "black", "white", "red", "green", "blue", "checkers-8", "gamut"}


def is_live(url: str) -> bool:
    return urlsplit(url).scheme.lower() not in ("file",)


def _source_description(url: str) -> tuple[str, dict[str, object]]:
    """The source element (factory name and properties) for a camera URL; decoding follows it."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "test":
        pattern = (parts.netloc or parts.path.strip("/") or "smpte").lower()
        if pattern not in TEST_PATTERNS:
            pattern = "smpte"
        return "videotestsrc", {"is-live": True, "pattern": pattern}
    if scheme == "v4l2":
        return "v4l2src", {"device": unquote(parts.path)}
    return "uridecodebin", {"uri": url}


class CameraSource:
    """Runs one camera's pipeline under a supervisor thread and hands frames to ``on_frame``.

    The supervisor rebuilds the pipeline after errors, end of a live stream, or a watchdog stall, with
    jittered exponential backoff; a file source stops at its end unless it loops.
    """

    def __init__(
        self,
        config: CameraConfig,
        on_frame: Callable[[Frame], None],
        on_state: Callable[[str, CameraState, str | None], None] | None = None,
        on_rate_stats: Callable[[str, int, int], None] | None = None,
        watchdog_s: float = 5.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.config = config
        self._on_frame = on_frame
        self._on_state = on_state
        self._on_rate_stats = on_rate_stats
        self.watchdog_s = watchdog_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.state = CameraState.STOPPED
        self.last_error: str | None = None
        self.frames_delivered = 0
        self.reconnects = 0
        self._last_frame_monotonic = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pipeline: Gst.Pipeline | None = None
        self._videorate: Gst.Element | None = None
        self._rate_seen = (0, 0)

    @property
    def camera_id(self) -> str:
        return self.config.id

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._supervise, name=f"camera-{self.camera_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._set_state(CameraState.STOPPED)

    @property
    def done(self) -> bool:
        return self.state in (CameraState.FINISHED, CameraState.STOPPED)

    # -- supervision ---------------------------------------------------------------------------------

    def _set_state(self, state: CameraState, error: str | None = None) -> None:
        if error is not None:
            self.last_error = redact_text(error)
        if state == self.state and error is None:
            return
        self.state = state
        if state == CameraState.STREAMING:
            log.info("camera %s: streaming", self.camera_id)
        elif error is not None:
            log.warning("camera %s: %s: %s", self.camera_id, state.value, self.last_error)
        else:
            log.info("camera %s: %s", self.camera_id, state.value)
        if self._on_state is not None:
            self._on_state(self.camera_id, state, self.last_error)

    def _supervise(self) -> None:
        delay = self.backoff_initial_s
        while not self._stop.is_set():
            outcome = self._run_once()
            self._teardown()
            if outcome == "stop":
                return
            if outcome == "finished":
                self._set_state(CameraState.FINISHED)
                return
            if outcome == "restart":  # a looping file: no backoff needed
                delay = self.backoff_initial_s
                continue
            if outcome == "streamed":
                delay = self.backoff_initial_s
            self.reconnects += 1
            wait = delay * random.uniform(0.8, 1.2)
            self._set_state(CameraState.BACKOFF)
            log.info("camera %s: reconnecting in %.1f s", self.camera_id, wait)
            if self._stop.wait(wait):
                return
            delay = min(delay * 2, self.backoff_max_s)

    def _run_once(self) -> str:
        """Build and run one pipeline until it ends; returns why: stop, finished, restart, streamed, error."""
        self._set_state(CameraState.STARTING)
        try:
            pipeline = self._build()
        except (GLib.Error, ValueError) as error:
            self._set_state(CameraState.FAILED, str(error))
            return "error"
        missing = self._missing_file()
        if missing:
            self._set_state(CameraState.FAILED, missing)
            return "error"
        self._pipeline = pipeline
        self._last_frame_monotonic = 0.0
        started = time.monotonic()
        streamed = False
        bus = pipeline.get_bus()
        if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            message = bus.timed_pop_filtered(0, Gst.MessageType.ERROR)
            self._set_state(CameraState.FAILED, _error_text(message) if message else "pipeline failed to start")
            return "error"
        mask = Gst.MessageType.ERROR | Gst.MessageType.EOS
        while not self._stop.is_set():
            message = bus.timed_pop_filtered(200 * Gst.MSECOND, mask)
            self._collect_rate_stats()
            now = time.monotonic()
            if self._last_frame_monotonic > 0:
                streamed = True
                if self.state != CameraState.STREAMING and now - self._last_frame_monotonic < self.watchdog_s:
                    self._set_state(CameraState.STREAMING)
            if message is not None:
                if message.type == Gst.MessageType.ERROR:
                    self._set_state(CameraState.FAILED, _error_text(message))
                    return "streamed" if streamed else "error"
                if not is_live(self.config.url):
                    return "restart" if self.config.loop else "finished"
                self._set_state(CameraState.BACKOFF, "end of stream from a live source")
                return "streamed"
            last = self._last_frame_monotonic or started
            if now - last > self.watchdog_s:
                reason = "no frame for %.1f s" % (now - last)
                self._set_state(CameraState.STALLED, reason)
                return "streamed" if streamed else "error"
        return "stop"

    def _missing_file(self) -> str | None:
        parts = urlsplit(self.config.url)
        if parts.scheme.lower() == "file":
            path = Path(unquote(parts.path))
            if not path.is_file():
                return f"file not found: {path}"
        return None

    # -- pipeline ------------------------------------------------------------------------------------

    def _build(self) -> Gst.Pipeline:
        factory, properties = _source_description(self.config.url)
        pipeline = Gst.Pipeline.new(f"camera-{self.camera_id}")
        source = Gst.ElementFactory.make(factory, "source")
        if source is None:
            raise ValueError(f"GStreamer element {factory!r} is not installed")
        for name, value in properties.items():
            source.set_property(name, value)
        if factory == "uridecodebin":
            source.connect("source-setup", self._on_source_setup)
        tail = Gst.parse_bin_from_description(self._tail_description(factory), True)
        pipeline.add(source)
        pipeline.add(tail)
        if factory == "uridecodebin":
            source.connect("pad-added", self._on_pad_added, tail)
        elif not source.link(tail):
            raise ValueError(f"cannot link {factory} to the decoder")
        sink = tail.get_by_name("sink")
        sink.connect("new-sample", self._on_sample)
        self._videorate = tail.get_by_name("rate")
        self._rate_seen = (0, 0)
        return pipeline

    def _tail_description(self, factory: str) -> str:
        rate = Fraction(self.config.fps).limit_denominator(1001)
        size = ""
        if self.config.width:
            size += f",width={self.config.width}"
        if self.config.height:
            size += f",height={self.config.height}"
        decode = "decodebin ! " if factory == "v4l2src" else ""
        sync = "true" if factory == "uridecodebin" and not is_live(self.config.url) else "false"
        # A file plays at its own pace (sync=true) so it behaves like a camera; live sources never wait.
        return (
            f"{decode}videorate name=rate drop-only=true skip-to-first=true "
            f"! video/x-raw,framerate={rate.numerator}/{rate.denominator} "
            f"! videoscale ! videoconvert ! video/x-raw,format=BGR,pixel-aspect-ratio=1/1{size} "
            f"! appsink name=sink emit-signals=true max-buffers=1 drop=true sync={sync}"
        )

    @staticmethod
    def _on_source_setup(_bin: Gst.Element, source: Gst.Element) -> None:
        if source.find_property("protocols") is not None:  # rtspsrc: TCP survives lossy links and NAT
            source.set_property("protocols", "tcp")
        if source.find_property("latency") is not None:
            source.set_property("latency", 200)

    @staticmethod
    def _on_pad_added(_source: Gst.Element, pad: Gst.Pad, tail: Gst.Bin) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        if not caps or not caps.to_string().startswith("video/"):
            return
        sink_pad = tail.get_static_pad("sink")
        if not sink_pad.is_linked():
            pad.link(sink_pad)

    def _on_sample(self, sink: Gst.Element) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.EOS
        frame = frame_from_sample(sample, self.camera_id, self.frames_delivered)
        self.frames_delivered += 1
        self._last_frame_monotonic = time.monotonic()
        self._on_frame(frame)
        return Gst.FlowReturn.OK

    def _collect_rate_stats(self) -> None:
        if self._videorate is None or self._on_rate_stats is None:
            return
        seen_in = self._videorate.get_property("in")
        # drop-only mode does not update videorate's "drop" property; what went in and not out was dropped
        dropped = seen_in - self._videorate.get_property("out")
        last_in, last_dropped = self._rate_seen
        self._rate_seen = (seen_in, dropped)
        if seen_in > last_in or dropped > last_dropped:
            self._on_rate_stats(self.camera_id, seen_in - last_in, dropped - last_dropped)

    def _teardown(self) -> None:
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            self._collect_rate_stats()
            pipeline.set_state(Gst.State.NULL)
            pipeline.get_state(2 * Gst.SECOND)
        self._videorate = None


def _error_text(message: Gst.Message) -> str:
    error, debug = message.parse_error()
    source = message.src.get_name() if message.src is not None else "pipeline"
    text = f"{source}: {error.message}"
    if debug:
        text += f" ({debug.splitlines()[-1][:200]})"
    return redact_text(text)


def frame_from_sample(sample: Gst.Sample, camera_id: str, seq: int) -> Frame:
    """Copy a BGR sample out of GStreamer once, honouring the row stride (rows are padded)."""
    info = GstVideo.VideoInfo.new_from_caps(sample.get_caps())
    width, height, stride = info.width, info.height, info.stride[0]
    buffer = sample.get_buffer()
    ok, mapinfo = buffer.map(Gst.MapFlags.READ)
    if not ok:
        raise RuntimeError("cannot map GStreamer buffer")
    try:
        data = mapinfo.data  # bytes: the single copy out of GStreamer memory
    finally:
        buffer.unmap(mapinfo)
    rows = np.frombuffer(data, np.uint8, count=stride * height).reshape(height, stride)
    image = rows[:, : width * 3].reshape(height, width, 3)
    pts = buffer.pts if buffer.pts != Gst.CLOCK_TIME_NONE else -1
    return Frame(camera_id=camera_id, seq=seq, pts_ns=pts, captured_at=time.time(), image=image)


__all__ = ["CameraSource", "CameraState", "frame_from_sample", "redact_url"]
