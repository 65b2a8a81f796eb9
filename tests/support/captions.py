"""Helpers shared by tests/test_captions_*.py: events with a best frame."""

from __future__ import annotations

import numpy as np

from daemon.analytics.lifecycle import BestFrame, Event, iso_utc
from daemon.core.types import Detections

NAMES = {0: "person", 1: "car"}
NOW = 1_800_000_000.0


def best_frame(image: np.ndarray | None = None, boxes: list[list[float]] | None = None,
               classes: list[int] | None = None, row: int = 0) -> BestFrame:
    """A 240x320 frame (a red block where the object is, unless ``image`` is given) and its detections."""
    boxes = boxes or [[100, 40, 180, 200]]
    classes = classes or [0] * len(boxes)
    if image is None:
        image = np.full((240, 320, 3), 90, np.uint8)
        x1, y1, x2, y2 = (int(v) for v in boxes[row])
        image[y1:y2, x1:x2] = (0, 0, 220)  # BGR red
    detections = Detections.from_arrays(np.array(boxes), np.full(len(boxes), 0.8), np.array(classes)).with_tracks(
        np.arange(1, len(boxes) + 1))
    return BestFrame(image, detections, row, NOW)


def event(kind: str = "new", *, step: int = 0, object_id: str = "obj1", label: str = "person",
          at: float = NOW, duration_s: float = 0.0, frame: BestFrame | None = None, **extra) -> Event:
    return Event(
        event_id=f"{object_id}-{step}", object_id=object_id, type=kind, camera="door", ts=iso_utc(at),
        label=label, class_id=0 if label == "person" else 1, confidence=0.8, bbox=[0.3, 0.2, 0.6, 0.8],
        track_id=1, frame_seq=step, captured_at=at, started_at=iso_utc(at - duration_s), duration_s=duration_s,
        best_confidence=0.8, best_frame=frame, **extra,
    )
