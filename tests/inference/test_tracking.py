"""Both tracker kinds keep one id for one moving object and give two objects two ids."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.detections import make_detections

from daemon.core.types import Frame
from daemon.inference.tracking import CameraTracker


@pytest.mark.parametrize("kind", ["bytetrack", "botsort"])
def test_ids_are_stable_and_distinct(kind: str) -> None:
    tracker = CameraTracker(kind, fps=10, lost_timeout_s=1.0, conf=0.25)
    background = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    seen: list[list[int]] = []
    for step in range(20):
        boxes = np.array([[10 + 6 * step, 60, 50 + 6 * step, 160], [280 - 6 * step, 80, 310 - 6 * step, 170]],
                         np.float32)
        found = make_detections(boxes, [0.9, 0.8], [0, 0])
        tracked = tracker.update(found, Frame("cam", step, -1, step / 10, background))
        seen.append(tracked.track_id.tolist())
    steady = seen[2:]
    assert all(len(ids) == 2 for ids in steady), seen
    assert len({tuple(sorted(ids)) for ids in steady}) == 1, "the same two ids throughout"
    assert len(set(steady[0])) == 2


def test_returned_boxes_are_the_detections_not_the_kalman_estimate() -> None:
    tracker = CameraTracker("bytetrack", fps=10, lost_timeout_s=1.0, conf=0.25)
    image = np.zeros((100, 100, 3), np.uint8)
    for step in range(5):
        box = np.array([[10 + 3 * step, 10, 30 + 3 * step, 60]], np.float32)
        tracked = tracker.update(make_detections(box, [0.9], [2]), Frame("cam", step, -1, step / 10, image))
    np.testing.assert_array_equal(tracked.xyxy, box)
    assert tracked.class_id.tolist() == [2]
