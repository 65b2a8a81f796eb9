"""Motion gating: the gate on its own (noise and light are not motion, a walker is), the luma copy it reads
from GStreamer-style I420 planes, and the inference worker with the real detector on a scene where a person
walks in and stands still."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import cv2
import numpy as np
import pytest

from daemon.config.models import CameraConfig, DetectorConfig, MotionConfig, TrackerConfig
from daemon.core.events import Event, EventType
from daemon.core.types import Detections, Frame
from daemon.inference.batcher import FreshestFrameBatcher
from daemon.inference.classify import CropClassifiers
from daemon.inference.motion import MotionGate
from daemon.inference.worker import InferenceWorker
from daemon.service.metrics import Metrics
from plugins.interfaces import Detector
from plugins.registry import load_detector
from tests.support import scenes
from tests.support.assets import DETECTOR, require_asset
from tests.support.frames import padded_i420

GROUND = 262  # y of the walker's feet, pixels
KEEPALIVE_S = 3.0


def street(seconds: float, walkers: list[scenes.Walker]) -> list[np.ndarray]:
    """The scene at 5 frames per second (every other frame of scenes.FPS)."""
    return list(scenes.frames(walkers, scenes.frame_times(seconds)))[:: scenes.FPS // 5]


def gate_decisions(gate: MotionGate, images: list[np.ndarray]) -> list[bool]:
    return [gate.wants_detection(Frame("cam", seq, -1, seq / 5, image)) for seq, image in enumerate(images)]


def test_the_small_grey_copy_of_padded_i420_planes_is_the_pictures_luma() -> None:
    image = street(0.2, [])[0]
    from_planes = Frame("cam", 0, -1, 0.0, yuv=padded_i420(image)).small_grey(96)
    from_bgr = Frame("cam", 0, -1, 0.0, image).small_grey(96)
    assert from_planes.shape == from_bgr.shape == (45, 106)  # 640x272 shrunk 6 times
    # the Y plane is limited range (16-235), BGR-to-grey full range
    assert np.abs(from_planes.astype(np.float32) - (16 + from_bgr.astype(np.float32) * 219 / 255)).max() <= 3


def test_noise_and_a_change_of_light_are_not_motion_a_walker_is() -> None:
    rng = np.random.default_rng(0)
    still = street(0.2, [])[0].astype(np.int16)
    images = [np.clip(still + rng.normal(0, 4, still.shape) + (20 if seq >= 10 else 0), 0, 255).astype(np.uint8)
              for seq in range(20)]  # sensor noise; the whole picture 20 levels brighter after 2 s
    config = MotionConfig(enabled=True, still_s=1.0, keepalive_s=KEEPALIVE_S)
    decisions = gate_decisions(MotionGate(config), images)
    assert decisions == [True] * 6 + [False] * 14, "detects for still_s after the first frame, then skips"

    # a walker crosses from 2 s to 6 s, then is gone: motion until the frame LAG_S later (6.6 s)
    walker = [scenes.Walker(0, scenes.walk((100, GROUND), (400, GROUND), 2.0, 6.0))]
    decisions = gate_decisions(MotionGate(config), street(12.0, walker))
    detected_at = [seq / 5 for seq, wanted in enumerate(decisions) if wanted]
    expected = [seq / 5 for seq in [*range(6), *range(10, 39), 53]]  # ... and still_s after; keepalive at 10.6 s
    assert detected_at == expected


class CountingDetector:
    """The real detector, counting the frames it is given."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.names = detector.names
        self.model_names = detector.model_names
        self.device = detector.device
        self.input_size = detector.input_size
        self.runtime = detector.runtime
        self.frames = 0

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        self.frames += len(images)
        return self.detector.detect(images)


class ListSink:
    needs_images = False

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, camera: CameraConfig, events: list[Event]) -> None:
        self.events.extend(events)


@pytest.fixture(scope="module")
def detector() -> Detector:
    return load_detector(DetectorConfig(model=str(require_asset(DETECTOR)), imgsz=640, device="cpu",
                                        labels={"Normal": "person"}))


def test_a_person_standing_still_stays_one_object_rechecked_every_keepalive(detector: Detector) -> None:
    # the street is empty for 4 s, then a person walks in (4-6 s) and stands still to the end (16 s)
    walker = scenes.Walker(0, scenes.then_stand(scenes.walk((120, GROUND), (300, GROUND), 4.0, 6.0), 16.0, 6.0))
    images = street(16.0, [walker])
    camera = CameraConfig(id="still", url="file:///scene.mp4", fps=5, realtime=False,
                          motion=MotionConfig(enabled=True, keepalive_s=KEEPALIVE_S))
    counting, sink, metrics = CountingDetector(detector), ListSink(), Metrics()
    metrics.add_camera(camera.id, camera.fps)
    worker = InferenceWorker(counting, FreshestFrameBatcher(8, 0.0),
                             TrackerConfig(confirm_frames=3, lost_timeout_s=2.5), 0.25, CropClassifiers([]), sink,
                             metrics)
    worker.add_camera(camera)
    detected_at = []
    for seq, image in enumerate(images):
        before = counting.frames
        worker.analyse([Frame(camera.id, seq, -1, seq / 5, yuv=padded_i420(image))])
        if counting.frames > before:
            detected_at.append(seq / 5)
    assert [e.type for e in sink.events] == [EventType.NEW], "no end while the person stands still"
    worker.end_camera(camera.id, removed=False)
    worker.start()
    worker.stop()

    assert [t for t in detected_at if t < 4.0] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], "empty street: still_s, then skips"
    last = (len(images) - 1) / 5
    frame_interval = 1 / camera.fps
    assert all(b - a <= KEEPALIVE_S + frame_interval for a, b in itertools.pairwise([*detected_at, last])), \
        f"never longer than keepalive_s without a detection: {detected_at}"
    assert len(detected_at) <= len(images) * 0.45, detected_at
    skipped = metrics.registry.get_sample_value("argusd_frames_skipped_total",
                                                {"camera": camera.id, "reason": "no_motion"})
    assert skipped == len(images) - len(detected_at) == worker.camera_counts(camera.id)["frames_skipped"]
    assert metrics.registry.get_sample_value("argusd_frames_analysed_total", {"camera": camera.id}) \
        == len(detected_at)

    new, end = sink.events
    assert end.type == EventType.END and end.object_id == new.object_id
    assert end.frame_seq == round(detected_at[-1] * 5), "the keepalive detections still see the person"
    assert end.duration_s == pytest.approx(last - new.started_at, abs=0.01), "kept up to the last frame"
