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
from daemon.sources.http_probe import HttpKind, HttpProbeError, probe, split_credentials
from daemon.sources.supervisor import MessageKind, RunMessage, RunStartError, is_live

# An http(s) camera is asked what it serves before each attempt; a camera slower than this to send its
# response headers is treated as down (the attempt is retried with backoff). Short enough that stopping a
# camera whose probe hangs stays within the supervisor's stop timeout.
HTTP_PROBE_TIMEOUT_S = 3.0
MAX_CAMERA_FPS = 120  # cameras[].fps's bound
TEST_PATTERNS = {"smpte", "ball", "snow", "black", "white", "red", "green", "blue", "checkers-8", "gamut"}


@dataclass(frozen=True, slots=True)
class SourcePlan:
    """How a camera URL becomes decoded video: the source element, the elements that decode after it
    (``chain``, linked to its static pad; uridecodebin links a dynamic pad instead), and how it behaves."""

    factory: str
    properties: dict[str, object]
    chain: str = ""  # e.g. "multipartdemux ! jpegdec", ahead of the rate limiter
    live: bool = True  # its end or error is a disconnect to reconnect; False: a finite file that plays once
    paced: bool = False  # the appsink waits for each frame's time: a non-live source plays at its own speed


def source_plan(config: CameraConfig, http_kind: HttpKind | None = None) -> SourcePlan:
    """The plan for a camera; an http(s) URL needs the probe's answer (``http_kind``) first."""
    url = config.url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "test":
        pattern = (parts.netloc or parts.path.strip("/") or "smpte").lower()
        if pattern not in TEST_PATTERNS:
            pattern = "smpte"
        return SourcePlan("videotestsrc", {"is-live": True, "pattern": pattern})
    if scheme == "v4l2":
        return SourcePlan("v4l2src", {"device": unquote(parts.path)}, chain="decodebin")
    if scheme == "file" or http_kind == HttpKind.FILE:
        return SourcePlan("uridecodebin", {"uri": url}, live=False, paced=not config.offline)
    if http_kind in (HttpKind.MJPEG, HttpKind.STREAM):
        bare, credentials = split_credentials(url)
        soup: dict[str, object] = {"location": bare, "is-live": True}
        if credentials is not None:  # libsoup answers a Basic or a Digest challenge with them
            soup.update({"user-id": credentials.user, "user-pw": credentials.password})
        if http_kind == HttpKind.MJPEG:
            # Parts carry no timestamps: each is stamped on arrival, and nothing buffers. They carry no frame
            # rate either (jpegdec says 0/1, which videorate cannot drop from): the highest rate a camera may
            # have is declared, and videorate drops by the arrival times.
            return SourcePlan("souphttpsrc", {**soup, "do-timestamp": True},
                              chain="multipartdemux single-stream=true ! jpegdec "
                                    f"! capssetter caps=video/x-raw,framerate={MAX_CAMERA_FPS}/1")
        return SourcePlan("souphttpsrc", soup, chain="decodebin")
    if http_kind == HttpKind.HLS:
        # hlsdemux downloads whole segments ahead of time: frames are played at their own pace, like a file,
        # while the end of the playlist or an error is a camera that went away.
        return SourcePlan("uridecodebin", {"uri": url}, paced=True)
    if scheme == "srt":
        return SourcePlan("srtsrc", {"uri": url, "wait-for-connection": False}, chain="decodebin")
    if scheme == "rtmp":
        # Not through uridecodebin or a bare decodebin: neither finds the live FLV's streams and no frame
        # comes. FLV's video pad only: a camera's audio pad stays unlinked, which flvdemux tolerates.
        return SourcePlan("rtmp2src", {"location": url}, chain="flvdemux name=flv flv.video ! decodebin")
    return SourcePlan("uridecodebin", {"uri": url})  # rtsp(s)


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
                 on_counts: Callable[[str, FrameCounts], None] | None = None, clock_offset_s: float = 0.0) -> None:
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
        self._camera_clock = config.clock == "camera"
        # clock: camera: the camera's clock minus this host's, from the newest frame that carried the camera's
        # time (written by the inference thread; the previous run's until this run's first sender report)
        self.clock_offset_s = clock_offset_s

    # -- PipelineRun ---------------------------------------------------------------------------------

    def start(self) -> None:
        http_kind = None
        if urlsplit(self.config.url).scheme.lower() in ("http", "https"):
            try:
                http_kind = probe(self.config.url, min(self.config.start_timeout_s, HTTP_PROBE_TIMEOUT_S))
            except HttpProbeError as error:
                raise RunStartError(str(error)) from None
        plan = source_plan(self.config, http_kind)
        self.live = plan.live
        try:
            self._pipeline = self._build(plan)
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
        if self._camera_clock:
            captured_at = camera_clock_time(sample.get_buffer())
            if captured_at is not None:  # None before the camera's first RTCP sender report: host time stays
                self.clock_offset_s = captured_at - frame.captured_at
                frame.captured_at = captured_at
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

    def _build(self, plan: SourcePlan) -> Gst.Pipeline:
        if plan.factory == "uridecodebin":
            pipeline = Gst.Pipeline.new(f"camera-{self.config.id}")
            source = Gst.ElementFactory.make(plan.factory, "source")
            if source is None:
                raise ValueError(f"GStreamer element {plan.factory!r} is not installed")
            tail = Gst.parse_bin_from_description(self._tail_description(plan), True)
            pipeline.add(source)
            pipeline.add(tail)
            self._connect(source, "source-setup", _on_source_setup, self.config)
            self._connect(source, "pad-added", _on_pad_added, tail)
        else:
            # One description: a chain with a demuxer or decodebin links its dynamic pads by itself (in a bin
            # of its own, its decoder's sink would be ghosted instead of the demuxer's).
            parsed = Gst.parse_launch(f"{plan.factory} name=source ! {self._tail_description(plan)}")
            if not isinstance(parsed, Gst.Pipeline):
                raise ValueError("the pipeline description did not make a pipeline")
            pipeline = parsed
            pipeline.set_name(f"camera-{self.config.id}")
            source = pipeline.get_by_name("source")
        for name, value in plan.properties.items():  # set, not parsed: a URL or password may hold any character
            source.set_property(name, value)
        self._sink = pipeline.get_by_name("sink")
        self._videorate = pipeline.get_by_name("rate")
        return pipeline

    def _tail_description(self, plan: SourcePlan) -> str:
        rate = Fraction(self.config.fps).limit_denominator(1001)
        size = ""
        if self.config.width:
            size += f",width={self.config.width}"
        if self.config.height:
            size += f",height={self.config.height}"
        decode = f"{plan.chain} ! " if plan.chain else ""
        # A realtime file plays at its own pace (sync=true) so it behaves like a camera; live sources never
        # wait; an offline file runs as fast as the analysis takes its frames: its appsink does not drop, so
        # decoding waits until inference has pulled the previous frame (lossless).
        sync = "true" if plan.paced else "false"
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


