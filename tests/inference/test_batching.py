"""Cross-camera batching: multi-frame batches, and no camera starves when the model cannot keep up."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from daemon.config.models import CameraConfig, DetectorConfig, TrackerConfig
from daemon.core.events import Event
from daemon.core.types import Frame
from daemon.inference.batcher import FreshestFrameBatcher
from daemon.inference.classify import CropClassifiers
from daemon.inference.worker import InferenceWorker
from daemon.service.metrics import Metrics
from daemon.sources.camera import CameraSource
from plugins.registry import load_detector
from tests.support.assets import DETECTOR, require_asset


class DiscardEvents:
    needs_images = False

    def emit(self, camera: CameraConfig, events: list[Event]) -> None:
        pass


def run_batch_path(fps: list[float], max_batch: int, seconds: float) -> tuple[dict[str, int], float, float]:
    """The batch path alone (test-pattern cameras, the batcher, the inference worker with the real detector),
    no Redis or HTTP: frames analysed per camera over ``seconds`` of steady state, the mean batch size, the
    batches run."""
    cameras = [CameraConfig(id=f"cam{i}", url="test://ball", fps=f) for i, f in enumerate(fps)]
    metrics = Metrics()
    batcher = FreshestFrameBatcher(max_batch, 0.05, lambda _camera: None)
    detector = load_detector(DetectorConfig(model=str(require_asset(DETECTOR)), imgsz=320, device="cpu"))
    worker = InferenceWorker(detector, batcher, TrackerConfig(), 0.25, CropClassifiers([]), DiscardEvents(), metrics)
    sources = [CameraSource(camera, batcher.put) for camera in cameras]
    for camera, source in zip(cameras, sources, strict=True):
        worker.add_camera(camera)
        batcher.register(camera.id)
        source.start()
    worker.start()
    registry = metrics.registry
    try:
        time.sleep(2)  # let every camera reach steady state
        before = {c.id: worker.camera_counts(c.id)["frames_analysed"] for c in cameras}
        batches0 = registry.get_sample_value("argusd_batch_size_count") or 0
        frames0 = registry.get_sample_value("argusd_batch_size_sum") or 0
        time.sleep(seconds)
        after = {c.id: worker.camera_counts(c.id)["frames_analysed"] for c in cameras}
        batches = registry.get_sample_value("argusd_batch_size_count") - batches0
        frames = registry.get_sample_value("argusd_batch_size_sum") - frames0
    finally:
        batcher.close()
        for source in sources:
            source.stop()
        worker.stop()
    return {camera: after[camera] - before[camera] for camera in after}, frames / batches, batches


@pytest.mark.parametrize("max_batch", [8, 2])
def test_equal_cameras_get_equal_share_when_the_model_cannot_keep_up(max_batch: int) -> None:
    analysed, mean_batch, _ = run_batch_path([25, 25, 25, 25], max_batch, 8)
    rates = np.array(list(analysed.values())) / 8
    assert rates.sum() < 4 * 25 * 0.9, f"the model keeps up ({rates}); the test needs saturation"
    assert rates.max() <= 1.1 * rates.min(), f"per-camera analysed fps {rates}"
    assert mean_batch > 1.5, mean_batch


def test_different_rates_form_batches_and_slow_cameras_are_never_starved() -> None:
    analysed, mean_batch, batches = run_batch_path([1, 3, 6, 25], 8, 8)
    assert mean_batch > 1.2, mean_batch
    assert analysed["cam0"] >= 7, analysed  # 1 fps for 8 s: every frame analysed
    # Every batch takes each camera that has a frame: cam1 gets each of its frames, or, when a batch outlasts
    # its 1/3 s frame interval (a slow CPU), a frame in (nearly) every batch.
    assert analysed["cam1"] >= 0.8 * min(3 * 8, batches), (analysed, batches)


def frame(camera: str, seq: int) -> Frame:
    return Frame(camera, seq, seq, time.time(), np.zeros((2, 2, 3), np.uint8))


def test_batcher_keeps_the_freshest_frame_and_counts_what_it_replaced() -> None:
    superseded: list[str] = []
    batcher = FreshestFrameBatcher(4, 0.0, superseded.append)
    batcher.register("a")
    for seq in range(3):
        batcher.put(frame("a", seq))
    assert [f.seq for f in batcher.next_batch(0.1)] == [2]
    assert superseded == ["a", "a"]


def test_batcher_rotates_cameras_when_the_batch_is_smaller_than_the_fleet() -> None:
    batcher = FreshestFrameBatcher(2, 0.0, lambda _: None)
    cameras = ["a", "b", "c"]
    for camera in cameras:
        batcher.register(camera)
    served = []
    for round_ in range(6):
        for camera in cameras:
            batcher.put(frame(camera, round_))
        served += [f.camera_id for f in batcher.next_batch(0.1)]
    assert sorted(served.count(c) for c in cameras) == [4, 4, 4]


def test_batcher_waits_for_other_cameras_but_not_longer_than_the_deadline() -> None:
    batcher = FreshestFrameBatcher(4, 0.2, lambda _: None)
    for camera in ("a", "b"):
        batcher.register(camera)
    threading.Timer(0.05, lambda: batcher.put(frame("b", 0))).start()
    batcher.put(frame("a", 0))
    assert sorted(f.camera_id for f in batcher.next_batch(1)) == ["a", "b"]
    batcher.put(frame("a", 1))
    started = time.monotonic()
    assert [f.camera_id for f in batcher.next_batch(1)] == ["a"]
    assert 0.15 < time.monotonic() - started < 0.5
    batcher.observe_inference(0.02)
    assert batcher.wait_s == pytest.approx(0.01)


def _put_in_background(batcher: FreshestFrameBatcher, item: Frame) -> threading.Thread:
    thread = threading.Thread(target=batcher.put, args=(item,), daemon=True)
    thread.start()
    return thread


def test_a_lossless_camera_waits_for_its_slot_instead_of_superseding() -> None:
    superseded: list[str] = []
    batcher = FreshestFrameBatcher(4, 0.0, superseded.append)
    batcher.register("recording", lossless=True)
    batcher.put(frame("recording", 0))
    waiting = _put_in_background(batcher, frame("recording", 1))
    waiting.join(0.3)
    assert waiting.is_alive(), "the second frame waits while the first is unanalysed"
    assert [f.seq for f in batcher.next_batch(1)] == [0]
    waiting.join(2)
    assert not waiting.is_alive()
    assert [f.seq for f in batcher.next_batch(1)] == [1]
    assert superseded == []

    batcher.put(frame("recording", 2))
    released_by_removal = _put_in_background(batcher, frame("recording", 3))
    batcher.unregister("recording")  # a reload removed the camera: its streaming thread must not hang
    released_by_removal.join(2)
    assert not released_by_removal.is_alive()

    batcher.register("recording", lossless=True)
    batcher.put(frame("recording", 4))
    released_by_close = _put_in_background(batcher, frame("recording", 5))
    batcher.close()  # the daemon is stopping
    released_by_close.join(2)
    assert not released_by_close.is_alive()
