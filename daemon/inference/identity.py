"""One identity per object across the tracker's track restarts.

A tracker ends a track it cannot match for a while (a person behind a pillar, a parked car the detector
flickers on) and starts a new one when the object shows again. Here a new track is re-linked to a lost
identity, lost for at most ``lost_timeout_s`` by capture time, when it appears where that identity's motion
predicts (its centre moved on at its last velocity, within a fraction of its height) and looks alike (a
hue-saturation histogram of the box). An identity whose predicted centre has left the picture walked out of
it: someone appearing where it vanished is someone else. The identity's id is what the lifecycle and the
rules key on, so a re-linked object keeps its ``object_id``, its zone stays and its side of each line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from daemon.core.types import Detections, Frame

RELINK_GATE = 0.75  # a new track within this many of the lost box's heights of the predicted centre may be it
RELINK_MAX_HEIGHT_RATIO = 1.6  # ... and its box is at most this much taller or shorter
APPEARANCE_MAX_DISTANCE = 0.55  # Bhattacharyya distance of the histograms above which it is someone else
APPEARANCE_REFRESH_S = 1.0  # the identities' histograms are refreshed (one BGR frame) at most this often
VELOCITY_SMOOTHING = 0.5  # weight of the newest velocity measurement
APPEARANCE_SMOOTHING = 0.5  # weight of the newest histogram
_HIST_BINS = [16, 8]  # hue, saturation
_HIST_RANGES = [0, 180, 0, 256]


@dataclass(slots=True)
class _Identity:
    identity: int
    track_id: int  # the tracker's current track for it
    centre: np.ndarray  # (2,) pixels
    height: float  # pixels
    velocity: np.ndarray  # (2,) pixels per second
    seen_at: float
    appearance: np.ndarray | None = None  # normalised histogram, smoothed over the refreshes


def _appearance(image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    height, width = image.shape[:2]
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    hsv = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2HSV)
    histogram = cv2.calcHist([hsv], [0, 1], None, _HIST_BINS, _HIST_RANGES).ravel()
    return histogram / max(float(histogram.sum()), 1.0)


def _looks_alike(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return True  # nothing to compare (a box too small to describe): motion decides alone
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA)) <= APPEARANCE_MAX_DISTANCE


class Identities:
    """Maps one camera's tracker tracks to argusd's identities; only the inference thread touches it."""

    def __init__(self, lost_timeout_s: float, on_relink: Callable[[], None] | None = None) -> None:
        self.lost_timeout_s = lost_timeout_s
        self.relinked = 0  # tracks re-linked to a lost identity so far
        self._on_relink = on_relink  # e.g. the camera's argusd_tracks_relinked_total
        self._by_track: dict[int, _Identity] = {}  # tracker track id -> identity
        self._next_identity = 1
        self._appearance_due_at = float("-inf")
        self._last_seen: list[_Identity] = []  # the identities of the last update's frame

    def assign(self, tracked: Detections, frame: Frame) -> Detections:
        """``tracked`` (tracker track ids) with identity ids instead."""
        now = frame.captured_at
        self._by_track = {tid: ident for tid, ident in self._by_track.items()
                          if now - ident.seen_at <= self.lost_timeout_s}
        if len(tracked) == 0:
            self._last_seen = []
            return tracked
        centres = np.column_stack(((tracked.xyxy[:, 0] + tracked.xyxy[:, 2]) / 2,
                                   (tracked.xyxy[:, 1] + tracked.xyxy[:, 3]) / 2)).astype(np.float64)
        heights = (tracked.xyxy[:, 3] - tracked.xyxy[:, 1]).astype(np.float64)
        track_ids = tracked.track_id.tolist()
        matched: dict[int, _Identity] = {row: self._by_track[tid] for row, tid in enumerate(track_ids)
                                         if tid in self._by_track}
        fresh = [row for row in range(len(track_ids)) if row not in matched]
        refresh = now >= self._appearance_due_at or any(
            ident.appearance is None for ident in matched.values()) or bool(fresh)
        descriptors = [_appearance(frame.image, box) for box in tracked.xyxy] if refresh else None
        if fresh:
            self._relink(fresh, matched, centres, heights, descriptors, now, (frame.width, frame.height))
        for row, track_id in enumerate(track_ids):
            ident = matched.get(row)
            if ident is None:
                ident = matched[row] = _Identity(self._next_identity, track_id, centres[row], float(heights[row]),
                                                 np.zeros(2), now)
                self._next_identity += 1
            self._observe(ident, track_id, centres[row], float(heights[row]), now,
                          descriptors[row] if descriptors else None)
        if refresh:
            self._appearance_due_at = now + APPEARANCE_REFRESH_S
        self._last_seen = [matched[row] for row in range(len(track_ids))]
        return tracked.with_tracks(np.array([matched[row].identity for row in range(len(track_ids))],
                                            dtype=np.int64))

    def hold(self, captured_at: float) -> None:
        """A frame not detected on because nothing moved: the last frame's objects are still there."""
        for ident in self._last_seen:
            ident.seen_at = captured_at

    def _relink(self, fresh: list[int], matched: dict[int, _Identity], centres: np.ndarray, heights: np.ndarray,
                descriptors: list[np.ndarray | None] | None, now: float, picture: tuple[int, int]) -> None:
        """Give the new tracks in ``fresh`` the lost identities they continue, nearest prediction first; an
        identity predicted outside the ``picture`` (width, height) has left and continues nothing."""
        taken = {id(ident) for ident in matched.values()}
        lost = {id(ident): ident for ident in self._by_track.values()
                if id(ident) not in taken and ident.seen_at < now}
        pairs = []
        for ident in lost.values():
            predicted = ident.centre + ident.velocity * (now - ident.seen_at)
            if not (0 <= predicted[0] <= picture[0] and 0 <= predicted[1] <= picture[1]):
                continue
            for row in fresh:
                ratio = heights[row] / max(ident.height, 1.0)
                distance = float(np.hypot(*(centres[row] - predicted)))
                if distance <= RELINK_GATE * ident.height and 1 / RELINK_MAX_HEIGHT_RATIO <= ratio \
                        <= RELINK_MAX_HEIGHT_RATIO:
                    pairs.append((distance, row, ident))
        for _, row, ident in sorted(pairs, key=lambda pair: pair[0]):
            if row in matched or id(ident) not in lost:
                continue
            if not _looks_alike(ident.appearance, descriptors[row] if descriptors else None):
                continue
            del self._by_track[ident.track_id]
            del lost[id(ident)]
            matched[row] = ident
            self.relinked += 1
            if self._on_relink is not None:
                self._on_relink()

    def _observe(self, ident: _Identity, track_id: int, centre: np.ndarray, height: float, now: float,
                 descriptor: np.ndarray | None) -> None:
        elapsed = now - ident.seen_at
        if elapsed > 0:
            measured = (centre - ident.centre) / elapsed
            ident.velocity = VELOCITY_SMOOTHING * measured + (1 - VELOCITY_SMOOTHING) * ident.velocity
        ident.track_id = track_id
        ident.centre, ident.height, ident.seen_at = centre, height, now
        if descriptor is not None:
            ident.appearance = descriptor if ident.appearance is None else \
                APPEARANCE_SMOOTHING * descriptor + (1 - APPEARANCE_SMOOTHING) * ident.appearance
        self._by_track[track_id] = ident
