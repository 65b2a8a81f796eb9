"""The configuration schema: strict pydantic models, one per section, whose descriptions generate docs/config.md."""

from __future__ import annotations

import ipaddress
import itertools
import math
import os
import re
import typing
from collections.abc import Iterable
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.core.events import EventType

SUPPORTED_SCHEMES = ("rtsp", "rtsps", "http", "https", "srt", "rtmp", "file", "v4l2", "test")
CAMERA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # use fullmatch: '$' would accept a trailing newline


EXIT_CONFIG = 78  # EX_CONFIG: systemd's RestartPreventExitStatus keeps a bad config from crash-looping


class ConfigError(Exception):
    """A configuration problem a user can fix; the message names the file and the field."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _valid_device(value: str) -> str:
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", value):
        raise ValueError("must be auto, cpu, cuda, cuda:N or mps")
    return value


# Where a model runs; every model-based plugin resolves it the same way (daemon/inference/devices.py).
Device = Annotated[str, AfterValidator(_valid_device)]
Point = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]
# Smallest rule geometry, in normalised units: a line of 1/1000 of the frame is about a pixel at 1000
# pixels, a zone of (1/1000)^2 about one pixel. Anything smaller is a typo, and could never be crossed
# or entered reliably.
MIN_LINE_LENGTH = 1e-3
MIN_ZONE_AREA = 1e-6


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


RuleName = Annotated[str, AfterValidator(_not_blank)]


def polygon_area(polygon: list[Point]) -> float:
    """Area enclosed by the polygon (shoelace formula), normalised units."""
    corners = list(polygon)
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(corners, corners[1:] + corners[:1],
                                                                      strict=True))) / 2


def _orientation(a: Point, b: Point, c: Point) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _segments_cross(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """True when the segments p1-p2 and q1-q2 share a point (crossing, touching or overlapping)."""
    d1, d2 = _orientation(q1, q2, p1), _orientation(q1, q2, p2)
    d3, d4 = _orientation(p1, p2, q1), _orientation(p1, p2, q2)
    if ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and 0 not in (d1, d2, d3, d4):
        return True

    def on_segment(a: Point, b: Point, point: Point) -> bool:
        return (min(a[0], b[0]) <= point[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= point[1] <= max(a[1], b[1]))

    return any(d == 0 and on_segment(a, b, point) for d, a, b, point in (
        (d1, q1, q2, p1), (d2, q1, q2, p2), (d3, p1, p2, q1), (d4, p1, p2, q2)))


def first_self_intersection(polygon: list[Point]) -> tuple[int, int] | None:
    """The first pair of non-adjacent edges (by index, edge i runs from corner i to i+1) that meet."""
    corners = list(polygon)
    edges = list(zip(corners, corners[1:] + corners[:1], strict=True))
    for i, j in itertools.combinations(range(len(edges)), 2):
        # adjacent edges share a corner: i and i+1, and the last with the first
        if j - i > 1 and not (i == 0 and j == len(edges) - 1) and _segments_cross(*edges[i], *edges[j]):
            return i, j
    return None


def nested_model(annotation: object) -> type[BaseModel] | None:
    """The model class an annotation holds, such as ``list[CameraConfig]`` or ``CameraCaptionsConfig | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next(filter(None, map(nested_model, typing.get_args(annotation))), None)


def duplicates(values: Iterable[object]) -> list[str]:
    """The string values that occur more than once, sorted."""
    seen: set[str] = set()
    repeated: set[str] = set()
    for value in values:
        if isinstance(value, str):
            (repeated if value in seen else seen).add(value)
    return sorted(repeated)


def check_authority(value: str) -> None:
    """Reject a network URL whose user:password@host:port part is ambiguous or out of range, with a message
    that never quotes the user name or password: an '@' after the host (a password with an unencoded '/',
    '?' or '#' ends the host early, and the rest of the password would be shown as a path), a port that is
    not a number in 1-65535."""
    parts = urlsplit(value)
    if "@" not in parts.netloc and "@" in value[value.find("//") + 2:]:
        raise ValueError("'@' after the host: percent-encode '/', '?', '#' and '@' in the user name or password "
                         "(%2F, %3F, %23, %40), and '@' in the path or query (%40)")
    host_port = parts.netloc.rpartition("@")[2]
    if host_port.startswith("["):  # [IPv6]:port
        closing = host_port.find("]")
        if closing < 0:
            raise ValueError("IPv6 host needs a closing ']', e.g. rtsp://[::1]:8554/stream")
        port = host_port[closing + 1:].removeprefix(":")
        if host_port[closing + 1:] and not host_port[closing + 1:].startswith(":"):
            raise ValueError("expected ':port' after the IPv6 host's ']'")
    else:
        port = host_port.rpartition(":")[2] if ":" in host_port else ""
    if port:
        if not port.isascii() or not port.isdigit():
            raise ValueError("port must be a number in 1-65535 (percent-encode ':' in a user name as %3A)")
        if not 1 <= int(port) <= 65535:
            raise ValueError(f"port {int(port)} out of range 1-65535")


