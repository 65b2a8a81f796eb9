"""Zone and line rules per camera, evaluated on all tracks at once (vectorised over the boxes).

Coordinates are normalised to 0..1 so rules survive resolution changes. An object's position is the
bottom-centre of its box (where it stands), unless the rule says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from daemon.config.models import LineConfig, RuleFilter, ZoneConfig
from daemon.core.types import Detections

LINE_MARGIN = 0.01  # normalised distance an object must be from a line for its side to count


@dataclass(frozen=True, slots=True)
class RuleHit:
    track_id: int
    kind: str  # zone_enter | zone_exit | loiter | line_cross
    rule: str
    at: float
    direction: str | None = None  # line_cross: a_to_b | b_to_a
    direction_name: str | None = None  # the operator's name for that direction, e.g. "in"


def anchors(xyxy: np.ndarray, width: int, height: int, anchor: str) -> np.ndarray:
    """(N, 2) normalised anchor points of the boxes."""
    x = (xyxy[:, 0] + xyxy[:, 2]) / 2 / width
    if anchor == "center":
        y = (xyxy[:, 1] + xyxy[:, 3]) / 2 / height
    else:
        y = xyxy[:, 3] / height
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


@dataclass(slots=True)
class _ZoneStay:
    inside: bool
    since: float
    loitered: bool = False


@dataclass(slots=True)
class _LineSide:
    side: int  # +1 (side A) or -1 (side B)
    point: np.ndarray  # the anchor where that side was last seen clearly


@dataclass(slots=True)
class CameraRules:
    zones: list[ZoneConfig]
    lines: list[LineConfig]
    _stays: dict[tuple[str, int], _ZoneStay] = field(default_factory=dict)
    _sides: dict[tuple[str, int], _LineSide] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.zones or self.lines)

    def update(self, tracked: Detections, labels: list[str], width: int, height: int, now: float) -> list[RuleHit]:
        hits: list[RuleHit] = []
        track_ids = tracked.track_id.tolist()
        for zone in self.zones:
            eligible = _eligible(zone, tracked, labels, width, height)
            points = anchors(tracked.xyxy, width, height, zone.anchor)
            inside = points_in_polygon(points, np.asarray(zone.polygon, dtype=np.float64))
            for row, track_id in enumerate(track_ids):
                if eligible[row]:
                    hits.extend(self._zone_step(zone, track_id, bool(inside[row]), now))
        for line in self.lines:
            eligible = _eligible(line, tracked, labels, width, height)
            points = anchors(tracked.xyxy, width, height, line.anchor)
            for row, track_id in enumerate(track_ids):
                if eligible[row]:
                    hit = self._line_step(line, track_id, points[row], now)
                    if hit is not None:
                        hits.append(hit)
        return hits

    def zones_of(self, track_id: int) -> list[str]:
        return [zone.name for zone in self.zones if (s := self._stays.get((zone.name, track_id))) and s.inside]

    def forget(self, track_id: int) -> None:
        for key in [k for k in self._stays if k[1] == track_id]:
            del self._stays[key]
        for key in [k for k in self._sides if k[1] == track_id]:
            del self._sides[key]

    def _zone_step(self, zone: ZoneConfig, track_id: int, inside: bool, now: float) -> list[RuleHit]:
        key = (zone.name, track_id)
        stay = self._stays.get(key)
        if stay is None or stay.inside != inside:
            was_inside = stay is not None and stay.inside
            self._stays[key] = stay = _ZoneStay(inside, now)
            if inside:
                return [RuleHit(track_id, "zone_enter", zone.name, now)]
            if was_inside:
                return [RuleHit(track_id, "zone_exit", zone.name, now)]
            return []
        if inside and zone.loiter_s is not None and not stay.loitered and now - stay.since >= zone.loiter_s:
            stay.loitered = True
            return [RuleHit(track_id, "loiter", zone.name, now)]
        return []

    def _line_step(self, line: LineConfig, track_id: int, point: np.ndarray, now: float) -> RuleHit | None:
        a, b = np.asarray(line.points[0], np.float64), np.asarray(line.points[1], np.float64)
        direction = b - a
        length = float(np.hypot(*direction))
        distance = float(direction[0] * (point[1] - a[1]) - direction[1] * (point[0] - a[0])) / length
        if abs(distance) < LINE_MARGIN:
            return None  # too close to call: wait until the object is clearly on one side
        side = 1 if distance > 0 else -1
        key = (line.name, track_id)
        previous = self._sides.get(key)
        self._sides[key] = _LineSide(side, point)
        if previous is None or previous.side == side:
            return None
        if not _path_meets_segment(previous.point, point, a, b):
            return None  # went round the end of the line, not across it
        if side == -1:
            return RuleHit(track_id, "line_cross", line.name, now, "a_to_b", line.a_to_b)
        return RuleHit(track_id, "line_cross", line.name, now, "b_to_a", line.b_to_a)


def _path_meets_segment(p: np.ndarray, q: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    """Whether the straight path p→q crosses the line through a, b within the segment a–b."""
    r, s = q - p, b - a
    denominator = s[0] * r[1] - s[1] * r[0]
    if denominator == 0:
        return False
    along_segment = ((p[0] - a[0]) * r[1] - (p[1] - a[1]) * r[0]) / denominator  # solves p + t·r = a + u·s
    return -0.02 <= along_segment <= 1.02
