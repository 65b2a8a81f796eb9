"""Detections for tests, from plain lists."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from daemon.core.types import Detections


def make_detections(boxes: Sequence | np.ndarray, confidences: Sequence[float] | np.ndarray,
                    class_ids: Sequence[int] | np.ndarray, track_ids: Sequence[int] | np.ndarray | None = None
                    ) -> Detections:
    """One row per box (pixel x1, y1, x2, y2) with its confidence and class; tracked when ``track_ids``
    are given, else untracked (track id -1), as the detector hands them over."""
    detections = Detections.from_arrays(np.asarray(boxes), np.asarray(confidences), np.asarray(class_ids))
    return detections if track_ids is None else detections.with_tracks(np.asarray(track_ids))
