"""Both tracker kinds keep one id for one moving object and give two objects two ids."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.detections import make_detections

from daemon.core.types import Frame
from daemon.inference.identity import Identities
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


def _walk(tracker: CameraTracker, times: list[float], speed: float = 100.0, y: float = 40.0,
          image: np.ndarray | None = None) -> list[list[int]]:
    """A 40x100 box moving right at ``speed`` px/s, detected at ``times``; the ids tracked at each."""
    image = image if image is not None else np.full((240, 640, 3), 90, np.uint8)
    seen = []
    for seq, t in enumerate(times):
        x = 10 + speed * t
        found = make_detections(np.array([[x, y, x + 40, y + 100]], np.float32), [0.9], [0])
        seen.append(tracker.update(found, Frame("cam", seq, -1, t, image)).track_id.tolist())
    return seen


@pytest.mark.parametrize("kind", ["bytetrack", "botsort"])
def test_irregular_frame_intervals_keep_one_id(kind: str) -> None:
    """A camera configured at 30 fps analysed at an irregular 2 to 10 f/s: the motion model steps by the time
    between frames, so a fast walker keeps its id."""
    times = [round(sum([0.1, 0.5, 0.2, 0.4, 0.1][k % 5] for k in range(i)), 3) for i in range(14)]
    seen = _walk(CameraTracker(kind, fps=30, lost_timeout_s=1.0, conf=0.25), times, speed=150.0)
    assert {tuple(ids) for ids in seen[1:]} == {(1,)}, seen


@pytest.mark.parametrize("kind", ["bytetrack", "botsort"])
def test_a_lost_track_lasts_lost_timeout_s_of_capture_time_not_of_frames(kind: str) -> None:
    """At 5 f/s on a camera configured at 30 fps, an object unseen for 1.6 s (8 frames) with a 1 s timeout is a
    new object (frame counting at the configured fps would keep it for 30 frames, 6 s), and one unseen for
    0.6 s keeps its id."""
    tracker = CameraTracker(kind, fps=30, lost_timeout_s=1.0, conf=0.25)
    empty = np.full((240, 640, 3), 90, np.uint8)
    box = np.array([[300, 40, 340, 140]], np.float32)
    ids = []
    t = 0.0
    for present in [True] * 4 + [False] * 3 + [True] * 3 + [False] * 8 + [True] * 3:
        found = make_detections(box, [0.9], [0]) if present else make_detections(np.zeros((0, 4)), [], [])
        ids.append(tracker.update(found, Frame("cam", round(t * 5), -1, t, empty)).track_id.tolist())
        t += 0.2
    assert ids[1:4] == ids[7:10] == [[1]] * 3, ids
    assert ids[-2:] == [[2]] * 2, ids


def test_overlapping_boxes_of_merged_classes_are_one_object_whose_class_follows_the_boxes() -> None:
    merged = CameraTracker("bytetrack", fps=10, lost_timeout_s=1.0, conf=0.25, merge=np.array([0, 0]))
    apart = CameraTracker("bytetrack", fps=10, lost_timeout_s=1.0, conf=0.25)
    image = np.zeros((240, 320, 3), np.uint8)
    for step in range(6):
        boxes = np.array([[100 + 2 * step, 50, 140 + 2 * step, 150], [101 + 2 * step, 52, 141 + 2 * step, 151]],
                         np.float32)
        confidences = [0.8, 0.6] if step < 3 else [0.5, 0.7]  # Normal, then Fall wins
        found = make_detections(boxes, confidences, [0, 1])
        frame = Frame("cam", step, -1, step / 10, image)
        one, two = merged.update(found, frame), apart.update(found, frame)
        if step >= 1:
            assert one.track_id.tolist() == [1] and one.class_id.tolist() == [0 if step < 3 else 1]
            assert sorted(two.track_id.tolist()) == [1, 2], "without merging: one track per class"


def _person_image(colour: tuple[int, int, int], x: float) -> np.ndarray:
    image = np.full((240, 640, 3), 90, np.uint8)
    image[40:140, int(x):int(x) + 40] = colour
    return image


def _identity_ids(identities: Identities, steps: list[tuple[float, int, float, tuple[int, int, int]]]) -> list[int]:
    """Feed tracker output (time, tracker id, x, colour) one detection a frame; the identity ids."""
    ids = []
    for seq, (t, track_id, x, colour) in enumerate(steps):
        found = make_detections(np.array([[x, 40, x + 40, 140]], np.float32), [0.9], [0], [track_id])
        ids += identities.assign(found, Frame("cam", seq, -1, t, _person_image(colour, x))).track_id.tolist()
    return ids


RED, BLUE = (30, 30, 200), (200, 60, 20)


def test_a_new_track_where_a_lost_one_was_heading_keeps_its_identity() -> None:
    """Walking right at 100 px/s, hidden for 1.2 s: the tracker's new track 2 shows where track 1 was heading."""
    before = [(t / 5, 1, 100 + 20 * t, RED) for t in range(5)]
    after = [(1.0 + 1.2 + t / 5, 2, 100 + 100 * (2.2 + t / 5), RED) for t in range(3)]
    relinks = []
    identities = Identities(lost_timeout_s=2.0, on_relink=lambda: relinks.append(1))
    assert _identity_ids(identities, before + after) == [1] * 8
    assert identities.relinked == len(relinks) == 1, "counted (argusd_tracks_relinked_total)"


def test_no_relink_after_the_lost_timeout_elsewhere_or_for_someone_who_looks_different() -> None:
    before = [(t / 5, 1, 100 + 20 * t, RED) for t in range(5)]
    late = [(0.8 + 2.5 + t / 5, 2, 100 + 100 * (3.3 + t / 5), RED) for t in range(2)]
    assert _identity_ids(Identities(lost_timeout_s=2.0), before + late) == [1] * 5 + [2] * 2
    backwards = [(0.8 + 0.6 + t / 5, 2, 20 + 10 * t, RED) for t in range(2)]  # not where it was heading
    assert _identity_ids(Identities(lost_timeout_s=2.0), before + backwards) == [1] * 5 + [2] * 2
    other = [(0.8 + 0.6 + t / 5, 2, 100 + 100 * (1.4 + t / 5), BLUE) for t in range(2)]
    assert _identity_ids(Identities(lost_timeout_s=2.0), before + other) == [1] * 5 + [2] * 2


def test_someone_appearing_where_a_person_walked_out_of_the_picture_is_someone_else() -> None:
    """Walking right at 100 px/s to the right edge (x 560-600 of 640) and gone: 0.8 s later a look-alike shows
    at the same place, within the lost timeout and the motion gate, but the lost one is predicted off the
    picture by then (the there-and-back scene's second walker)."""
    out = [(t / 5, 1, 480 + 20 * t, RED) for t in range(5)]
    back = [(0.8 + 0.8 + t / 5, 2, 560 - 20 * t, RED) for t in range(3)]
    assert _identity_ids(Identities(lost_timeout_s=2.0), out + back) == [1] * 5 + [2] * 3


def test_a_stationary_object_the_detector_flickers_on_stays_one_identity() -> None:
    steps = [(t / 5, 1 + t // 4, 300.0, RED) for t in range(20) if t % 4 != 3]  # a new track after each gap
    assert set(_identity_ids(Identities(lost_timeout_s=1.0), steps)) == {1}
