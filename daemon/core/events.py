"""The event vocabulary: what argusd publishes, as typed values, and the one way they become JSON.

Times are Unix seconds (floats) everywhere inside argusd; they become ISO-8601 strings only when an event is
serialised. The published form is specified by ``daemon/schema/event.schema.json``.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import numpy as np

from daemon.core.types import Detections

SCHEMA_VERSION = "1.3"  # daemon/schema/event.schema.json; additive changes bump the minor


class EventType(enum.StrEnum):
    NEW = "new"
    UPDATE = "update"
    END = "end"
    ZONE_ENTER = "zone_enter"
    ZONE_EXIT = "zone_exit"
    LOITER = "loiter"
    LINE_CROSS = "line_cross"
    CAPTION = "caption"


def iso_utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


# Field metadata read by the serialiser: published under another name, as an ISO time, or not at all.
def _published_as(name: str) -> dict[str, object]:
    return {"wire_name": name, "iso": True}


_ISO_TIME: dict[str, object] = {"iso": True}
_INTERNAL: dict[str, object] = {"internal": True}


class Serialised:
    """The one serialiser of published events: fields in declaration order, ``None`` left out, times as ISO
    strings, internal fields (frames for the snapshot writer, stories for captioners) never written."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        published: dict[str, Any] = {}
        for spec in fields(self):  # type: ignore[arg-type]
            if spec.metadata.get("internal"):
                continue
            value = getattr(self, spec.name)
            if value is None:
                continue
            if spec.metadata.get("iso"):
                value = iso_utc(value)
            published[str(spec.metadata.get("wire_name", spec.name))] = value
        return published

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class BestFrame:
    """The frame on which an object had its highest confidence, with that frame's tracked detections
    (for annotation). Holding it keeps one image alive per active object, shared between objects."""

    image: np.ndarray
    detections: Detections
    row: int  # the object's row in ``detections``
    captured_at: float


@dataclass(frozen=True, slots=True)
class Crossing:
    line: str
    direction: str  # a_to_b | b_to_a
    direction_name: str | None  # the operator's name for that direction, e.g. "in"


@dataclass(frozen=True, slots=True)
class ObjectStory:
    """What the object did up to the described event (kept by the camera's rules)."""

    crossings: tuple[Crossing, ...] = ()  # in order
    zone_stays: tuple[tuple[str, float], ...] = ()  # (zone, seconds inside) per stay, in order; open ones so far
    loitered: tuple[str, ...] = ()  # zones whose loiter rule fired
    in_view: dict[str, int] = field(default_factory=dict)  # label -> objects on the best frame (itself included)


@dataclass(frozen=True, slots=True)
class Event(Serialised):
    """One step of a tracked object's life. ``event_id`` is unique per event and stable under retries;
    ``object_id`` is shared by every event of the same object."""

    event_id: str
    object_id: str
    type: EventType
    camera: str
    at: float = field(metadata=_published_as("ts"))  # when it happened (Unix s)
    label: str
    class_id: int
    confidence: float
    bbox: list[float]  # normalised x1, y1, x2, y2 in 0..1
    track_id: int
    frame_seq: int
    captured_at: float  # wall-clock capture time of the frame on which the event was decided
    started_at: float = field(metadata=_ISO_TIME)  # the object's first sighting
    duration_s: float = 0.0
    best_confidence: float = 0.0
    zones: list[str] = field(default_factory=list)  # zones the object is in now
    attributes: dict[str, str] = field(default_factory=dict)
    stationary: bool = False  # in place for tracker.stationary_s or longer
    zones_visited: list[str] | None = None  # end only
    rule: str | None = None  # rule events: the zone or line name
    direction: str | None = None  # line_cross: a_to_b | b_to_a
    direction_name: str | None = None  # line_cross: the configured name of that direction
    snapshot: dict | None = None  # where the annotated JPEG is: {"store": "file", "path"} or {"store": "redis", "key"}
    caption: dict | None = None  # end only: the object's latest caption ready when it ended (outputs/captions.py)
    schema_version: str = SCHEMA_VERSION
    # The object's best-confidence frame, for the snapshot writer, and its story so far, for captioners; the
    # daemon strips both before the event is queued for publishing.
    best_frame: BestFrame | None = field(default=None, repr=False, compare=False, metadata=_INTERNAL)
    story: ObjectStory | None = field(default=None, repr=False, compare=False, metadata=_INTERNAL)


@dataclass(frozen=True, slots=True)
class CaptionEvent(Serialised):
    """A caption of one earlier event (the subject), published as its own event."""

    event_id: str  # <subject event_id>-caption
    camera: str
    at: float = field(metadata=_published_as("ts"))  # when the text was ready
    object_id: str
    subject_event_id: str
    subject_type: EventType
    label: str
    track_id: int
    text: str
    captioner: str  # the configured captioner name
    latency_s: float  # request to text, queue wait included
    captured_at: float  # when the text was ready (Unix s); capture-to-publish then measures publishing only
    snapshot: dict | None = None  # the subject's best frame with this caption drawn on it
    type: EventType = EventType.CAPTION
    schema_version: str = SCHEMA_VERSION
