"""A file source decodes real footage to frames of the right shape, colour order and content."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np

from tests.support.assets import BIKES, require_asset
from tests.support.cameras import pull_frames
from tests.support.polling import wait_for
from daemon.config.models import CameraConfig
from daemon.sources.camera import CameraSource
from daemon.sources.pipeline import FrameCounts
from daemon.sources.supervisor import CameraState
from daemon.core.types import Frame

FRAME_NS = 40_000_000  # bikes.mp4 is 25 fps


def _opencv_frames() -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(require_asset(BIKES)))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def _run_sources(configs: list[CameraConfig]) -> dict[str, list[Frame]]:
    received: dict[str, list[Frame]] = {c.id: [] for c in configs}
    lock = threading.Lock()

    def keep(frame: Frame) -> None:
        with lock:
            received[frame.camera_id].append(frame)

    sources = [CameraSource(c) for c in configs]
    for source in sources:
        pull_frames(source, keep)
        source.start()
    wait_for(lambda: all(s.done for s in sources), 30, "every file to finish", interval=0.1,
             details=lambda: [(s.camera_id, s.state, s.last_error) for s in sources])
    for source in sources:
        assert source.state == CameraState.FINISHED, (source.camera_id, source.state, source.last_error)
        source.stop()
    return received


def test_file_source_matches_opencv_decode() -> None:
    url = f"file://{require_asset(BIKES)}"
    reference = _opencv_frames()
    received = _run_sources([
        CameraConfig(id="full", url=url, fps=25, realtime=False),  # lossless: every frame is compared
        CameraConfig(id="padded", url=url, fps=5, width=426),  # 426*3 bytes rows are padded to 1280
    ])

    full = received["full"]
    origin = full[0].pts_ns  # the clip's first PTS is not 0 (B-frame reordering delay)

    def reference_for(frame: Frame) -> np.ndarray:
        return reference[round((frame.pts_ns - origin) / FRAME_NS)]

    assert len(full) >= 0.95 * len(reference)
    assert [f.seq for f in full] == list(range(len(full)))
    compared = 0
    for frame in full:
        assert frame.image.shape == reference[0].shape == (272, 640, 3)
        assert frame.image.dtype == np.uint8
        expected = reference_for(frame).astype(np.int16)
        error = np.abs(frame.image.astype(np.int16) - expected).mean()
        swapped = np.abs(frame.image[:, :, ::-1].astype(np.int16) - expected).mean()
        assert error < 3, f"frame {frame.seq}: mean abs difference {error:.1f} from OpenCV"
        assert swapped > 2 * error, "colour order looks like RGB, not BGR"
        compared += 1
    assert compared > 200

    padded = received["padded"]
    assert 40 <= len(padded) <= 55, "5 fps of a 10 s clip"
    for frame in padded:
        height, width, channels = frame.image.shape
        assert (width, channels) == (426, 3) and abs(height - 181) <= 1
        expected = cv2.resize(reference_for(frame), (width, height), interpolation=cv2.INTER_AREA)
        error = np.abs(frame.image.astype(np.int16) - expected.astype(np.int16)).mean()
        assert error < 10, f"scaled frame {frame.seq}: mean abs difference {error:.1f}"
    timestamps = [f.pts_ns for f in padded]
    assert all(b - a >= 160_000_000 for a, b in zip(timestamps, timestamps[1:])), "fps limit applied"
    assert all(f.captured_at > 0 for f in padded)


def test_an_offline_file_hands_over_every_frame_at_the_consumers_pace_on_its_own_timeline(tmp_path) -> None:
    """`realtime: false`: a consumer slower than the clip loses nothing, is not taken for a stall, and the
    frames' times follow the clip (0.1 s apart at 10 fps) rather than the slow wall clock."""
    from tests.support import scenes  # a 2 s clip at 10 fps: 20 frames

    clip = scenes.render([], 2.0, tmp_path / "empty-street.mp4")
    received: list[Frame] = []

    def slow_consumer(frame: Frame) -> None:
        received.append(frame)
        time.sleep(0.3)  # twice the watchdog: a realtime camera this slow would be reported stalled

    config = CameraConfig(id="recording", url=f"file://{clip}", fps=10, realtime=False, watchdog_s=0.15)
    source = CameraSource(config)
    pull_frames(source, slow_consumer)
    source.start()
    wait_for(lambda: source.done, 30, "the file to finish", interval=0.1,
             details=lambda: (source.state, source.last_error))
    assert source.state == CameraState.FINISHED and source.stalls == 0, (source.state, source.last_error)
    source.stop()
    assert [f.seq for f in received] == list(range(20))
    steps = np.diff([f.captured_at for f in received])
    np.testing.assert_allclose(steps, 0.1, atol=1e-3)


def test_frames_inference_does_not_pull_never_enter_python_and_are_counted_as_superseded() -> None:
    """A live camera at 30 fps pulled every 0.2 s: the appsink keeps only the newest frame, the pulled ones
    skip the rest (their sequence numbers jump), and the replaced ones are counted, not lost silently."""
    counted: list[FrameCounts] = []
    source = CameraSource(CameraConfig(id="live", url="test://ball", fps=30, width=160),
                          on_counts=lambda _camera, counts: counted.append(counts))
    source.start()
    try:
        wait_for(lambda: source.state == CameraState.STREAMING, 10, "the camera to stream")
        pulled = []
        for _ in range(10):
            time.sleep(0.2)
            found = source.pull_frame(0.5)
            assert found is not None
            pulled.append(found.seq)
    finally:
        source.stop()
    delivered = sum(c.delivered for c in counted)
    superseded = sum(c.superseded for c in counted)
    assert 40 <= delivered <= 100, delivered
    assert min(b - a for a, b in zip(pulled, pulled[1:])) >= 3, pulled  # 6 frames come in 0.2 s; 1 is pulled
    # every frame that reached the appsink was pulled, superseded, or is the one still waiting there
    assert delivered - len(pulled) - 2 <= superseded <= delivered - len(pulled), (delivered, superseded)
