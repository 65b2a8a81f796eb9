"""Events and the per-object lifecycle that produces them.

An object is born (``new``) when its track has been seen ``confirm_frames`` times, changes (``update``,
rate-limited) when its label, zones or attributes change, triggers rule events (``zone_enter``,
``zone_exit``, ``loiter``, ``line_cross``) and ends (``end``) after ``lost_timeout_s`` unseen. One that stays
in place for ``stationary_s`` is flagged ``stationary`` (an ``update``), and unflagged when it moves. Rule hits of
a track that is not yet confirmed wait for its ``new`` and are discarded if it never is, so one-frame
false positives never count.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np

from daemon.analytics.rules import CameraRules, RuleHit
from daemon.core.events import BestFrame, Event, EventType
from daemon.core.types import Detections

MAX_PENDING_HITS = 64  # per unconfirmed track; a track that is never confirmed cannot hold more
STILL_RADIUS = 0.25  # an object whose box centre stays within this many box heights of a point is in place


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
    attributes: dict[str, str] = field(default_factory=dict)
    pending_hits: list[RuleHit] = field(default_factory=list)
    changed: bool = False  # something an `update` reports changed since the last event
    last_update_at: float = 0.0
    best_frame: BestFrame | None = None
    classified_at: dict[str, float] = field(default_factory=dict)  # classifier name -> last run
    still_since: float = 0.0  # when it came to the place it is in now
    still_at: tuple[float, float] = (0.0, 0.0)  # that place: its box centre then, pixels
    stationary: bool = False


class ObjectLifecycle:
    """Turns one camera's tracked detections into lifecycle and rule events."""

    def __init__(
        self,
        camera: str,
        names: dict[int, str],
        confirm_frames: int,
        lost_timeout_s: float,
        update_interval_s: float = 5.0,
        rules: CameraRules | None = None,
        stationary_s: float | None = None,
    ) -> None:
        self.camera = camera
        self.names = names
        self.confirm_frames = confirm_frames
        self.lost_timeout_s = lost_timeout_s
        self.update_interval_s = update_interval_s
        self.rules = rules if rules is not None else CameraRules([], [])
        self.stationary_s = stationary_s
        self._objects: dict[int, _TrackedObject] = {}
        self._last_seen_tracks: list[int] = []  # the tracks of the last update's frame

    @property
    def active(self) -> int:
        return sum(1 for obj in self._objects.values() if obj.confirmed)

    @property
    def confirming(self) -> bool:
        """Some track is not confirmed yet (it needs ``confirm_frames`` detections)."""
        return any(not obj.confirmed for obj in self._objects.values())

    def update(self, tracked: Detections, frame_seq: int, captured_at: float, width: int, height: int,
               image: np.ndarray | None = None) -> list[Event]:
        """Events decided on this frame. With ``image``, each object keeps a reference to its
        best-confidence frame, and its events carry it as ``best_frame``."""
        events: list[Event] = []
        scale = np.array([width, height, width, height], dtype=np.float32)
        boxes = np.clip(tracked.xyxy / scale, 0.0, 1.0).astype(np.float64).round(4).tolist()
        hits_by_track: dict[int, list[RuleHit]] = {}
        if self.rules:
            labels = [self.names.get(c, str(c)) for c in tracked.class_id.tolist()]
            for hit in self.rules.update(tracked, labels, width, height, captured_at):
                hits_by_track.setdefault(hit.track_id, []).append(hit)
        for row, track_id in enumerate(tracked.track_id.tolist()):
            obj = self._observe(track_id, row, tracked, boxes[row], frame_seq, captured_at, image)
            self._track_stillness(obj, tracked.xyxy[row], captured_at)
            hits = hits_by_track.get(track_id, [])
            if any(hit.kind in (EventType.ZONE_ENTER, EventType.ZONE_EXIT) for hit in hits):
                obj.changed = True  # the zones it is in changed
            if not obj.confirmed:
                obj.pending_hits.extend(hits[: MAX_PENDING_HITS - len(obj.pending_hits)])
                if obj.hits >= self.confirm_frames:
                    obj.confirmed = True
                    obj.changed = False
                    obj.last_update_at = captured_at
                    events.append(self._event(obj, EventType.NEW, captured_at, captured_at))
                    events.extend(self._rule_event(obj, hit, captured_at) for hit in obj.pending_hits)
                    obj.pending_hits.clear()
                continue
            events.extend(self._rule_event(obj, hit, captured_at) for hit in hits)
            events.extend(self._maybe_update(obj, captured_at))
        self._last_seen_tracks = tracked.track_id.tolist()
        events.extend(self.expire(captured_at))
        return events

    def hold(self, captured_at: float) -> list[Event]:
        """A frame that was not detected on because nothing moved: the objects of the last detected frame
        are still where it saw them, so they count as seen now; the others age, and expire as usual."""
        for track_id in self._last_seen_tracks:
            obj = self._objects.get(track_id)
            if obj is not None:
                obj.last_seen = captured_at
        return self.expire(captured_at)

    def _observe(
        self, track_id: int, row: int, tracked: Detections, box: list[float], frame_seq: int, at: float,
        image: np.ndarray | None,
    ) -> _TrackedObject:
        confidence = float(tracked.confidence[row])
        class_id = int(tracked.class_id[row])
        obj = self._objects.get(track_id)
        if obj is None:
            obj = _TrackedObject(uuid.uuid4().hex, track_id, class_id, at, at, box, confidence, frame_seq)
            self._objects[track_id] = obj
        obj.hits += 1
        obj.last_seen = at
        obj.last_bbox = box
        obj.last_confidence = confidence
        obj.last_seq = frame_seq
        if image is not None and (obj.best_frame is None or confidence > obj.best_confidence):
            obj.best_frame = BestFrame(image, tracked, row, at)
        obj.best_confidence = max(obj.best_confidence, confidence)
        obj.class_votes[class_id] = obj.class_votes.get(class_id, 0) + 1
        majority = max(obj.class_votes, key=obj.class_votes.__getitem__)
        if majority != obj.class_id:
            obj.class_id = majority
            obj.changed = True
        return obj

    def _track_stillness(self, obj: _TrackedObject, box: np.ndarray, at: float) -> None:
        if self.stationary_s is None:
            return
        centre = (float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2)
        moved = np.hypot(centre[0] - obj.still_at[0], centre[1] - obj.still_at[1]) > STILL_RADIUS * float(
            box[3] - box[1])
        if obj.hits == 1 or moved:
            obj.still_since, obj.still_at = at, centre
        stationary = at - obj.still_since >= self.stationary_s
        if stationary != obj.stationary:
            obj.stationary = stationary
            obj.changed = True

    def classification_due(self, track_id: int, name: str, now: float, interval_s: float) -> bool:
        """Whether classifier ``name`` should look at this track now: once the track is confirmed on
        this frame or earlier (so its `new` already carries the result), then every ``interval_s``."""
        obj = self._objects.get(track_id)
        if obj is None or obj.hits + 1 < self.confirm_frames:
            return False
        last = obj.classified_at.get(name)
        return last is None or now - last >= interval_s

    def record_classification(self, track_id: int, name: str, value: str | None, now: float) -> None:
        """Store a classifier result (None: not confident, keep the previous); a change is reported by
        the next `update`."""
        obj = self._objects.get(track_id)
        if obj is None:
            return
        obj.classified_at[name] = now
        if value is not None and obj.attributes.get(name) != value:
            obj.attributes = obj.attributes | {name: value}
            obj.changed = obj.confirmed

    def _maybe_update(self, obj: _TrackedObject, now: float) -> list[Event]:
        if obj.changed and now - obj.last_update_at >= self.update_interval_s:
            obj.changed = False
            obj.last_update_at = now
            return [self._event(obj, EventType.UPDATE, now, now)]
        return []

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
                events.append(self._event(obj, EventType.END, obj.last_seen, now,
                                          zones_visited=self.rules.visited(track_id)))
            self.rules.forget(track_id)
        return events

    def _rule_event(self, obj: _TrackedObject, hit: RuleHit, decided_at: float) -> Event:
        return self._event(obj, hit.kind, hit.at, decided_at, rule=hit.rule, direction=hit.direction,
                           direction_name=hit.direction_name)

    def _event(self, obj: _TrackedObject, kind: EventType, at: float, decided_at: float, *,
               zones_visited: list[str] | None = None, rule: str | None = None, direction: str | None = None,
               direction_name: str | None = None) -> Event:
        event = Event(
            event_id=f"{obj.object_id}-{obj.steps}",
            object_id=obj.object_id,
            type=kind,
            camera=self.camera,
            at=at,
            label=self.names.get(obj.class_id, str(obj.class_id)),
            class_id=obj.class_id,
            confidence=round(obj.last_confidence, 4),
            bbox=obj.last_bbox,
            track_id=obj.track_id,
            frame_seq=obj.last_seq,
            captured_at=decided_at,
            started_at=obj.first_seen,
            duration_s=round(obj.last_seen - obj.first_seen, 3),
            best_confidence=round(obj.best_confidence, 4),
            zones=self.rules.zones_of(obj.track_id),
            attributes=dict(obj.attributes),
            best_frame=obj.best_frame,
            story=self.rules.story(obj.track_id, at),
            zones_visited=zones_visited,
            rule=rule,
            direction=direction,
            direction_name=direction_name,
            stationary=obj.stationary,
        )
        obj.steps += 1
        return event