NETWORK_SCHEMES = ("rtsp", "rtsps", "http", "https", "srt", "rtmp")


class RuleFilter(StrictModel):
    """What a zone or line looks at; objects outside the filter are ignored by that rule."""

    classes: list[str] | None = Field(None, description="Event labels this rule applies to; all when unset.")
    min_confidence: Annotated[float, Field(ge=0, le=1)] = Field(0.0, description="Ignore weaker detections.")
    min_area: Annotated[float, Field(ge=0, le=1)] = Field(
        0.0, description="Ignore boxes smaller than this fraction of the frame."
    )
    anchor: Literal["bottom_center", "center"] = Field(
        "bottom_center", description="The point of a box that counts as the object's position."
    )


class ZoneConfig(RuleFilter):
    name: RuleName = Field(min_length=1, description="Zone name, carried by its events.")
    polygon: list[Point] = Field(
        min_length=3, description="Corners [[x, y], ...], normalised 0..1, in order around the zone: edges "
        "must not cross, and the zone must enclose an area.")
    loiter_s: Annotated[float, Field(gt=0)] | None = Field(
        None, description="Emit `loiter` once an object has stayed this many seconds inside."
    )

    @field_validator("polygon")
    @classmethod
    def _simple_polygon(cls, value: list[Point]) -> list[Point]:
        repeated = next((i for i in range(len(value)) if value[i] == value[(i + 1) % len(value)]), None)
        if repeated is not None:
            raise ValueError(f"corners {repeated} and {(repeated + 1) % len(value)} are the same point")
        crossing = first_self_intersection(value)
        if crossing is not None:
            i, j = crossing
            raise ValueError(f"edges {i}-{i + 1} and {j}-{(j + 1) % len(value)} cross: list the corners in "
                             "order around the zone")
        if polygon_area(value) < MIN_ZONE_AREA:
            raise ValueError(f"encloses no area (less than {MIN_ZONE_AREA:g} of the frame)")
        return value


class LineConfig(RuleFilter):
    name: RuleName = Field(min_length=1, description="Line name, carried by its events.")
    points: tuple[Point, Point] = Field(
        description="[[x1, y1], [x2, y2]], normalised, at least 0.001 apart. Side A is where (p2-p1)x(p-p1) > 0 "
        "in image coordinates: left of a line drawn top to bottom, below a line drawn left to right."
    )
    a_to_b: str | None = Field(None, description="Name for crossings from side A to side B, e.g. `in`.")
    b_to_a: str | None = Field(None, description="Name for crossings from side B to side A, e.g. `out`.")
    min_distance: Annotated[float, Field(ge=0, le=0.5)] = Field(
        0.01, description="Hysteresis, as a fraction of the frame: an object's side of the line changes only once its "
        "anchor is at least this far beyond the line, so jitter on the line never counts; a crossing is counted when "
        "the object is first that far on the new side, however long it stood on the line or was hidden meanwhile."
    )

    @field_validator("points")
    @classmethod
    def _long_enough(cls, value: tuple[Point, Point]) -> tuple[Point, Point]:
        (x1, y1), (x2, y2) = value
        if math.hypot(x2 - x1, y2 - y1) < MIN_LINE_LENGTH:
            raise ValueError(f"the two points must be at least {MIN_LINE_LENGTH:g} apart (normalised)")
        return value


class CameraCaptionsConfig(StrictModel):
    """Which captioner describes this camera's objects, and on which of their events."""

    captioner: str = Field(
        "template", min_length=1, description="Name of a captioner defined under the top-level `captions.captioners`."
    )
    events: list[EventType] = Field(
        [EventType.END], min_length=1,
        description="Event types that get a caption: new, update, end, zone_enter, zone_exit, loiter, line_cross "
        "(not caption). "
        "Each caption is published as its own `caption` event; an `end` also carries the object's latest caption "
        "that was ready when the object ended.",
    )

    @field_validator("events")
    @classmethod
    def _object_events(cls, value: list[EventType]) -> list[EventType]:
        if EventType.CAPTION in value:
            raise ValueError("caption events are not captioned themselves; choose among the object's events")
        return value


