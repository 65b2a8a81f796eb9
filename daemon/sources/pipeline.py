"""One GStreamer pipeline run for a camera: decode, drop to the analysis rate (videorate, in C), scale, and
keep the newest I420 frame in a one-buffer appsink. Python pulls a frame only when inference wants one, so a
frame superseded before then never enters Python (no callback, no copy, no colour conversion); a pulled
frame becomes BGR only when analysed.

A pipeline is never reused after an error: the supervisor asks for a fresh run, and ``close`` tears this
one down completely (state NULL, signal handlers disconnected, references dropped).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from urllib.parse import unquote, urlsplit

from daemon.config.models import CameraConfig
from daemon.core.memory import release_free_memory
from daemon.core.types import Frame, YuvImage
from daemon.sources.gst import GLib, Gst, GstApp, GstVideo
from daemon.sources.supervisor import MessageKind, RunMessage, RunStartError, is_live

TEST_PATTERNS = {"smpte", "ball", "snow", "black", "white", "red", "green", "blue", "checkers-8", "gamut"}


def source_description(url: str) -> tuple[str, dict[str, object]]:
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


@dataclass(frozen=True, slots=True)
class FrameCounts:
    """What one camera's frames did since the last report: ``decoded`` entered the rate limiter,
    ``rate_dropped`` it dropped, ``delivered`` reached the one-buffer appsink, and ``superseded`` of those
    were replaced there by a newer frame before inference pulled them."""

    decoded: int = 0
    rate_dropped: int = 0
    delivered: int = 0
    superseded: int = 0

    def __bool__(self) -> bool:
        return any((self.decoded, self.rate_dropped, self.delivered, self.superseded))


class GstPipelineRun:
    """``pull`` runs on the inference thread; ``frames_arrived(n)`` (the supervisor's watchdog) and
    ``on_counts(camera, counts)`` are called from ``poll``, on the supervisor thread. ``first_seq`` numbers
    this run's first frame, so sequence numbers keep rising across reconnects."""

    def __init__(self, config: CameraConfig, frames_arrived: Callable[[int], None], first_seq: int = 0,
                 on_counts: Callable[[str, FrameCounts], None] | None = None) -> None:
        self.config = config
        self.live = is_live(config.url)
        self._frames_arrived = frames_arrived
        self._on_counts = on_counts
        self._pipeline: Gst.Pipeline | None = None
        self._bus: Gst.Bus | None = None
        self._sink: GstApp.AppSink | None = None
        self._handlers: list[tuple[Gst.Element, int]] = []
        self._videorate: Gst.Element | None = None
        self._tally = FrameTally(lossless=config.offline)
        self._pulled = 0  # written by the inference thread only
        self._seq_base = first_seq  # videorate numbers its output from 0, again after a seek (looping file)
        self._timeline_origin: float | None = None  # offline: the time of the file's PTS 0 (start_time or now)

    # -- PipelineRun ---------------------------------------------------------------------------------

    def start(self) -> None:
        try:
            self._pipeline = self._build()
        except (GLib.Error, ValueError) as error:
            raise RunStartError(f"cannot build the pipeline: {error}", broken=True, quiet=True) from None
        missing = self._missing_file()
        if missing:
            raise RunStartError(missing, quiet=True)
        self._bus = self._pipeline.get_bus()
        if self._bus is None:
            raise RunStartError("the pipeline has no bus (out of file descriptors?)")
        if self._pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            message = self._bus.timed_pop_filtered(0, Gst.MessageType.ERROR)
            raise RunStartError(_message_text(message) if message else "the pipeline refused to start")

    def poll(self, timeout_s: float) -> RunMessage | None:
        if self._bus is None:
            raise RuntimeError("poll() before start()")
        mask = Gst.MessageType.ERROR | Gst.MessageType.EOS | Gst.MessageType.WARNING
        message = self._bus.timed_pop_filtered(int(timeout_s * Gst.SECOND), mask)
        self._collect_rate_stats()
        if message is None:
            return None
        if message.type == Gst.MessageType.EOS:
            return RunMessage(MessageKind.END_OF_STREAM)
        kind = MessageKind.WARNING if message.type == Gst.MessageType.WARNING else MessageKind.ERROR
        return RunMessage(kind, _message_text(message))

    def pull(self, timeout_s: float) -> Frame | None:
        """The newest frame, waiting up to ``timeout_s`` for one (the GIL is released while waiting);
        None when there is none or the run is closed. Only the inference thread calls it."""
        sink = self._sink
        if sink is None:
            return None
        sample = sink.try_pull_sample(int(timeout_s * Gst.SECOND))
        if sample is None:
            return None
        self._pulled += 1
        frame = frame_from_sample(sample, self.config.id, self._seq_base)
        if self.config.offline and frame.pts_ns >= 0:
            if self._timeline_origin is None:
                start = self.config.start_time
                self._timeline_origin = (start.timestamp() if start is not None
                                         else frame.captured_at - frame.pts_ns / 1e9)
            frame.captured_at = self._timeline_origin + frame.pts_ns / 1e9
        return frame

    def rewind(self) -> bool:
        if self._pipeline is None:
            return False
        if self._videorate is not None:
            self._seq_base += self._videorate.get_property("out")
        return bool(self._pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0))

    def close(self) -> None:
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            self._collect_rate_stats()
            pipeline.set_state(Gst.State.NULL)
            pipeline.get_state(2 * Gst.SECOND)
            if self._bus is not None:
                self._bus.set_flushing(True)  # queued messages hold references to elements
        self._bus = None
        for element, handler_id in self._handlers:  # closures hold this run and the pipeline's bins
            element.disconnect(handler_id)
        self._handlers.clear()
        self._videorate = self._sink = None
        release_free_memory()  # the pipeline's buffers, freed into its threads' arenas

    # -- building --------------------------------------------------------------------------------------

    def _missing_file(self) -> str | None:
        parts = urlsplit(self.config.url)
        if parts.scheme.lower() == "file":
            path = Path(unquote(parts.path))
            if not path.is_file():
                return f"file not found: {path}"
        return None

    def _connect(self, element: Gst.Element, signal: str, handler: Callable, *args: object) -> None:
        self._handlers.append((element, element.connect(signal, handler, *args)))

    def _build(self) -> Gst.Pipeline:
        factory, properties = source_description(self.config.url)
        pipeline = Gst.Pipeline.new(f"camera-{self.config.id}")
        source = Gst.ElementFactory.make(factory, "source")
        if source is None:
            raise ValueError(f"GStreamer element {factory!r} is not installed")
        for name, value in properties.items():
            source.set_property(name, value)
        tail = Gst.parse_bin_from_description(self._tail_description(factory), True)
        pipeline.add(source)
        pipeline.add(tail)
        if factory == "uridecodebin":
            self._connect(source, "source-setup", _on_source_setup)
            self._connect(source, "pad-added", _on_pad_added, tail)
        elif not source.link(tail):
            raise ValueError(f"cannot link {factory} to the decoder")
        self._sink = tail.get_by_name("sink")
        self._videorate = tail.get_by_name("rate")
        return pipeline

    def _tail_description(self, factory: str) -> str:
        rate = Fraction(self.config.fps).limit_denominator(1001)
        size = ""
        if self.config.width:
            size += f",width={self.config.width}"
        if self.config.height:
            size += f",height={self.config.height}"
        decode = "decodebin ! " if factory == "v4l2src" else ""
        sync = "true" if factory == "uridecodebin" and not self.live and not self.config.offline else "false"
        # A realtime file plays at its own pace (sync=true) so it behaves like a camera; live sources never
        # wait; an offline file runs as fast as the analysis takes its frames: its appsink does not drop, so
        # decoding waits until inference has pulled the previous frame (lossless).
        drop = "false" if self.config.offline else "true"
        return (
            f"{decode}videorate name=rate drop-only=true skip-to-first=true "
            f"! video/x-raw,framerate={rate.numerator}/{rate.denominator} "
            f"! videoscale ! videoconvert ! video/x-raw,format=I420,pixel-aspect-ratio=1/1{size} "
            f"! appsink name=sink emit-signals=false max-buffers=1 drop={drop} sync={sync}"
        )

    # -- counting, on the supervisor thread --------------------------------------------------------------

    def _collect_rate_stats(self) -> None:
        if self._videorate is None:
            return
        counts = self._tally.update(self._videorate.get_property("in"), self._videorate.get_property("out"),
                                    self._pulled)
        if counts.delivered:
            self._frames_arrived(counts.delivered)
        if counts and self._on_counts is not None:
            self._on_counts(self.config.id, counts)


