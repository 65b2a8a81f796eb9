"""The per-frame path on its own: a scripted detector, the real batcher, tracker, lifecycle and rules, and a
list as the event sink (no GStreamer, no Redis, no HTTP)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence

import numpy as np
import pytest

from daemon.config.models import CameraConfig, LineConfig, TrackerConfig
from daemon.core.events import Event, EventType
from daemon.core.types import Detections, Frame
from daemon.inference.batcher import FreshestFrameBatcher
from daemon.inference.classes import check_camera_classes, merge_groups
from daemon.inference.classify import CropClassifiers
from daemon.inference.worker import InferenceWorker
from daemon.service.metrics import Metrics
from plugins.interfaces import Detector, PluginError

WIDTH, HEIGHT = 200, 100


class WalkerDetector:
    """One person whose box moves 8 px right per frame; the frame's step is written in its first pixel."""

    names = {0: "person", 1: "person"}  # detector.labels renamed both model classes
    model_names = {0: "Normal", 1: "Fall"}
    device = "cpu"
    input_size = None  # it reads the step from the frame's first pixel: frames must come at full size
    runtime = "torch"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        self.batches.append(len(images))
        found = []
        for image in images:
            x = 10.0 + 8.0 * int(image[0, 0, 0])
            found.append(Detections.from_arrays(np.array([[x, 30, x + 20, 90]]), np.array([0.9]), np.array([0])))
        return found


class ListSink:
    needs_images = False

    def __init__(self) -> None:
        self.events: list[tuple[str, Event]] = []

    def emit(self, camera: CameraConfig, events: list[Event]) -> None:
        self.events.extend((camera.id, event) for event in events)


def frame(camera: str, step: int, at: float, clock_offset_s: float = 0.0) -> Frame:
    """A frame that left GStreamer at ``at``; its captured_at is on a camera clock ``clock_offset_s`` off."""
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[0, 0, 0] = step
    return Frame(camera, step, -1, at + clock_offset_s, image, host_time=at)


def run_walk(cameras: list[CameraConfig], steps: int = 20,
             clock_offset_s: float = 0.0) -> tuple[ListSink, WalkerDetector, Metrics]:
    detector, sink, metrics = WalkerDetector(), ListSink(), Metrics()
    assert isinstance(detector, Detector)
    batcher = FreshestFrameBatcher(8, 0.01)
    worker = InferenceWorker(detector, batcher, TrackerConfig(confirm_frames=3, lost_timeout_s=1.0), 0.25,
                             CropClassifiers([]), sink, metrics)
    start = time.time()
    recordings = {camera.id: deque(frame(camera.id, step, start + step / 10, clock_offset_s) for step in range(steps))
                  for camera in cameras}
    for camera in cameras:
        worker.add_camera(camera)
        # a recording analysed offline: every frame in order, each pulled when inference wants the next
        batcher.register(camera.id, lambda _timeout, frames=recordings[camera.id]: frames.popleft() if frames else None)
    worker.start()
    deadline = time.monotonic() + 10
    while any(recordings.values()) and time.monotonic() < deadline:
        time.sleep(0.01)
    batcher.close()
    worker.stop()
    return sink, detector, metrics


DOOR = LineConfig(name="door", points=((0.5, 0.0), (0.5, 1.0)), a_to_b="in", b_to_a="out")


def test_a_walker_gives_new_one_crossing_and_end_per_camera_batched_across_cameras() -> None:
    cameras = [CameraConfig(id=f"cam{i}", url="test://ball", fps=10, lines=[DOOR]) for i in range(3)]
    sink, detector, metrics = run_walk(cameras)
    for camera in ("cam0", "cam1", "cam2"):
        events = [event for source, event in sink.events if source == camera]
        assert [e.type for e in events] == [EventType.NEW, EventType.LINE_CROSS, EventType.END], events
        crossing = events[1]
        assert (crossing.rule, crossing.direction, crossing.direction_name) == ("door", "a_to_b", "in")  # left (side A) to right
        assert len({e.object_id for e in events}) == 1
        assert events[-1].story is not None and [c.line for c in events[-1].story.crossings] == ["door"]
        assert metrics.registry.get_sample_value("argusd_frames_analysed_total", {"camera": camera}) == 20
    assert max(detector.batches) > 1, f"frames of several cameras share a batch: {detector.batches}"