class MotionConfig(StrictModel):
    """Motion gating: frames in which nothing moved skip the detector (docs/performance.md)."""

    enabled: bool = Field(
        False, description="Send a frame to the detector only when something moved, or when the last detection "
        "is `keepalive_s` old; meanwhile the objects the last detection saw are kept where it saw them."
    )
    pixel_threshold: Annotated[int, Field(ge=1, le=255)] = Field(
        15, description="Grey levels (0-255) by which a pixel of the frame's small grey copy (about 100 px wide, "
        "blurred) must differ from the copy of half a second earlier to count as changed."
    )
    min_area: Annotated[float, Field(gt=0, le=1)] = Field(
        0.002, description="Fraction of the frame that must change for the frame to count as motion; lower it "
        "for objects that are small in the picture."
    )
    still_s: Annotated[float, Field(ge=0, le=60)] = Field(
        1.0, description="After the last motion, keep detecting until the scene has been still this long."
    )
    keepalive_s: Annotated[float, Field(gt=0, le=60)] = Field(
        3.0, description="In a still scene, detect at least this often: objects that stopped moving are seen "
        "again (a zone's `loiter` can come up to this much late) and the kept objects are checked."
    )


class CameraConfig(StrictModel):
    id: str = Field(description="Unique camera id; used in metrics labels, events and Redis keys.")
    url: str = Field(
        description="rtsp(s)://, http(s):// (MJPEG, a video file, an .m3u8 playlist), srt://, rtmp://, file://, "
        "v4l2:///dev/videoN or test://[pattern]. Percent-encode "
        "`@ : / ? #` in a user name or password; a port must be 1-65535 (docs/cameras.md)."
    )
    fps: Annotated[float, Field(gt=0, le=120)] = Field(
        5.0, description="Analysis frames per second; extra frames are dropped inside GStreamer."
    )
    width: Annotated[int, Field(ge=32, le=7680)] | None = Field(
        None, description="Processing width; GStreamer scales to it (height follows the aspect ratio if unset)."
    )
    height: Annotated[int, Field(ge=32, le=4320)] | None = Field(None, description="Processing height.")
    rtsp_transport: Literal["tcp", "udp", "auto"] = Field(
        "tcp", description="rtsp:// only: how RTP travels. tcp: interleaved in the RTSP connection (survives NAT, "
        "firewalls and lossy Wi-Fi); udp: separate UDP ports (lower latency on a clean LAN, lost packets are "
        "lost); auto: UDP first, TCP if UDP fails."
    )
    clock: Literal["host", "camera"] = Field(
        "host", description="Where a frame's captured_at comes from. host: this machine's clock when the frame "
        "arrived. camera: the camera's own NTP clock, from its RTCP sender reports (rtsp:// only), so events of "
        "several cameras line up by when they were seen; frames before the first report keep the host time. "
        "The measured offset is the metric argusd_camera_clock_offset_seconds."
    )
    loop: bool = Field(False, description="file:// sources only: start again at the end instead of stopping.")
    realtime: bool = Field(
        True, description="file:// sources only. true: the file plays at its own speed, like a camera, and frames "
        "the detector cannot keep up with are dropped. false: every frame at `fps` is analysed, as fast as the "
        "detector allows, and event times follow the file's own timeline from the moment it started (for "
        "recordings and repeatable tests; not with `loop`)."
    )
    start_time: AwareDatetime | None = Field(
        None, description="With `realtime: false` only: when the recording started, as an ISO 8601 time with its "
        "UTC offset (`2024-05-01T08:30:00+02:00`). Event times then follow the file's timeline from this moment "
        "instead of from the wall clock at its first frame."
    )
    enabled: bool = Field(True, description="Set false to keep a camera in the file without running it.")
    watchdog_s: Annotated[float, Field(gt=0, le=600)] = Field(
        5.0, description="Seconds without a frame before a streaming camera counts as stalled and is reconnected "
        "(GStreamer alone notices a hung RTSP camera only after ~27 s). Must exceed the frame interval 1/fps."
    )
    start_timeout_s: Annotated[float, Field(gt=0, le=600)] = Field(
        10.0, description="Seconds a (re)connection may take to deliver its first frame before it is abandoned."
    )
    backoff_initial_s: Annotated[float, Field(gt=0, le=600)] = Field(
        0.5, description="First wait before reconnecting after a failure; doubles per failed attempt (+-20% jitter)."
    )
    backoff_max_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        10.0, description="Longest wait between reconnection attempts; bounds how long a recovered camera waits."
    )
    classes: list[str] | None = Field(
        None, description="Event labels (or model class names) reported for this camera; all when unset."
    )
    zones: list[ZoneConfig] = Field(default_factory=list, description="Polygon zones: enter, exit, loiter.")
    lines: list[LineConfig] = Field(default_factory=list, description="Counting lines with direction.")
    captions: CameraCaptionsConfig | None = Field(
        None, description="Describe this camera's objects in words (see docs/captions.md); off when unset."
    )
    motion: MotionConfig = Field(MotionConfig(), description="Motion gating: skip detection while the scene is still.")

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not CAMERA_ID.fullmatch(value):
            raise ValueError("must be 1-64 characters of letters, digits, '_', '.', '-', starting alphanumeric")
        return value

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        scheme = urlsplit(value).scheme.lower()
        if scheme not in SUPPORTED_SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(s + '://' for s in SUPPORTED_SCHEMES)}")
        if scheme in NETWORK_SCHEMES:
            check_authority(value)
        if scheme == "file" and not urlsplit(value).path:
            raise ValueError("file:// URL needs a path, e.g. file:///var/lib/argusd/clip.mp4")
        if scheme == "v4l2" and not urlsplit(value).path.startswith("/dev/"):
            raise ValueError("v4l2 URL must name a device, e.g. v4l2:///dev/video0")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CameraConfig:
        """Every problem between fields at once, one per line (loading.py shows each as its own error)."""
        problems = []
        if self.watchdog_s <= 1.0 / self.fps:
            problems.append(f"watchdog_s ({self.watchdog_s:g}) must exceed the frame interval 1/fps "
                            f"({1.0 / self.fps:g} s)")
        if self.backoff_max_s < self.backoff_initial_s:
            problems.append("backoff_max_s must be at least backoff_initial_s")
        if self.clock == "camera" and urlsplit(self.url).scheme.lower() not in ("rtsp", "rtsps"):
            problems.append("clock: camera needs an rtsp:// camera (its RTCP sender reports carry the camera's "
                            "clock); other sources are timed by the host")
        if not self.realtime and urlsplit(self.url).scheme.lower() != "file":
            problems.append("realtime: false is for file:// sources only; a live camera cannot wait")
        if not self.realtime and self.loop:
            problems.append("realtime: false and loop: true do not go together (the timeline would restart)")
        if self.start_time is not None and self.realtime:
            problems.append("start_time needs realtime: false (a file played in real time is timed by the clock)")
        repeated = duplicates([*(zone.name for zone in self.zones), *(line.name for line in self.lines)])
        if repeated:
            problems.append(f"zone/line names must be unique per camera: {', '.join(repeated)}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def offline(self) -> bool:
        """A file analysed frame by frame at the detector's pace, on the file's own timeline."""
        return not self.realtime


class DetectorConfig(StrictModel):
    plugin: str = Field("ultralytics", description="Detector plugin name (entry point in argusd.detectors).")
    model: str = Field(description="Model file or directory (.pt, .onnx, OpenVINO dir, .engine) or Triton URL.")
    device: Device = Field("auto", description="auto (CUDA when present, else CPU), cpu, cuda, cuda:N or mps.")
    imgsz: Annotated[int, Field(ge=32, le=4096, multiple_of=32)] = Field(640, description="Model input size.")
    conf: Annotated[float, Field(ge=0.0, le=1.0)] = Field(0.25, description="Minimum detection confidence.")
    iou: Annotated[float, Field(ge=0.0, le=1.0)] = Field(0.7, description="NMS IoU threshold.")
    classes: list[str] | None = Field(
        None, description="Class names to keep (the model's names, before `labels` renames them); all when unset."
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Rename model classes in events, e.g. {Normal: person}."
    )
    half: bool | None = Field(None, description="FP16 inference; default: on for CUDA, off for CPU.")
    threads: Annotated[int, Field(ge=1, le=256)] | None = Field(
        None, description="CPU threads the model's runtime uses (PyTorch, ONNX Runtime, OpenVINO); default: every "
        "core for OpenVINO, one less (at least 1) for ONNX Runtime and PyTorch, whose thread pools stall when "
        "the cameras' decoding takes a core (docs/performance.md).",
    )
    runtime: Literal["auto", "torch", "onnxruntime", "openvino", "tensorrt"] = Field(
        "auto", description="What runs a .pt model. auto: on CPU OpenVINO, else ONNX Runtime, else PyTorch; on "
        "CUDA a TensorRT FP16 engine when the tensorrt package is installed, else PyTorch. The .pt is converted "
        "once into `cache_dir`; a runtime that is missing or fails to convert is skipped with a warning. A named "
        "runtime is used or the daemon does not start. Other formats (.onnx, OpenVINO directory, .engine, "
        "Triton URL) run on their own runtime.",
    )
    cache_dir: str | None = Field(
        None, description="Where converted models are kept, one entry per weights, imgsz, precision, batch "
        "and runtime version; default `$STATE_DIRECTORY/models` (systemd's StateDirectory=), else "
        "/var/lib/argusd/models. Entries unused for 30 days are deleted when a conversion runs.",
    )
    max_batch: Annotated[int, Field(ge=1, le=64)] | None = Field(
        None, description="TensorRT: the largest batch the engine is built for; default `batch.max_batch`.",
    )

    @property
    def cache_path(self) -> str:
        return state_path(self.cache_dir, "models")

    @field_validator("model")
    @classmethod
    def _valid_model_url(cls, value: str) -> str:
        if urlsplit(value).scheme in ("http", "https", "grpc"):  # a Triton Inference Server endpoint
            check_authority(value)
        return value


class ClassifierConfig(StrictModel):
    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,31}$", description="Attribute name the result is stored under, e.g. `colour`."
    )
    plugin: str = Field(description="Classifier plugin (entry point in argusd.classifiers): colour, ultralytics.")
    model: str | None = Field(None, description="Model file for model-based plugins (ultralytics: a -cls model).")
    device: Device = Field("auto", description="auto, cpu, cuda, cuda:N or mps (model-based plugins).")
    imgsz: Annotated[int, Field(ge=32, le=1024, multiple_of=32)] = Field(224, description="Crop input size.")
    classes: list[str] | None = Field(None, description="Object labels to classify; all when unset.")
    min_confidence: Annotated[float, Field(ge=0, le=1)] = Field(
        0.3, description="Least top-1 confidence (colour: share of pixels) for a result to be recorded."
    )
    interval_s: Annotated[float, Field(gt=0)] = Field(
        30.0, description="Classify an object once when it is confirmed, then again at most this often."
    )


