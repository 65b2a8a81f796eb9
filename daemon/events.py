"""Events and the per-object lifecycle that produces them (new when confirmed, end when lost)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone

import numpy as np

from .types import Detections

SCHEMA_VERSION = "1.1"  # daemon/schema/event.schema.json; additive changes bump the minor


def iso_utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


@dataclass(frozen=True, slots=True)
class Event:
    """One step of a tracked object's life. ``event_id`` is unique per event and stable under retries;
    ``object_id`` is shared by every event of the same object."""

    event_id: str
    object_id: str
    type: str  # new | end
    camera: str
    ts: str
    label: str
    class_id: int
    confidence: float
    bbox: list[float]  # normalised x1, y1, x2, y2 in 0..1
    track_id: int
    frame_seq: int
    captured_at: float  # wall-clock capture time of the frame on which the event was decided
    started_at: str
    duration_s: float = 0.0
    best_confidence: float = 0.0
    schema_version: str = SCHEMA_VERSION
    snapshot: dict | None = None  # where the annotated JPEG is: {"store": "file", "path"} or {"store": "redis", "key"}
    # The object's best-confidence frame, for the snapshot writer; never serialised, and the daemon
    # strips it before the event is queued for publishing.
    best_frame: BestFrame | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "best_frame"}
        if data["snapshot"] is None:
            del data["snapshot"]
        return data

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


@dataclass(slots=True)
class _TrackedObject:
    object_id: str
    track_id: int
    class_id: int
    first_seen: float
    last_seen: float
    last_bbox: list[float]
    last_confidence: float
    last_seq: int
    hits: int = 0
    steps: int = 0  # events emitted so far; part of the next event_id
    best_confidence: float = 0.0
    confirmed: bool = False
    class_votes: dict[int, int] = field(default_factory=dict)
    best_frame: BestFrame | None = None


class ObjectLifecycle:
    """Turns one camera's tracked detections into lifecycle events.

    A track becomes an object (``new``) after ``confirm_frames`` sightings, so single-frame false
    positives never reach consumers; it ends (``end``) after ``lost_timeout_s`` without a sighting.
    """

    def __init__(self, camera: str, names: dict[int, str], confirm_frames: int, lost_timeout_s: float) -> None:
        self.camera = camera
        self.names = names
        self.confirm_frames = confirm_frames
        self.lost_timeout_s = lost_timeout_s
        self._objects: dict[int, _TrackedObject] = {}

    @property
    def active(self) -> int:
        return sum(1 for obj in self._objects.values() if obj.confirmed)

    def update(self, tracked: Detections, frame_seq: int, captured_at: float, width: int, height: int,
               image: np.ndarray | None = None) -> list[Event]:
        """Events decided on this frame. With ``image``, each object keeps a reference to its
        best-confidence frame, and its ``new`` and ``end`` events carry it as ``best_frame``."""
        events: list[Event] = []
        scale = np.array([width, height, width, height], dtype=np.float32)
        boxes = np.clip(tracked.xyxy / scale, 0.0, 1.0).astype(np.float64).round(4).tolist()
        for row, track_id in enumerate(tracked.track_id.tolist()):
            obj = self._objects.get(track_id)
            confidence = float(tracked.confidence[row])
            class_id = int(tracked.class_id[row])
            if obj is None:
                obj = _TrackedObject(
                    object_id=uuid.uuid4().hex, track_id=track_id, class_id=class_id, first_seen=captured_at,
                    last_seen=captured_at, last_bbox=boxes[row], last_confidence=confidence, last_seq=frame_seq,
                )
                self._objects[track_id] = obj
            obj.hits += 1
            obj.last_seen = captured_at
            obj.last_bbox = boxes[row]
            obj.last_confidence = confidence
            obj.last_seq = frame_seq
            if image is not None and (obj.best_frame is None or confidence > obj.best_confidence):
                obj.best_frame = BestFrame(image, tracked, row, captured_at)
            obj.best_confidence = max(obj.best_confidence, confidence)
            obj.class_votes[class_id] = obj.class_votes.get(class_id, 0) + 1
            obj.class_id = max(obj.class_votes, key=obj.class_votes.__getitem__)
            if not obj.confirmed and obj.hits >= self.confirm_frames:
                obj.confirmed = True
                events.append(self._event(obj, "new", captured_at, captured_at))
        events.extend(self.expire(captured_at))
        return events

    def expire(self, now: float) -> list[Event]:
        """End the objects not seen for ``lost_timeout_s``; forget unconfirmed tracks silently."""
        lost = [tid for tid, obj in self._objects.items() if now - obj.last_seen > self.lost_timeout_s]
        return self._end(lost, now)

    def end_all(self, now: float) -> list[Event]:
        """End every object, e.g. when the camera stops or the daemon shuts down."""
        return self._end(list(self._objects), now)

    def _end(self, track_ids: list[int], now: float) -> list[Event]:
        events = []
        for track_id in track_ids:
            obj = self._objects.pop(track_id)
            if obj.confirmed:
                events.append(self._event(obj, "end", obj.last_seen, now))
        return events

    def _event(self, obj: _TrackedObject, kind: str, at: float, decided_at: float) -> Event:
        event = Event(
            event_id=f"{obj.object_id}-{obj.steps}",
            object_id=obj.object_id,
            type=kind,
            camera=self.camera,
            ts=iso_utc(at),
            label=self.names.get(obj.class_id, str(obj.class_id)),
            class_id=obj.class_id,
            confidence=round(obj.last_confidence, 4),
            bbox=obj.last_bbox,
            track_id=obj.track_id,
            frame_seq=obj.last_seq,
            captured_at=decided_at,
            started_at=iso_utc(obj.first_seen),
            duration_s=round(obj.last_seen - obj.first_seen, 3),
            best_confidence=round(obj.best_confidence, 4),
            best_frame=obj.best_frame,
        )
        obj.steps += 1
        return event
