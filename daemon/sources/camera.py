"""Camera sources: one supervised GStreamer pipeline per camera, frames out as I420 copies that become BGR
numpy arrays when analysed.

GStreamer's threads decode, drop to the analysis rate (videorate, in C) and scale; Python only sees frames
at the analysis rate, and only the ones inference takes are colour-converted. A pipeline is never reused after an error: a fresh one is built.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from urllib.parse import unquote, urlsplit


from daemon.config.models import CameraConfig
from daemon.sources.gst import GLib, Gst, GstVideo
from daemon.core.redact import redact_text, redact_url, url_secrets
from daemon.core.types import Frame, YuvImage

log = logging.getLogger(__name__)


class CameraState(str, enum.Enum):
    STARTING = "starting"  # building a pipeline and waiting for its first frame
    STREAMING = "streaming"  # frames arrive
    STALLED = "stalled"  # frames stopped for watchdog_s; stays until frames flow again or an attempt errors
    BACKOFF = "backoff"  # a live source is down (last_error says why); waiting to reconnect
    FAILED = "failed"  # gave up: an error retrying cannot fix (file, missing element); a reload retries it
    FINISHED = "finished"  # a file source that reached its end and does not loop
    STOPPED = "stopped"


class _Ending(enum.Enum):
    """Why one pipeline run ended."""

    STOP = "stop"  # stop() was called
    FINISHED = "finished"  # a file reached its end and does not loop
    ERROR = "error"  # GStreamer reported an error, or a live source ended its stream
    TIMEOUT = "timeout"  # no frame for watchdog_s, or no first frame within start_timeout_s
    BROKEN = "broken"  # the pipeline cannot even be built: retrying cannot help


@dataclass(frozen=True, slots=True)
class _RunResult:
    ending: _Ending
    streamed_s: float  # how long frames flowed in this run


# A run that streamed this long shows the camera healthy again: its next failure backs off from the start.
STABLE_STREAM_S = 10.0
POLL_S = 0.2  # bus poll interval, hence the watchdog's resolution

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

    Every attempt builds a fresh pipeline and tears it down completely (state NULL, signal handlers
    disconnected, references dropped). A live source is reconnected after an error, an end of stream or a
    watchdog stall, with jittered exponential backoff. A file source loops (seek to the start) or finishes;
    its errors are final (FAILED) until a reload. ``on_frame`` runs on GStreamer's streaming thread, the
    other callbacks on the supervisor thread.
    """

    def __init__(
        self,
        config: CameraConfig,
        on_frame: Callable[[Frame], None],
        on_state: Callable[[str, CameraState, str | None], None] | None = None,
        on_rate_stats: Callable[[str, int, int], None] | None = None,
        on_reconnect: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self._on_frame = on_frame
        self._on_state = on_state
        self._on_rate_stats = on_rate_stats
        self._on_reconnect = on_reconnect
        self._secrets = url_secrets(config.url)
        self.live = is_live(config.url)
        self.offline = config.offline
        self._timeline_origin: float | None = None  # offline: wall time of the file's PTS 0 in this run
        self.state = CameraState.STOPPED
        self.state_since = time.time()
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self._logged_error: str | None = None  # the error last logged since frames last flowed
        self.frames_delivered = 0
        self.reconnects = 0
        self.stalls = 0
        self.next_attempt_at: float | None = None
        self._last_frame_monotonic = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pipeline: Gst.Pipeline | None = None
        self._handlers: list[tuple[Gst.Element, int]] = []
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
            if self._thread.is_alive():
                log.warning("camera %s: pipeline did not stop within %.0f s", self.camera_id, timeout)
            self._thread = None
        self._set_state(CameraState.STOPPED)

    @property
    def done(self) -> bool:
        """No frame will come any more: finished, stopped, or failed for good."""
        return self.state in (CameraState.FINISHED, CameraState.STOPPED, CameraState.FAILED)

    def status(self) -> dict[str, object]:
        """A JSON-ready view of the supervisor; the URL and error text are already redacted."""
        last_frame = self._last_frame_monotonic
        waiting = self.state in (CameraState.BACKOFF, CameraState.STALLED) and self.next_attempt_at
        return {
            "id": self.camera_id,
            "url": redact_url(self.config.url),
            "state": self.state.value,
            "state_since": round(self.state_since, 3),
            "last_error": self.last_error,
            "last_error_at": round(self.last_error_at, 3) if self.last_error_at else None,
            "last_frame_age_s": round(time.monotonic() - last_frame, 3) if last_frame else None,
            "next_attempt_in_s": round(max(0.0, self.next_attempt_at - time.time()), 3) if waiting else None,
            "fps_target": self.config.fps,
            "frames_received": self.frames_delivered,
            "reconnects": self.reconnects,
            "stalls": self.stalls,
        }

    # -- supervision ---------------------------------------------------------------------------------

    def _set_state(self, state: CameraState) -> None:
        if state == self.state or (self._stop.is_set() and state != CameraState.STOPPED):
            return
        previous, self.state = self.state, state
        self.state_since = time.time()
        if state == CameraState.STALLED and previous == CameraState.STREAMING:
            self.stalls += 1
        if self._on_state is not None:
            self._on_state(self.camera_id, state, self.last_error)

    def _record_error(self, text: str) -> bool:
        """Keep the error, redacted; True when it is news since frames last flowed (worth a log line)."""
        text = redact_text(text, self._secrets)
        news = text != self._logged_error
        self.last_error, self.last_error_at, self._logged_error = text, time.time(), text
        return news

    def _supervise(self) -> None:
        config = self.config
        delay = config.backoff_initial_s
        log.info("camera %s: starting %s", self.camera_id, redact_url(config.url))
        while not self._stop.is_set():
            try:
                result = self._run_once()
            except Exception:  # a bug in one run must not end this camera's supervision: retry as after an error
                log.exception("camera %s: unexpected error; reconnecting", self.camera_id)
                self._record_error("internal error (see the log)")
                result = _RunResult(_Ending.ERROR, 0.0)
            self._teardown()
            if result.ending == _Ending.STOP:
                return
            if result.ending == _Ending.FINISHED:
                log.info("camera %s: finished (end of file)", self.camera_id)
                self._set_state(CameraState.FINISHED)
                return
            if result.ending == _Ending.BROKEN or not self.live:
                # A file that cannot be read or decoded, or a missing element, will not heal by itself.
                log.error("camera %s: failed: %s (fix it, then reload)", self.camera_id, self.last_error)
                self._set_state(CameraState.FAILED)
                return
            if result.streamed_s >= STABLE_STREAM_S:
                delay = config.backoff_initial_s
            wait = delay * random.uniform(0.8, 1.2)  # jitter: cameras behind one switch do not retry in step
            self.next_attempt_at = time.time() + wait
            if result.ending == _Ending.ERROR or self.state != CameraState.STALLED:
                self._set_state(CameraState.BACKOFF)  # a silent stall stays reported until frames flow again
            self.reconnects += 1
            if self._on_reconnect is not None:
                self._on_reconnect(self.camera_id)
            log.debug("camera %s: reconnecting in %.1f s", self.camera_id, wait)
            if self._stop.wait(wait):
                return
            delay = min(delay * 2, config.backoff_max_s)

    def _run_once(self) -> _RunResult:
        """Build and run one pipeline until it ends, watching its frames and its bus."""
        if self.state != CameraState.STALLED:
            self._set_state(CameraState.STARTING)
        try:
            self._pipeline = self._build()
        except (GLib.Error, ValueError) as error:
            self._record_error(f"cannot build the pipeline: {error}")
            return _RunResult(_Ending.BROKEN, 0.0)
        missing = self._missing_file()
        if missing:
            self._record_error(missing)
            return _RunResult(_Ending.ERROR, 0.0)
        pipeline = self._pipeline
        started = time.monotonic()  # a frame after this is this run's; the age keeps growing across runs
        self._timeline_origin = None
        first_frame = 0.0
        warning: str | None = None
        bus = pipeline.get_bus()
        if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            message = bus.timed_pop_filtered(0, Gst.MessageType.ERROR)
            self._log_error(_message_text(message) if message else "the pipeline refused to start")
            return _RunResult(_Ending.ERROR, 0.0)
        mask = Gst.MessageType.ERROR | Gst.MessageType.EOS | Gst.MessageType.WARNING
        while not self._stop.is_set():
            message = bus.timed_pop_filtered(int(POLL_S * Gst.SECOND), mask)
            self._collect_rate_stats()
            now = time.monotonic()
            last_frame = self._last_frame_monotonic
            if last_frame > started and not first_frame:
                first_frame = last_frame
                log.info("camera %s: streaming (first frame after %.2f s)", self.camera_id, last_frame - started)
                self._logged_error = None
                self._set_state(CameraState.STREAMING)
            streamed_s = (last_frame - first_frame) if first_frame else 0.0
            if message is not None and message.type == Gst.MessageType.WARNING:
                warning = _message_text(message)
                log.debug("camera %s: %s", self.camera_id, redact_text(warning, self._secrets))
            elif message is not None and message.type == Gst.MessageType.ERROR:
                self._log_error(_message_text(message))
                return _RunResult(_Ending.ERROR, streamed_s)
            elif message is not None:  # end of stream
                if not self.live:
                    if not self.config.loop:
                        return _RunResult(_Ending.FINISHED, streamed_s)
                    if not pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0):
                        self._log_error("cannot seek back to the start of the file to loop it")
                        return _RunResult(_Ending.ERROR, streamed_s)
                    continue
                reason = f"; {warning}" if warning else ""
                self._log_error(f"disconnected: the source ended its stream{reason}")
                return _RunResult(_Ending.ERROR, streamed_s)
            # Offline, frames come at the detector's pace: a slow model is not a hung file.
            if first_frame and not self.offline and now - last_frame > self.config.watchdog_s:
                if self._record_error(f"stalled: no frame for {now - last_frame:.1f} s "
                                      f"(watchdog_s={self.config.watchdog_s:g})"):
                    log.warning("camera %s: %s; reconnecting", self.camera_id, self.last_error)
                self._set_state(CameraState.STALLED)
                return _RunResult(_Ending.TIMEOUT, streamed_s)
            if not first_frame and now - started > self.config.start_timeout_s:
                if self.state != CameraState.STALLED:  # a stalled camera that is still silent stays stalled
                    self._log_error(f"no first frame within {self.config.start_timeout_s:g} s of starting"
                                    f"{'; ' + warning if warning else ''}")
                return _RunResult(_Ending.TIMEOUT, 0.0)
        return _RunResult(_Ending.STOP, 0.0)

    def _log_error(self, text: str) -> None:
        """Record an error; log it once per distinct text, so a camera down for a day is not a log flood."""
        if self._record_error(text):
            log.warning("camera %s: %s", self.camera_id, self.last_error)
        else:
            log.debug("camera %s: again: %s", self.camera_id, self.last_error)

    def _missing_file(self) -> str | None:
        parts = urlsplit(self.config.url)
        if parts.scheme.lower() == "file":
            path = Path(unquote(parts.path))
            if not path.is_file():
                return f"file not found: {path}"
        return None

    # -- pipeline ------------------------------------------------------------------------------------

    def _connect(self, element: Gst.Element, signal: str, handler: Callable, *args: object) -> None:
        self._handlers.append((element, element.connect(signal, handler, *args)))

    def _build(self) -> Gst.Pipeline:
        factory, properties = _source_description(self.config.url)
        pipeline = Gst.Pipeline.new(f"camera-{self.camera_id}")
        source = Gst.ElementFactory.make(factory, "source")
        if source is None:
            raise ValueError(f"GStreamer element {factory!r} is not installed")
        for name, value in properties.items():
            source.set_property(name, value)
        tail = Gst.parse_bin_from_description(self._tail_description(factory), True)
        pipeline.add(source)
        pipeline.add(tail)
        if factory == "uridecodebin":
            self._connect(source, "source-setup", self._on_source_setup)
            self._connect(source, "pad-added", self._on_pad_added, tail)
        elif not source.link(tail):
            raise ValueError(f"cannot link {factory} to the decoder")
        self._connect(tail.get_by_name("sink"), "new-sample", self._on_sample)
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
        sync = "true" if factory == "uridecodebin" and not self.live and not self.offline else "false"
        # A realtime file plays at its own pace (sync=true) so it behaves like a camera; live sources never
        # wait; an offline file runs as fast as the analysis takes its frames.
        return (
            f"{decode}videorate name=rate drop-only=true skip-to-first=true "
            f"! video/x-raw,framerate={rate.numerator}/{rate.denominator} "
            f"! videoscale ! videoconvert ! video/x-raw,format=I420,pixel-aspect-ratio=1/1{size} "
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
        if self.offline and frame.pts_ns >= 0:
            if self._timeline_origin is None:
                self._timeline_origin = frame.captured_at - frame.pts_ns / 1e9
            frame.captured_at = self._timeline_origin + frame.pts_ns / 1e9
        self.frames_delivered += 1
        self._last_frame_monotonic = time.monotonic()
        self._on_frame(frame)
        return Gst.FlowReturn.OK

    def _collect_rate_stats(self) -> None:
        if self._videorate is None or self._on_rate_stats is None:
            return
        seen_in = self._videorate.get_property("in")
        # drop-only mode does not update videorate's "drop" property; what went in and not out was dropped.
        # The two reads race the streaming thread (a frame can pass between them), so the difference may
        # dip; only its running maximum is reported, which keeps the counter monotonic.
        last_in, last_dropped = self._rate_seen
        if seen_in < last_in:  # videorate zeroes its counters on a flushing seek (a looping file)
            last_in = last_dropped = 0
        dropped = max(last_dropped, seen_in - self._videorate.get_property("out"))
        self._rate_seen = (seen_in, dropped)
        if seen_in > last_in or dropped > last_dropped:
            self._on_rate_stats(self.camera_id, seen_in - last_in, dropped - last_dropped)

    def _teardown(self) -> None:
        """Release everything the run held: no streaming thread, socket or Python reference survives it."""
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            self._collect_rate_stats()
            pipeline.set_state(Gst.State.NULL)
            pipeline.get_state(2 * Gst.SECOND)
            pipeline.get_bus().set_flushing(True)  # queued messages hold references to elements
        for element, handler_id in self._handlers:  # closures hold this source and the pipeline's bins
            element.disconnect(handler_id)
        self._handlers.clear()
        self._videorate = None


def _message_text(message: Gst.Message) -> str:
    """``element: message (last debug line)`` of an ERROR or WARNING; the caller redacts it."""
    if message.type == Gst.MessageType.WARNING:
        error, debug = message.parse_warning()
    else:
        error, debug = message.parse_error()
    source = message.src.get_name() if message.src is not None else "pipeline"
    text = f"{source}: {error.message}"
    # GStreamer's debug text starts with a code location and element path; only a detail after it helps.
    detail = [line for line in (debug or "").splitlines()[1:] if line.strip()]
    if detail:
        text += f" ({detail[-1][:200]})"
    return text


def frame_from_sample(sample: Gst.Sample, camera_id: str, seq: int) -> Frame:
    """Copy an I420 sample out of GStreamer once (half the bytes of BGR); its BGR image is made only if
    the frame is analysed (``Frame.image``), so superseded frames cost no colour conversion."""
    info = GstVideo.VideoInfo.new_from_caps(sample.get_caps())
    buffer = sample.get_buffer()
    ok, mapinfo = buffer.map(Gst.MapFlags.READ)
    if not ok:
        raise RuntimeError("cannot map GStreamer buffer")
    try:
        data = mapinfo.data  # bytes: the single copy out of GStreamer memory
    finally:
        buffer.unmap(mapinfo)
    yuv = YuvImage(data, info.width, info.height, tuple(info.stride[:3]), tuple(info.offset[:3]))
    pts = buffer.pts if buffer.pts != Gst.CLOCK_TIME_NONE else -1
    return Frame(camera_id, seq, pts, time.time(), yuv=yuv)


__all__ = ["CameraSource", "CameraState", "frame_from_sample", "redact_url"]
