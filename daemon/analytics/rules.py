"""Zone and line rules per camera, evaluated on all tracks at once (vectorised over the boxes).

Coordinates are normalised to 0..1 so rules survive resolution changes. An object's position is the
bottom-centre of its box (where it stands), unless the rule says otherwise. The rules are the one keeper of
an object's zone stays, line sides and crossings: the lifecycle asks them for the zones an object is in and
has visited, captioners get its story from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from daemon.config.models import LineConfig, RuleFilter, ZoneConfig
from daemon.core.events import Crossing, EventType, ObjectStory
from daemon.core.types import Detections

MAX_STORY_ITEMS = 64  # past zone stays and crossings remembered per object (for its story)


@dataclass(frozen=True, slots=True)
class RuleHit:
    track_id: int
    kind: EventType  # zone_enter | zone_exit | loiter | line_cross
    rule: str
    at: float
    direction: str | None = None  # line_cross: a_to_b | b_to_a
    direction_name: str | None = None  # the operator's name for that direction, e.g. "in"


def anchors(xyxy: np.ndarray, width: int, height: int, anchor: str) -> np.ndarray:
    """(N, 2) normalised anchor points of the boxes."""
    x = (xyxy[:, 0] + xyxy[:, 2]) / 2 / width
    y = (xyxy[:, 1] + xyxy[:, 3]) / 2 / height if anchor == "center" else xyxy[:, 3] / height
    return np.column_stack((x, y))


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd ray casting for many points at once; (N,) bool."""
    x, y = points[:, 0:1], points[:, 1:2]
    x1, y1 = polygon[:, 0], polygon[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    straddles = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing_x = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    return np.count_nonzero(straddles & (x < crossing_x), axis=1) % 2 == 1


def _eligible(rule: RuleFilter, tracked: Detections, labels: list[str], width: int, height: int) -> np.ndarray:
    keep = tracked.confidence >= rule.min_confidence
    if rule.min_area > 0:
        box = tracked.xyxy
        area = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]) / (width * height)
        keep &= area >= rule.min_area
    if rule.classes:
        wanted = set(rule.classes)
        keep &= np.array([label in wanted for label in labels], dtype=bool)
    return keep


@dataclass(frozen=True, slots=True)
class _ZoneGeometry:
    config: ZoneConfig
    polygon: np.ndarray  # (K, 2) float64, converted once per config


@dataclass(frozen=True, slots=True)
class _LineGeometry:
    config: LineConfig
    a: np.ndarray
    b: np.ndarray
    length: float

    @classmethod
    def of(cls, config: LineConfig) -> _LineGeometry:
        a, b = np.asarray(config.points[0], np.float64), np.asarray(config.points[1], np.float64)
        return cls(config, a, b, float(np.hypot(*(b - a))))


@dataclass(slots=True)
class _ZoneStay:
    zone: str
    entered: float
    left: float | None = None
    loitered: bool = False


@dataclass(slots=True)
class _LineSide:
    side: int  # +1 (side A) or -1 (side B)
    point: np.ndarray  # the anchor where that side was last seen clearly


@dataclass(slots=True)
class _TrackRules:
    """What the rules know of one track."""

    open_stays: dict[str, _ZoneStay] = field(default_factory=dict)  # zones it is inside now, by name
    past_stays: list[_ZoneStay] = field(default_factory=list)  # every stay in order (bounded), open ones too
    visited: list[str] = field(default_factory=list)  # zones in the order first entered
    sides: dict[str, _LineSide] = field(default_factory=dict)
    crossings: list[Crossing] = field(default_factory=list)
    loitered: list[str] = field(default_factory=list)