@pytest.mark.parametrize("clock_offset_s", [-7200.0, 30.0])
def test_a_camera_on_its_own_clock_gives_its_time_to_events_and_keeps_timeouts_on_it(clock_offset_s: float) -> None:
    """`clock: camera`: events carry the camera's time, lost-track timeouts run on the camera's clock (an
    object of a camera two hours behind is not ended at once, nor one 30 s ahead kept 30 s too long), and
    staleness and latency are measured on the host's."""
    camera = CameraConfig(id="cam", url="rtsp://127.0.0.1:8554/cam", fps=10, lines=[DOOR], clock="camera")
    started = time.time()
    sink, _, metrics = run_walk([camera], clock_offset_s=clock_offset_s)
    events = [event for _, event in sink.events]
    assert [e.type for e in events] == [EventType.NEW, EventType.LINE_CROSS, EventType.END], events
    for event in events[:2]:
        assert abs(event.captured_at - (started + clock_offset_s)) < 5, (event.captured_at, started)
    last_analysed = metrics.registry.get_sample_value("argusd_camera_last_analysed_timestamp_seconds",
                                                      {"camera": "cam"})
    assert abs(last_analysed - started) < 5
    slowest = metrics.registry.get_sample_value("argusd_capture_to_analysed_seconds_sum")
    assert slowest is not None and slowest < 60  # not the two hours between the clocks


def test_a_camera_reports_only_its_classes_by_label_or_model_name() -> None:
    walker = WalkerDetector()
    check_camera_classes(walker, [CameraConfig(id="a", url="test://ball", classes=["normal"])])
    with pytest.raises(PluginError, match=r"cameras\[a\].classes: car not among the detector's classes"):
        check_camera_classes(walker, [CameraConfig(id="a", url="test://ball", classes=["car"])])
    sink, _, _ = run_walk([CameraConfig(id="fallen-only", url="test://ball", fps=10, classes=["Fall"]),
                           CameraConfig(id="normal", url="test://ball", fps=10, classes=["Normal"])], steps=6)
    assert {camera for camera, _ in sink.events} == {"normal"}


def test_merge_classes_groups_by_label_or_model_name_and_names_an_unknown_class() -> None:
    walker = WalkerDetector()
    assert merge_groups(walker, True).tolist() == [0, 0]
    assert merge_groups(walker, False) is None
    assert merge_groups(walker, [["normal", "Fall"]]).tolist() == [0, 0]
    assert merge_groups(walker, [["Normal"]]).tolist() == [0, 2], "a class in no group is its own"
    with pytest.raises(PluginError, match=r"tracker.merge_classes: truck not among the detector's classes"):
        merge_groups(walker, [["person", "truck"]])


def test_frames_of_a_removed_camera_are_not_analysed_and_its_objects_end() -> None:
    detector, sink, metrics = WalkerDetector(), ListSink(), Metrics()
    batcher = FreshestFrameBatcher(8, 0.0)
    worker = InferenceWorker(detector, batcher, TrackerConfig(confirm_frames=1), 0.25, CropClassifiers([]), sink,
                             metrics)
    worker.add_camera(CameraConfig(id="gone", url="test://ball"))
    now = time.time()
    worker.analyse([frame("gone", 0, now)])
    assert [e.type for _, e in sink.events] == [EventType.NEW]
    worker.end_camera("gone", removed=True)
    worker.start()
    deadline = time.monotonic() + 5
    while not worker.idle and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.analyse([frame("gone", 1, now + 0.1)])  # a frame still in flight when the reload removed it
    worker.stop()
    assert [e.type for _, e in sink.events] == [EventType.NEW, EventType.END]
    assert metrics.registry.get_sample_value("argusd_frames_analysed_total", {"camera": "gone"}) == 1