class BatchConfig(StrictModel):
    max_batch: Annotated[int, Field(ge=1, le=64)] = Field(8, description="Most frames in one inference batch.")
    max_wait_ms: Annotated[float, Field(ge=0, le=1000)] = Field(
        10.0, description="Longest wait after the first frame for frames from other cameras."
    )


class TrackerConfig(StrictModel):
    kind: Literal["bytetrack", "botsort"] = Field(
        "bytetrack", description="bytetrack, or botsort (adds camera-motion compensation; costs CPU per frame)."
    )
    confirm_frames: Annotated[int, Field(ge=1, le=100)] = Field(
        3, description="Frames a track must persist before its `new` event."
    )
    lost_timeout_s: Annotated[float, Field(gt=0, le=600)] = Field(
        2.0, description="Seconds without a detection (by the frames' capture times, whatever rate they arrive at) "
        "before an object ends. A track that reappears within it where the lost one's motion predicts, and looks "
        "alike, keeps its `object_id` and its zone and line state."
    )
    update_interval_s: Annotated[float, Field(ge=0)] = Field(
        5.0, description="Least time between two `update` events of one object (label, zones or attributes changed)."
    )
    merge_classes: bool | list[list[str]] = Field(
        True, description="Overlapping boxes (IoU at least 0.7) of different classes are one object, as the more "
        "confident box, before tracking: `true` for any classes, `false` never, or groups of event labels or model "
        "class names merged only within a group, e.g. `[[car, truck, bus]]`. The object's `label` follows its "
        "boxes' majority class, and a change is reported by an `update`."
    )
    stationary_s: Annotated[float, Field(gt=0)] | None = Field(
        None, description="Flag an object `stationary: true` (by an `update` event) once it has stayed in place this "
        "many seconds, and `false` again when it moves; unset: never flagged."
    )