class CameraRules:
    def __init__(self, zones: list[ZoneConfig], lines: list[LineConfig]) -> None:
        self.zones = zones
        self.lines = lines
        self._zones = [_ZoneGeometry(zone, np.asarray(zone.polygon, dtype=np.float64)) for zone in zones]
        self._lines = [_LineGeometry.of(line) for line in lines]
        self._tracks: dict[int, _TrackRules] = {}

    def __bool__(self) -> bool:
        return bool(self.zones or self.lines)

    def update(self, tracked: Detections, labels: list[str], width: int, height: int, now: float) -> list[RuleHit]:
        hits: list[RuleHit] = []
        track_ids = tracked.track_id.tolist()
        for zone in self._zones:
            eligible = _eligible(zone.config, tracked, labels, width, height)
            points = anchors(tracked.xyxy, width, height, zone.config.anchor)
            inside = points_in_polygon(points, zone.polygon)
            for row, track_id in enumerate(track_ids):
                if eligible[row]:
                    hits.extend(self._zone_step(zone.config, self._track(track_id), track_id, bool(inside[row]), now))
        for line in self._lines:
            eligible = _eligible(line.config, tracked, labels, width, height)
            points = anchors(tracked.xyxy, width, height, line.config.anchor)
            for row, track_id in enumerate(track_ids):
                if eligible[row]:
                    hit = self._line_step(line, self._track(track_id), track_id, points[row], now)
                    if hit is not None:
                        hits.append(hit)
        return hits

    def zones_of(self, track_id: int) -> list[str]:
        """The zones the track is inside now, in config order."""
        state = self._tracks.get(track_id)
        return [zone.name for zone in self.zones if state and zone.name in state.open_stays]

    def visited(self, track_id: int) -> list[str]:
        state = self._tracks.get(track_id)
        return list(state.visited) if state else []

    def story(self, track_id: int, now: float) -> ObjectStory:
        """The track's crossings, zone stays (open ones counted up to ``now``) and loitering so far."""
        state = self._tracks.get(track_id)
        if state is None:
            return ObjectStory()
        return ObjectStory(
            crossings=tuple(state.crossings),
            zone_stays=tuple((s.zone, round(max(0.0, (now if s.left is None else s.left) - s.entered), 3))
                             for s in state.past_stays),
            loitered=tuple(state.loitered),
        )

    def forget(self, track_id: int) -> None:
        self._tracks.pop(track_id, None)

    def _track(self, track_id: int) -> _TrackRules:
        state = self._tracks.get(track_id)
        if state is None:
            state = self._tracks[track_id] = _TrackRules()
        return state

    @staticmethod
    def _zone_step(zone: ZoneConfig, state: _TrackRules, track_id: int, inside: bool, now: float) -> list[RuleHit]:
        stay = state.open_stays.get(zone.name)
        if inside and stay is None:
            stay = state.open_stays[zone.name] = _ZoneStay(zone.name, now)
            if len(state.past_stays) < MAX_STORY_ITEMS:
                state.past_stays.append(stay)
            if zone.name not in state.visited:
                state.visited.append(zone.name)
            return [RuleHit(track_id, EventType.ZONE_ENTER, zone.name, now)]
        if not inside:
            if stay is not None:
                del state.open_stays[zone.name]
                stay.left = now
                return [RuleHit(track_id, EventType.ZONE_EXIT, zone.name, now)]
            return []
        if stay is not None and zone.loiter_s is not None and not stay.loitered and now - stay.entered >= zone.loiter_s:
            stay.loitered = True
            if zone.name not in state.loitered:
                state.loitered.append(zone.name)
            return [RuleHit(track_id, EventType.LOITER, zone.name, now)]
        return []

    @staticmethod
    def _line_step(line: _LineGeometry, state: _TrackRules, track_id: int, point: np.ndarray,
                   now: float) -> RuleHit | None:
        a, b = line.a, line.b
        direction = b - a
        distance = float(direction[0] * (point[1] - a[1]) - direction[1] * (point[0] - a[0])) / line.length
        if abs(distance) < line.config.min_distance:
            return None  # too close to call (hysteresis): wait until the object is clearly on one side
        side = 1 if distance > 0 else -1
        name = line.config.name
        previous = state.sides.get(name)
        state.sides[name] = _LineSide(side, point)
        if previous is None or previous.side == side:
            return None
        if not _path_meets_segment(previous.point, point, a, b):
            return None  # went round the end of the line, not across it
        crossing = Crossing(name, "a_to_b", line.config.a_to_b) if side == -1 else \
            Crossing(name, "b_to_a", line.config.b_to_a)
        if len(state.crossings) < MAX_STORY_ITEMS:
            state.crossings.append(crossing)
        return RuleHit(track_id, EventType.LINE_CROSS, name, now, crossing.direction, crossing.direction_name)


def _path_meets_segment(p: np.ndarray, q: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    """Whether the straight path p→q crosses the line through a, b within the segment a–b."""
    r, s = q - p, b - a
    denominator = s[0] * r[1] - s[1] * r[0]
    if denominator == 0:
        return False
    along_segment = ((p[0] - a[0]) * r[1] - (p[1] - a[1]) * r[0]) / denominator  # solves p + t·r = a + u·s
    return -0.02 <= along_segment <= 1.02