RTSP_PROTOCOLS = {"tcp": "tcp", "udp": "udp", "auto": "udp+udp-mcast+tcp"}  # auto: rtspsrc falls back to TCP


def _on_source_setup(_bin: Gst.Element, source: Gst.Element, config: CameraConfig) -> None:
    if source.find_property("protocols") is not None:  # rtspsrc; TCP by default: survives lossy links and NAT
        Gst.util_set_object_arg(source, "protocols", RTSP_PROTOCOLS[config.rtsp_transport])  # flags, by nick
        source.connect("select-stream", _video_streams_only)
        # Each buffer then carries the camera's NTP time of its capture, from the RTCP sender reports.
        source.set_property("add-reference-timestamp-meta", config.clock == "camera")
    if source.find_property("latency") is not None:
        source.set_property("latency", 200)


def _video_streams_only(_source: Gst.Element, _index: int, caps: Gst.Caps) -> bool:
    """rtspsrc sets up only a camera's video: its audio is never received (no bandwidth, no unlinked pad)."""
    return bool(caps.get_size()) and caps.get_structure(0).get_string("media") == "video"


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


NTP_TIMESTAMP = Gst.Caps.from_string("timestamp/x-ntp")
NTP_EPOCH_S = 2208988800  # seconds from 1900-01-01 (NTP's epoch) to 1970-01-01 (Unix time's)


def camera_clock_time(buffer: Gst.Buffer) -> float | None:
    """When the camera captured this frame by its own clock (Unix seconds), from the NTP reference timestamp
    rtspsrc attaches once the camera's RTCP sender reports map its RTP times; None before the first."""
    meta = buffer.get_reference_timestamp_meta(NTP_TIMESTAMP)
    if meta is None:
        return None
    return float(meta.timestamp / Gst.SECOND - NTP_EPOCH_S)


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
