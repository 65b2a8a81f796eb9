"""Cross-camera deadline batcher: pulls the freshest frame of each camera, fairly, without waiting long."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from daemon.core.types import Frame

# Pull the newest frame of a camera, waiting up to the given seconds; None when it has none.
FramePuller = Callable[[float], Frame | None]

# While no camera has a frame, the batcher waits on one camera's pull (the GIL released) for this long before
# looking at the others again: a frame of another camera waits at most this long to be noticed.
IDLE_SLICE_S = 0.005


class FreshestFrameBatcher:
    """Each camera keeps its newest frame itself (a one-buffer appsink that drops the older frame, or, for a
    file analysed offline, blocks its decoder until the frame is taken). ``next_batch`` pulls from every
    registered camera, in rotating order so no camera is always last, and returns once ``max_batch`` frames
    are in hand, every camera has given one, or the wait has passed since the first frame was pulled.

    The wait adapts: it is at most ``max_wait_s`` and at most half the recent inference time per batch,
    because waiting longer than that adds more latency to the frames in hand than a fuller batch saves.
    Only the inference thread calls ``next_batch``; the others register and unregister cameras.
    """

    def __init__(self, max_batch: int, max_wait_s: float) -> None:
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._inference_s: float | None = None  # exponential moving average per batch
        self._pullers: dict[str, FramePuller] = {}
        self._order: list[str] = []  # round-robin order; served cameras go to the back
        self._closed = False
        self._changed = threading.Condition()  # a camera registered or unregistered, or close()

    def register(self, camera_id: str, pull: FramePuller) -> None:
        with self._changed:
            self._pullers[camera_id] = pull
            if camera_id not in self._order:
                self._order.append(camera_id)
            self._changed.notify_all()

    def unregister(self, camera_id: str) -> None:
        with self._changed:
            self._pullers.pop(camera_id, None)
            if camera_id in self._order:
                self._order.remove(camera_id)

    def close(self) -> None:
        """The daemon is stopping: ``next_batch`` returns what it holds at once and then only empty batches."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def observe_inference(self, seconds: float) -> None:
        previous = self._inference_s
        self._inference_s = seconds if previous is None else 0.8 * previous + 0.2 * seconds

    @property
    def wait_s(self) -> float:
        if self._inference_s is None:
            return self.max_wait_s
        return min(self.max_wait_s, self._inference_s / 2)

    def next_batch(self, timeout: float) -> list[Frame]:
        """Wait up to ``timeout`` for a first frame; [] when none came or the batcher is closed."""
        batch: dict[str, Frame] = {}
        deadline = time.monotonic() + timeout  # for the first frame; then for the rest of the batch
        while not self._closed:
            for camera_id, pull in self._without(batch):  # every camera, so a dead one cannot hide a live one
                if len(batch) >= self.max_batch:
                    break
                deadline = self._take(batch, camera_id, pull(0), deadline)
            pending = self._without(batch)
            remaining = deadline - time.monotonic()
            if len(batch) >= self.max_batch or (batch and not pending) or remaining <= 0:
                break
            camera_id, frame = self._wait(pending, remaining)
            deadline = self._take(batch, camera_id, frame, deadline)
        self._rotate(list(batch))
        return list(batch.values())

    def _take(self, batch: dict[str, Frame], camera_id: str, frame: Frame | None, deadline: float) -> float:
        """Add a pulled frame to the batch; the first one starts the wait for the others."""
        if frame is None:
            return deadline
        if not batch:
            deadline = time.monotonic() + self.wait_s
        batch[camera_id] = frame
        return deadline

    def _without(self, batch: dict[str, Frame]) -> list[tuple[str, FramePuller]]:
        """The registered cameras with no frame in ``batch``, in round-robin order."""
        with self._changed:
            return [(c, self._pullers[c]) for c in self._order if c not in batch]

    def _wait(self, pending: list[tuple[str, FramePuller]], remaining: float) -> tuple[str, Frame | None]:
        """Wait a short slice on the first pending camera's pull (returning the frame it gives), or on a
        change of cameras when none is registered or the pull answered at once (a camera between pipelines)."""
        if not pending:
            with self._changed:
                self._changed.wait(remaining)
            return "", None
        camera_id, pull = pending[0]
        slice_s = min(IDLE_SLICE_S, remaining)
        started = time.monotonic()
        frame = pull(slice_s)
        left = slice_s - (time.monotonic() - started)
        if frame is None and left > slice_s / 2:
            with self._changed:
                self._changed.wait(left)
        return camera_id, frame

    def _rotate(self, served: list[str]) -> None:
        with self._changed:
            for camera_id in served:
                if camera_id in self._order:
                    self._order.remove(camera_id)
                    self._order.append(camera_id)
