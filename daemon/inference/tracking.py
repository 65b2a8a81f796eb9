"""Per-camera multi-object tracking with ultralytics' ByteTrack, on struct-of-arrays detections."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from ultralytics.trackers.bot_sort import BOTSORT
from ultralytics.trackers.byte_tracker import BYTETracker

from daemon.core.types import Detections, Frame


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


class CameraTracker:
    """ByteTrack or BoT-SORT (with camera-motion compensation, no ReID) for one camera.

    Returns only the detections matched to an active track, with their track ids.
    """

    def __init__(self, kind: str, fps: float, lost_timeout_s: float, conf: float) -> None:
        settings = SimpleNamespace(
            track_high_thresh=max(conf, 0.25),
            track_low_thresh=min(0.1, conf),
            new_track_thresh=max(conf, 0.25),
            track_buffer=max(1, round(fps * lost_timeout_s)),
            match_thresh=0.8,
            fuse_score=True,
            gmc_method="sparseOptFlow",
            proximity_thresh=0.5,
            appearance_thresh=0.8,
            with_reid=False,
            model="auto",
        )
        self._tracker = BOTSORT(settings) if kind == "botsort" else BYTETracker(settings)
        self._needs_image = kind == "botsort"  # its camera-motion compensation; ByteTrack reads boxes only

    def update(self, detections: Detections, frame: Frame) -> Detections:
        # the frame's full-size BGR image is made only for a tracker that reads it
        rows = self._tracker.update(_TrackerInput(detections), frame.image if self._needs_image else None)
        if len(rows) == 0:
            return Detections()
        rows = np.asarray(rows, dtype=np.float64)
        source = rows[:, 7].astype(np.int64)
        # The tracker's box is its Kalman estimate; the event reports what the detector saw.
        return Detections(
            detections.xyxy[source],
            detections.confidence[source],
            detections.class_id[source],
            rows[:, 4].astype(np.int64),
        )