@dataclass(slots=True)
class FrameTally:
    """A run's frame totals from videorate's ``in``/``out`` counters and the frames pulled; ``update``
    returns what changed since the previous reading.

    The counters are read while the streaming thread runs, so a frame can pass between two reads and a
    difference may dip: drops are reported as running maxima, which keeps every counter monotonic. One
    frame may be waiting in the appsink, so it is not superseded yet. A lossless run never supersedes."""

    lossless: bool
    raw: tuple[int, int] = (0, 0)  # videorate's last (in, out); it zeroes them on a flushing seek
    entered: int = 0
    left: int = 0
    rate_dropped: int = 0
    superseded: int = 0

    def update(self, raw_in: int, raw_out: int, pulled: int) -> FrameCounts:
        last_in, last_out = self.raw if raw_in >= self.raw[0] else (0, 0)
        self.raw = (raw_in, raw_out)
        entered, left = self.entered + raw_in - last_in, self.left + max(0, raw_out - last_out)
        rate_dropped = max(self.rate_dropped, entered - left)
        superseded = self.superseded if self.lossless else max(self.superseded, left - pulled - 1)
        counts = FrameCounts(entered - self.entered, rate_dropped - self.rate_dropped, left - self.left,
                             superseded - self.superseded)
        self.entered, self.left, self.rate_dropped, self.superseded = entered, left, rate_dropped, superseded
        return counts


def _on_source_setup(_bin: Gst.Element, source: Gst.Element) -> None:
    if source.find_property("protocols") is not None:  # rtspsrc: TCP survives lossy links and NAT
        source.set_property("protocols", "tcp")
    if source.find_property("latency") is not None:
        source.set_property("latency", 200)


def _on_pad_added(_source: Gst.Element, pad: Gst.Pad, tail: Gst.Bin) -> None:
    caps = pad.get_current_caps() or pad.query_caps(None)
    if not caps or not caps.to_string().startswith("video/"):
        return
    sink_pad = tail.get_static_pad("sink")
    if not sink_pad.is_linked():
        pad.link(sink_pad)


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


def frame_from_sample(sample: Gst.Sample, camera_id: str, seq_base: int) -> Frame:
    """Copy an I420 sample out of GStreamer once (half the bytes of BGR); its BGR image is made only if
    the frame is analysed (``Frame.image``). Its sequence number is videorate's output index (the buffer
    offset) after ``seq_base``."""
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
    offset = buffer.offset if buffer.offset != Gst.BUFFER_OFFSET_NONE else 0
    return Frame(camera_id, seq_base + offset, pts, time.time(), yuv=yuv)