class RedisConfig(StrictModel):
    url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="redis://[user:password@]host:port/db, rediss:// for TLS, or unix:///path; "
        "redis+cluster:// (or rediss+cluster://) names one node of a Redis Cluster. ARGUSD_REDIS_URL overrides. "
        "Credentials never reach logs or metrics.",
    )
    cluster: bool = Field(
        False, description="The url names a node of a Redis Cluster (as a +cluster scheme does): the client "
        "follows the cluster's slots, and each camera's stream name hash-tags the camera ({<camera>}) so a "
        "stream and its consumer-group keys live on one slot.",
    )
    stream: str = Field(
        "argusd:events", min_length=1,
        description="Stream key the events are added to; may contain {camera} for one stream per camera.",
    )
    maxlen: Annotated[int, Field(ge=100)] = Field(100_000, description="Approximate stream length cap (MAXLEN ~).")
    queue_size: Annotated[int, Field(ge=10, le=1_000_000)] = Field(
        10_000, description="Events held in memory in front of Redis; the publisher moves them to the spool "
        "while Redis is down, and drops (counted) the oldest only if the spool itself cannot keep up.",
    )
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = Field(
        500, description="Most XADDs sent in one pipelined round trip."
    )
    connect_timeout_s: Annotated[float, Field(gt=0, le=60)] = Field(2.0, description="TCP/TLS connect timeout.")
    command_timeout_s: Annotated[float, Field(gt=0, le=60)] = Field(
        2.0, description="Longest wait for a pipeline's replies; a slower Redis counts as down and events "
        "go to the spool.",
    )
    backoff_initial_s: Annotated[float, Field(gt=0, le=60)] = Field(
        0.2, description="First reconnect delay; doubles per failure, with +/-20% jitter."
    )
    backoff_max_s: Annotated[float, Field(gt=0, le=600)] = Field(5.0, description="Longest reconnect delay.")
    idempotent: Literal["auto", "off"] = Field(
        "auto", description="auto: use XADD IDMP (server-side de-duplication) when the server supports it "
        "(Redis 8.6+); off: never. Events always carry event_id for consumer-side de-duplication.",
    )
    producer_id: str = Field(
        "argusd", min_length=1, description="IDMP producer id; give each daemon writing to one stream its own."
    )
    tls_ca_file: str | None = Field(None, description="rediss:// only: CA bundle to verify the server with.")
    tls_cert_file: str | None = Field(None, description="rediss:// only: client certificate (mutual TLS).")
    tls_key_file: str | None = Field(None, description="rediss:// only: client private key (mutual TLS).")
    tls_verify: bool = Field(True, description="rediss:// only: verify the server certificate and host name.")

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster"):
            raise ValueError("must start with redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://")
        if scheme != "unix":
            check_authority(value)
        return value

    @field_validator("stream")
    @classmethod
    def _valid_stream(cls, value: str) -> str:
        try:
            value.format(camera="x")
        except (KeyError, IndexError, ValueError):
            raise ValueError("the only placeholder allowed is {camera}") from None
        return value

    @property
    def is_cluster(self) -> bool:
        return self.cluster or urlsplit(self.url).scheme.endswith("+cluster")

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme.startswith("rediss")


