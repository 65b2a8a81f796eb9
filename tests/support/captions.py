"""Helpers shared by the caption tests: the class names and a best frame with its detections."""

from __future__ import annotations

import numpy as np

from tests.support.detections import make_detections
from tests.support.events import NOW

from daemon.core.events import BestFrame

NAMES = {0: "person", 1: "car"}


def best_frame(image: np.ndarray | None = None, boxes: list[list[float]] | None = None,
               classes: list[int] | None = None, row: int = 0) -> BestFrame:
    """A 240x320 frame (a red block where the object is, unless ``image`` is given) and its detections."""
    boxes = boxes or [[100, 40, 180, 200]]
    classes = classes or [0] * len(boxes)
    if image is None:
        image = np.full((240, 320, 3), 90, np.uint8)
        x1, y1, x2, y2 = (int(v) for v in boxes[row])
        image[y1:y2, x1:x2] = (0, 0, 220)  # BGR red
    detections = make_detections(boxes, np.full(len(boxes), 0.8), classes, np.arange(1, len(boxes) + 1))
    return BestFrame(image, detections, row, NOW)
