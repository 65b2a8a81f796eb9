"""Per-camera multi-object tracking: ultralytics' ByteTrack or BoT-SORT on real time, behind argusd's own
identities (daemon/inference/identity.py), on struct-of-arrays detections.

ultralytics' trackers count frames: their Kalman filter moves a track one velocity step per frame, and a lost
track is dropped after a number of frames. Frames reach argusd at irregular intervals (superseded frames,
motion gating, a slow model), so here both are driven by the frames' capture times instead: the motion step
is the time since the previous frame in units of the camera's frame interval, and a lost track is dropped once
``lost_timeout_s`` has passed since it was last seen.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
from ultralytics.trackers.basetrack import TrackState
from ultralytics.trackers.bot_sort import BOTSORT
from ultralytics.trackers.byte_tracker import BYTETracker

from daemon.core.types import Detections, Frame
from daemon.inference.identity import Identities

MERGE_IOU = 0.7  # boxes of mergeable classes overlapping this much are one object (the detector NMS's own IoU)
NEVER_BY_FRAMES = 1 << 30  # ultralytics' frame-count buffer, disabled: lost tracks are dropped by time here


class _TrackerInput:
    """The slice of ultralytics' Boxes interface BYTETracker reads, backed by a Detections' arrays."""

    def __init__(self, detections: Detections) -> None:
        self._detections = detections
        xyxy = detections.xyxy
        self.conf = detections.confidence
        self.cls = detections.class_id.astype(np.float32)
        self.xyxy = xyxy
        self.xywh = np.column_stack(((xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2,
                                     xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])).astype(np.float32)

    def __len__(self) -> int:
        return len(self._detections)

    def __getitem__(self, index: np.ndarray) -> _TrackerInput:
        return _TrackerInput(self._detections[index])


class _RealTime:
    """What makes an ultralytics tracker run on capture times; mixed in before the tracker class."""

    frame_id: int
    kalman_filter: Any
    lost_stracks: list[Any]
    tracked_stracks: list[Any]
    _FROZEN_VELOCITIES: tuple[int, ...]  # the state entries ultralytics zeroes while a track is lost

    def start_clock(self, frame_interval_s: float, lost_timeout_s: float) -> None:
        self._frame_interval_s = frame_interval_s
        self._lost_timeout_s = lost_timeout_s
        self._now = 0.0
        self._step = 1.0  # the motion step of this update, in frame intervals
        self._seen_at: dict[int, float] = {}  # track id -> capture time it was last detected (or held)

    def advance(self, captured_at: float) -> None:
        """The next update is for a frame captured at ``captured_at``."""
        if self._seen_at:
            self._step = max(0.0, captured_at - self._now) / self._frame_interval_s
        self._now = captured_at

    def hold(self, captured_at: float) -> None:
        """A frame that was not detected on (nothing moved): the tracked objects are still where they were,
        seen now, and the held time is no motion (the next step counts from here)."""
        for track in self.tracked_stracks:
            self._seen_at[track.track_id] = captured_at
        self._now = captured_at

    def multi_predict(self, tracks: list[Any]) -> None:
        # ultralytics' own prediction through its shared filter, with this update's step instead of one frame
        if not tracks:
            return
        kalman = self.kalman_filter
        motion = kalman._motion_mat  # noqa: SLF001 - the constant-velocity step; ultralytics fixes it at 1 frame
        ndim = motion.shape[0] // 2
        motion[range(ndim), range(ndim, 2 * ndim)] = self._step
        means = np.asarray([track.mean for track in tracks])
        covariances = np.asarray([track.covariance for track in tracks])
        lost = np.array([track.state != TrackState.Tracked for track in tracks])
        for index in self._FROZEN_VELOCITIES:
            means[lost, index] = 0
        means, covariances = kalman.multi_predict(means, covariances)
        for track, mean, covariance in zip(tracks, means, covariances, strict=True):
            track.mean, track.covariance = mean, covariance

    def _remove_stale_lost(self, removed: list[Any]) -> None:
        for track in self.lost_stracks:
            if self._now - self._seen_at.get(track.track_id, self._now) > self._lost_timeout_s:
                track.mark_removed()
                removed.append(track)

    def record_seen(self) -> None:
        """After an update: the tracks it matched were seen now; forget the times of tracks that are gone."""
        alive = {track.track_id for track in self.tracked_stracks} | {track.track_id for track in self.lost_stracks}
        self._seen_at = {tid: at for tid, at in self._seen_at.items() if tid in alive}
        for track in self.tracked_stracks:
            if track.state == TrackState.Tracked and track.frame_id == self.frame_id:
                self._seen_at[track.track_id] = self._now


class _ByteTrack(_RealTime, BYTETracker):
    _FROZEN_VELOCITIES = (7,)  # state x, y, aspect, height and their velocities: the height's


class _BotSort(_RealTime, BOTSORT):
    _FROZEN_VELOCITIES = (6, 7)  # state x, y, width, height and their velocities: the width's and height's


def merge_overlapping(detections: Detections, groups: np.ndarray) -> Detections:
    """Class-agnostic NMS within each merge group: of boxes overlapping by MERGE_IOU or more, the most
    confident is kept (the detector's NMS already did this within each class)."""
    if len(detections) < 2:
        return detections
    order = np.argsort(-detections.confidence, kind="stable")
    box = detections.xyxy[order].astype(np.float64)
    group = groups[detections.class_id[order]]
    area = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
    top_left = np.maximum(box[:, None, :2], box[None, :, :2])
    bottom_right = np.minimum(box[:, None, 2:], box[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (area[:, None] + area[None, :] - inter)
    suppressed = np.zeros(len(box), dtype=bool)
    for row in range(len(box)):
        if not suppressed[row]:
            later = np.arange(len(box)) > row
            suppressed |= later & (iou[row] >= MERGE_IOU) & (group == group[row])
    return detections[np.sort(order[~suppressed])]


class CameraTracker:
    """ByteTrack or BoT-SORT (with camera-motion compensation, no ReID) for one camera, on capture times,
    with argusd's identities on top: a track that restarts where a lost one was heading keeps its id.

    Returns only the detections matched to an active track, with their identities' ids as track ids.
    """

    def __init__(self, kind: str, fps: float, lost_timeout_s: float, conf: float,
                 merge: np.ndarray | None = None, on_relink: Callable[[], None] | None = None) -> None:
        settings = SimpleNamespace(
            track_high_thresh=max(conf, 0.25),
            track_low_thresh=min(0.1, conf),
            new_track_thresh=max(conf, 0.25),
            track_buffer=NEVER_BY_FRAMES,
            match_thresh=0.8,
            fuse_score=True,
            gmc_method="sparseOptFlow",
            proximity_thresh=0.5,
            appearance_thresh=0.8,
            with_reid=False,
            model="auto",
        )
        self._tracker: _ByteTrack | _BotSort = _BotSort(settings) if kind == "botsort" else _ByteTrack(settings)
        self._tracker.start_clock(1.0 / fps, lost_timeout_s)
        self._needs_image = kind == "botsort"  # its camera-motion compensation; ByteTrack reads boxes only
        self._merge = merge
        self.identities = Identities(lost_timeout_s, on_relink)

    def update(self, detections: Detections, frame: Frame) -> Detections:
        if self._merge is not None:
            detections = merge_overlapping(detections, self._merge)
        self._tracker.advance(frame.captured_at)
        # the frame's full-size BGR image is made only for a tracker that reads it
        rows = self._tracker.update(_TrackerInput(detections), frame.image if self._needs_image else None)
        self._tracker.record_seen()
        if len(rows) == 0:
            return self.identities.assign(Detections(), frame)
        rows = np.asarray(rows, dtype=np.float64)
        source = rows[:, 7].astype(np.int64)
        # The tracker's box is its Kalman estimate; the event reports what the detector saw.
        tracked = Detections(
            detections.xyxy[source],
            detections.confidence[source],
            detections.class_id[source],
            rows[:, 4].astype(np.int64),
        )
        return self.identities.assign(tracked, frame)

    def hold(self, captured_at: float) -> None:
        """A frame skipped by motion gating: what was tracked stays, and is seen now."""
        self._tracker.hold(captured_at)
        self.identities.hold(captured_at)