class FleetConfig(StrictModel):
    etcd: list[str] = Field(
        min_length=1, description="etcd endpoints as http://host:port (its gRPC gateway, the client port); the "
        "member uses the first that answers and moves to the next when one fails.",
    )
    member_id: str | None = Field(
        None, description="This member's name in the fleet; default: the host name. Unique per member.",
    )
    prefix: str = Field(
        "/argusd/", min_length=1, description="etcd key prefix: members/<id> and owners/<camera> live under it; "
        "give each fleet its own.",
    )
    lease_ttl_s: Annotated[int, Field(ge=2, le=300)] = Field(
        10, description="Lease TTL: a member that dies loses its cameras this long after its last keep-alive; "
        "a member cut off from etcd stops its cameras before this much time has passed since its last "
        "keep-alive. Keep-alives (each followed by a look at the assignment) go every 0.5 s, or every third "
        "of the TTL if that is shorter.",
    )
    capacity: Annotated[float, Field(gt=0, le=1000)] = Field(
        1.0, description="Rendezvous-hashing weight: a member of capacity 2 gets about twice the cameras of one "
        "of capacity 1.",
    )

    @field_validator("etcd")
    @classmethod
    def _valid_endpoints(cls, value: list[str]) -> list[str]:
        for endpoint in value:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
                raise ValueError(f"{endpoint!r} must be http(s)://host:port")
            check_authority(endpoint)
        return value


def state_directory() -> str:
    """systemd's StateDirectory= (first entry of $STATE_DIRECTORY) or /var/lib/argusd."""
    return (os.environ.get("STATE_DIRECTORY") or "/var/lib/argusd").split(":")[0]


def state_path(configured: str | None, subdirectory: str) -> str:
    """``configured``, else ``subdirectory`` of the daemon's state directory."""
    return configured or f"{state_directory()}/{subdirectory}"


class _StateSubdirectory(StrictModel):
    """A section whose `directory` defaults to a folder of the daemon's state directory."""

    _subdirectory: ClassVar[str]
    directory: str | None

    @property
    def path(self) -> str:
        return state_path(self.directory, self._subdirectory)


class SpoolConfig(_StateSubdirectory):
    _subdirectory: ClassVar[str] = "spool"

    directory: str | None = Field(
        None, description="Directory of the durable event spool (created if missing); default "
        "`$STATE_DIRECTORY/spool` (systemd's StateDirectory=), else /var/lib/argusd/spool."
    )
    max_bytes: Annotated[int, Field(ge=4096)] = Field(
        256 * 1024 * 1024, description="Spool size cap; when reached the oldest spooled events are dropped "
        "and counted in argusd_events_dropped_total{reason=\"spool_full\"}.",
    )
    fsync: Literal["always", "batch", "interval", "never"] = Field(
        "batch", description="always: fsync after every event; batch: after each batch the publisher spools; "
        "interval: at most every fsync_interval_s; never: leave it to the OS (survives a daemon crash, "
        "not a power cut).",
    )
    fsync_interval_s: Annotated[float, Field(gt=0, le=60)] = Field(
        1.0, description="fsync period for fsync: interval."
    )

