"""Helpers for the camera supervision tests: quick camera configs, frame and state recorders, frame gaps."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from daemon.config.models import CameraConfig
from daemon.sources.camera import CameraSource
from daemon.sources.supervisor import CameraState
from daemon.core.types import Frame


@dataclass
class Recorder:
    """Collects the frames pulled from CameraSources and their state changes, with monotonic arrival times."""

    frames: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))
    states: list[tuple[str, CameraState, str | None, float]] = field(default_factory=list)
    latest: dict[str, Frame] = field(default_factory=dict)  # each camera's newest frame, for its pixels
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_frame(self, frame: Frame) -> None:
        with self.lock:
            self.frames[frame.camera_id].append((frame.seq, time.monotonic()))
            self.latest[frame.camera_id] = frame

    def on_state(self, camera_id: str, state: CameraState, error: str | None) -> None:
        with self.lock:
            self.states.append((camera_id, state, error, time.monotonic()))

    def count(self, camera_id: str) -> int:
        with self.lock:
            return len(self.frames[camera_id])

    def frame_times(self, camera_id: str) -> list[float]:
        with self.lock:
            return [t for _, t in self.frames[camera_id]]

    def first_frame_after(self, camera_id: str, moment: float) -> float | None:
        return next((t for t in self.frame_times(camera_id) if t > moment), None)

    def seconds_to_frames(self, camera_id: str, restart: Callable[[], None], source: CameraSource,
                          timeout: float = 5.0) -> float:
        """Call ``restart`` (a peer coming back); the seconds until the camera's next frame, within ``timeout``."""
        from tests.support.polling import wait_for

        restart()
        back = time.monotonic()
        wait_for(lambda: self.first_frame_after(camera_id, back), timeout, "a frame after the restart",
                 details=source.status)
        return self.first_frame_after(camera_id, back) - back

    def errors(self, camera_id: str) -> list[str]:
        """The distinct errors the camera's state changes carried, in order."""
        with self.lock:
            found = [e for c, _, e, _ in self.states if c == camera_id and e]
        return list(dict.fromkeys(found))

    def first_state_after(self, camera_id: str, state: CameraState, moment: float) -> float | None:
        with self.lock:
            return next((t for c, s, _, t in self.states if c == camera_id and s == state and t > moment), None)

    def source(self, config: CameraConfig) -> CameraSource:
        """A source whose frames are pulled as fast as they come, until stop()."""
        source = CameraSource(config, self.on_state)
        pull_frames(source, self.on_frame)
        return source


def pull_frames(source: CameraSource, on_frame: Callable[[Frame], None]) -> None:
    """Pull the source's frames on a thread of their own (as the inference thread does) until its stop()."""

    def pump() -> None:
        while not source.stopping:
            frame = source.pull_frame(0.05)
            if frame is not None:
                on_frame(frame)
            elif source.state != CameraState.STREAMING:
                time.sleep(0.01)  # between pipelines a pull answers at once

    threading.Thread(target=pump, name=f"pull-{source.camera_id}", daemon=True).start()


def camera(camera_id: str, url: str, **overrides: object) -> CameraConfig:
    """A camera tuned for quick tests: low fps, short timeouts, fast reconnects."""
    settings: dict[str, object] = {"fps": 10, "width": 160, "watchdog_s": 2.0, "start_timeout_s": 4.0,
                                   "backoff_initial_s": 0.2, "backoff_max_s": 1.0}
    settings.update(overrides)
    return CameraConfig(id=camera_id, url=url, **settings)


def make_clip(path: Path, frames: int = 20, fps: int = 20, size: tuple[int, int] = (160, 120),
              encoder: str = "x264enc speed-preset=ultrafast", muxer: str = "mp4mux", pattern: str = "ball") -> Path:
    """A real video file of a videotestsrc pattern (a bouncing ball unless told), encoded by GStreamer
    (``frames`` frames at ``fps``)."""
    subprocess.run(
        ["gst-launch-1.0", "-q", "videotestsrc", f"num-buffers={frames}", f"pattern={pattern}", "!",
         f"video/x-raw,width={size[0]},height={size[1]},framerate={fps}/1", "!", *encoder.split(), "!",
         *muxer.split(), "!", "filesink", f"location={path}"],
        check=True, timeout=120,
    )
    return path


def largest_gap(times: list[float], start: float, end: float) -> float:
    """The longest interval without a frame between ``start`` and ``end``."""
    points = [start, *(t for t in times if start < t < end), end]
    return max(b - a for a, b in zip(points, points[1:]))
