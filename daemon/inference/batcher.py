"""Cross-camera deadline batcher: the freshest frame of each camera, fairly, without waiting long."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from daemon.core.types import Frame


class FreshestFrameBatcher:
    """Holds at most one frame per camera (the newest); a frame replaced before inference took it is
    reported through ``on_superseded``. A lossless camera (a file analysed offline) is never superseded:
    its ``put`` waits until inference has taken the previous frame. ``next_batch`` returns once
    ``max_batch`` cameras have a frame, every registered camera has one, or the wait has passed since the
    first frame was ready.

    The wait adapts: it is at most ``max_wait_s`` and at most half the recent inference time per batch,
    because waiting longer than that adds more latency to the frames in hand than a fuller batch saves.
    """

    def __init__(self, max_batch: int, max_wait_s: float, on_superseded: Callable[[str], None]) -> None:
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._inference_s: float | None = None  # exponential moving average per batch
        self._on_superseded = on_superseded
        self._slots: dict[str, Frame] = {}
        self._cameras: list[str] = []  # round-robin order; rotated so no camera is always last
        self._lossless: set[str] = set()
        self._closed = False
        self._cond = threading.Condition()

    def register(self, camera_id: str, lossless: bool = False) -> None:
        with self._cond:
            if camera_id not in self._cameras:
                self._cameras.append(camera_id)
            if lossless:
                self._lossless.add(camera_id)
            else:
                self._lossless.discard(camera_id)

    def unregister(self, camera_id: str) -> None:
        with self._cond:
            if camera_id in self._cameras:
                self._cameras.remove(camera_id)
            self._lossless.discard(camera_id)
            self._slots.pop(camera_id, None)
            self._cond.notify_all()

    def close(self) -> None:
        """Stop making lossless cameras wait: the daemon is stopping and will analyse no more."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def put(self, frame: Frame) -> None:
        """Called on a camera's streaming thread; for a lossless camera it blocks while its slot is full."""
        camera_id = frame.camera_id
        with self._cond:
            self._cond.wait_for(lambda: camera_id not in self._slots or camera_id not in self._lossless
                                or self._closed)
            if camera_id not in self._cameras:  # a late frame of a camera a reload removed
                return
            if frame.camera_id in self._slots:
                self._on_superseded(frame.camera_id)
            self._slots[frame.camera_id] = frame
            self._cond.notify_all()

    def observe_inference(self, seconds: float) -> None:
        previous = self._inference_s
        self._inference_s = seconds if previous is None else 0.8 * previous + 0.2 * seconds

    @property
    def wait_s(self) -> float:
        if self._inference_s is None:
            return self.max_wait_s
        return min(self.max_wait_s, self._inference_s / 2)

    def holds(self, camera_id: str) -> bool:
        """Whether a frame of this camera waits for inference."""
        with self._cond:
            return camera_id in self._slots

    @property
    def pending(self) -> bool:
        return bool(self._slots)

    def next_batch(self, timeout: float) -> list[Frame]:
        """Wait up to ``timeout`` for a first frame; [] when none came."""
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._slots), timeout):
                return []
            deadline = time.monotonic() + self.wait_s
            wanted = lambda: min(self.max_batch, max(1, len(self._cameras)))  # noqa: E731
            while len(self._slots) < wanted():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._cond.wait(remaining):
                    break
            order = [c for c in self._cameras if c in self._slots]
            order += [c for c in self._slots if c not in order]
            chosen = order[: self.max_batch]
            batch = [self._slots.pop(camera) for camera in chosen]
            self._cond.notify_all()  # lossless cameras waiting for their slot
            for camera in chosen:  # served cameras go to the back of the queue
                if camera in self._cameras:
                    self._cameras.remove(camera)
                    self._cameras.append(camera)
            return batch