class SnapshotConfig(_StateSubdirectory):
    _subdirectory: ClassVar[str] = "snapshots"

    enabled: bool = Field(False, description="Write an annotated JPEG of the best frame for new and end events.")
    store: Literal["file", "redis"] = Field(
        "file", description="file: JPEGs under `directory` with age/size retention; redis: a key with a TTL."
    )
    directory: str | None = Field(
        None, description="store: file, where the JPEGs go; default `$STATE_DIRECTORY/snapshots`, else "
        "/var/lib/argusd/snapshots."
    )
    max_age_s: Annotated[float, Field(gt=0)] = Field(
        7 * 86400.0, description="store: file, delete snapshots older than this. Retention touches only "
        "argusd's own files, `<directory>/<camera id>/<event id>.jpg` (event id: 32 hex digits, `-`, a number, "
        "optionally `-caption`); any other file or folder there is never counted or deleted."
    )
    max_total_bytes: Annotated[int, Field(ge=1024 * 1024)] = Field(
        1024 * 1024 * 1024, description="store: file, delete the oldest of argusd's own snapshots beyond this "
        "total size (their size alone counts)."
    )
    key_prefix: str = Field("argusd:snapshot:", description="store: redis, key prefix; the event_id follows.")
    ttl_s: Annotated[int, Field(ge=1)] = Field(86400, description="store: redis, key time to live.")
    jpeg_quality: Annotated[int, Field(ge=10, le=100)] = Field(80, description="JPEG quality.")
    queue_size: Annotated[int, Field(ge=1, le=1000)] = Field(
        32, description="Snapshots waiting for the encoder thread; beyond it they are dropped and counted."
    )


DEFAULT_CAPTION_PROMPT = (
    "You see a {label} on camera {camera}. What the tracker knows: {summary} "
    "Describe the {label} in one short sentence (appearance, clothing or colour, what it is doing)."
)


class CaptionerConfig(StrictModel):
    """One named captioner: a plugin with its own bounded queue and worker threads."""

    plugin: str = Field(
        "template", min_length=1,
        description="Captioner plugin (entry point in argusd.captioners): template, openai or transformers.",
    )
    workers: Annotated[int, Field(ge=1, le=32)] = Field(
        1, description="Threads calling the plugin; raise it for a remote model server that handles requests "
        "in parallel.",
    )
    queue_size: Annotated[int, Field(ge=1, le=10_000)] = Field(
        32, description="Caption requests waiting for a worker; beyond it requests are dropped and counted, "
        "detection is never slowed.",
    )
    batch_size: Annotated[int, Field(ge=1, le=64)] = Field(
        1, description="Most queued requests one plugin call describes at once (transformers batches them).",
    )
    image: Literal["crop", "frame"] = Field(
        "crop", description="What an image-based plugin sees: the object's box (with crop_margin) on its "
        "best-confidence frame, or that whole frame.",
    )
    crop_margin: Annotated[float, Field(ge=0, le=2)] = Field(
        0.15, description="image: crop, context added around the box on each side, as a fraction of its size."
    )
    model: str | None = Field(
        None, description="openai: model name sent to the server; transformers: local model directory "
        "(never downloaded).",
    )
    base_url: str | None = Field(
        None, description="openai: API base URL up to /v1, e.g. http://127.0.0.1:11434/v1 (Ollama), "
        "http://127.0.0.1:8000/v1 (vLLM).",
    )
    api_key_env: str | None = Field(
        None, description="openai: name of the environment variable holding the API key (sent as a Bearer "
        "token); no key is sent when unset.",
    )
    prompt: str = Field(
        DEFAULT_CAPTION_PROMPT,
        description="openai: prompt template; placeholders {label} {camera} {type} {attributes} {zones} "
        "{duration_s} {rule} {direction} {summary} (summary: the template captioner's sentence).",
    )
    max_tokens: Annotated[int, Field(ge=1, le=4096)] = Field(
        60, description="openai, transformers: most tokens generated per caption."
    )
    timeout_s: Annotated[float, Field(gt=0, le=600)] = Field(
        30.0, description="openai: longest wait for one HTTP request (connect and reply)."
    )
    retries: Annotated[int, Field(ge=0, le=10)] = Field(
        2, description="openai: extra attempts after a connection error, timeout, 429 or 5xx (backoff 0.5 s "
        "doubling; a Retry-After header is honoured up to 10 s).",
    )
    rate_limit_per_s: Annotated[float, Field(gt=0)] | None = Field(
        None, description="openai: most requests per second to the server, over all workers; unlimited "
        "when unset.",
    )
    jpeg_quality: Annotated[int, Field(ge=10, le=100)] = Field(
        85, description="openai: quality of the JPEG sent as a base64 data URL."
    )
    device: Device = Field(
        "auto", description="transformers: auto (CUDA when present, else CPU), cpu, cuda, cuda:N or mps."
    )

    @field_validator("base_url")
    @classmethod
    def _valid_base_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must start with http:// or https://, e.g. http://127.0.0.1:11434/v1")
        if value is not None:
            check_authority(value)
        return value


class CaptionsConfig(StrictModel):
    captioners: dict[str, CaptionerConfig] = Field(
        default_factory=lambda: {"template": CaptionerConfig()},
        description="Captioners by name, chosen per camera with `cameras[].captions.captioner`; each has its "
        "own queue and workers. Default: one named `template` (offline, deterministic).",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


class HttpAuthConfig(StrictModel):
    """Exactly one of: ``token_env``, ``token_file``, or ``user`` with ``password_hash``."""

    token_env: str | None = Field(
        None, min_length=1, description="Bearer token: the name of the environment variable that holds it "
        "(e.g. set by systemd's EnvironmentFile).")
    token_file: str | None = Field(None, min_length=1, description="Bearer token: a file that holds it.")
    user: str | None = Field(None, min_length=1, description="Basic auth: the user name.")
    password_hash: str | None = Field(
        None, description="Basic auth: the password as `argusd hash-password` prints it (scrypt$N$r$p$salt$hash).")

    @field_validator("password_hash")
    @classmethod
    def _scrypt_hash(cls, value: str | None) -> str | None:
        parts = value.split("$") if value is not None else []
        if value is not None and (len(parts) != 6 or parts[0] != "scrypt" or not all(p.isdigit() for p in parts[1:4])):
            raise ValueError("must be the output of `argusd hash-password` (scrypt$N$r$p$salt$hash)")
        return value

    @model_validator(mode="after")
    def _one_method(self) -> HttpAuthConfig:
        chosen = [name for name in ("token_env", "token_file", "user") if getattr(self, name) is not None]
        if len(chosen) != 1:
            raise ValueError("set exactly one of token_env, token_file, or user with password_hash")
        if (self.user is None) != (self.password_hash is None):
            raise ValueError("user and password_hash go together")
        return self


class HttpConfig(StrictModel):
    listen: str = Field("127.0.0.1:9108", description="host:port for the console, /metrics, /healthz, /readyz, "
                        "/cameras. An address beyond loopback requires `auth`.")
    auth: HttpAuthConfig | None = Field(
        None, description="Who may use the endpoints (all but /healthz and /readyz). Loopback is open without it.")
    allow_config_writes: bool = Field(
        False, description="Let the console's zone editor write the config file and reload it (authenticated "
        "requests only: requires `auth`).")
    preview_clients: Annotated[int, Field(ge=0, le=64)] = Field(
        4, description="Most simultaneous /cameras/{id}/preview.mjpg viewers (0 turns the preview off); "
                       "more are refused with 503."
    )

    @field_validator("listen")
    @classmethod
    def _valid_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("must be host:port, e.g. 127.0.0.1:9108")
        return value

    @model_validator(mode="after")
    def _auth_beyond_loopback(self) -> HttpConfig:
        if self.auth is None and not _is_loopback(self.host):
            raise ValueError(f"listen {self.listen} is beyond loopback: set http.auth (a bearer token or basic "
                             "auth) or listen on 127.0.0.1")
        if self.allow_config_writes and self.auth is None:
            raise ValueError("allow_config_writes requires http.auth: config writes must be authenticated")
        return self

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class LogConfig(StrictModel):
    level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    json_lines: bool = Field(False, alias="json", description="One JSON object per log line.")


class Config(StrictModel):
    cameras: list[CameraConfig] = Field(min_length=1, description="The cameras to analyse.")
    detector: DetectorConfig = Field(description="The object detector shared by all cameras.")
    classifiers: list[ClassifierConfig] = Field(
        default_factory=list, description="Crop classifiers whose results become event `attributes`."
    )
    batch: BatchConfig = Field(BatchConfig(), description="Cross-camera inference batching.")
    tracker: TrackerConfig = Field(TrackerConfig(), description="Object tracking and the event lifecycle.")
    redis: RedisConfig = Field(RedisConfig(), description="Where events are published.")
    spool: SpoolConfig = Field(
        SpoolConfig(), description="The local disk spool that holds events while Redis is unreachable."
    )
    snapshots: SnapshotConfig = Field(SnapshotConfig(), description="Annotated JPEGs of new and end events.")
    captions: CaptionsConfig = Field(CaptionsConfig(), description="Captioners that describe objects in words.")
    http: HttpConfig = Field(HttpConfig(), description="The metrics and health endpoints.")
    log: LogConfig = Field(LogConfig(), description="Logging.")
    fleet: FleetConfig | None = Field(
        None, description="Fleet mode: members that read the same camera list share its cameras through etcd "
        "(docs/fleet.md). Absent: this daemon analyses every enabled camera by itself.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        """Every problem across sections at once, one per line, each starting with the field it is about."""
        problems = [duplicate_camera_id(camera_id) for camera_id in duplicates(c.id for c in self.cameras)]
        defined = self.captions.captioners
        problems += [f"cameras[{camera.id}].captions.captioner: {camera.captions.captioner!r} is not defined "
                     f"under captions.captioners ({', '.join(sorted(defined)) or 'none defined'})"
                     for camera in self.cameras
                     if camera.captions is not None and camera.captions.captioner not in defined]
        if problems:
            raise ValueError("\n".join(problems))
        return self


def duplicate_camera_id(camera_id: str) -> str:
    return f"cameras: duplicate camera id {camera_id!r}"
