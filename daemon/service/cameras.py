"""The running cameras: one supervised source per enabled camera, their metrics and status, and the
camera changes a reload applies (only cameras added, removed or changed are touched)."""

from __future__ import annotations

import logging
import threading

from daemon.config.models import CameraConfig
from daemon.inference.batcher import FreshestFrameBatcher
from daemon.inference.worker import InferenceWorker
from daemon.outputs.preview import PreviewStore
from daemon.service.metrics import Metrics
from daemon.sources.camera import CameraSource
from daemon.sources.pipeline import FrameCounts
from daemon.sources.supervisor import CameraState

log = logging.getLogger(__name__)


class CameraFleet:
    def __init__(self, batcher: FreshestFrameBatcher, worker: InferenceWorker, metrics: Metrics,
                 preview: PreviewStore) -> None:
        self.batcher = batcher
        self.worker = worker
        self.metrics = metrics
        self.preview = preview
        self._sources: dict[str, CameraSource] = {}
        self._lock = threading.Lock()  # guards _sources against reload vs status readers

    def sources(self) -> list[CameraSource]:
        with self._lock:
            return list(self._sources.values())

    def add(self, camera: CameraConfig) -> None:
        source = CameraSource(camera, self._on_state, self._on_counts, self._on_reconnect)
        self.metrics.add_camera(camera.id, camera.fps, source.clock_offset_s if camera.clock == "camera" else None)
        self.worker.add_camera(camera)
        with self._lock:
            self._sources[camera.id] = source
        self.batcher.register(camera.id, source.pull_frame)
        source.start()

    def remove(self, camera_id: str) -> None:
        """Stop a camera and end its open objects (their ``end`` events go out now); its counters stay. Its
        frames already in a batch are dropped, not analysed, so none is analysed after this returns."""
        self.batcher.unregister(camera_id)
        self.worker.end_camera(camera_id, removed=True)
        self._stop(camera_id)
        self._forget(camera_id)

    def stop_all(self) -> None:
        for source in self.sources():
            source.stop()

    def apply(self, old: list[CameraConfig], new: list[CameraConfig]) -> None:
        """Make the running cameras those of ``new``: FAILED ones are retried, unchanged ones keep running."""
        old_cameras = {c.id: c for c in old if c.enabled}
        new_cameras = {c.id: c for c in new if c.enabled}
        with self._lock:
            failed = {i for i, s in self._sources.items() if s.state == CameraState.FAILED}
        removed = old_cameras.keys() - new_cameras.keys()
        changed = {i for i, c in new_cameras.items() if i in old_cameras and (old_cameras[i] != c or i in failed)}
        for camera_id in sorted(removed | changed):  # stop them all first: their teardowns overlap
            self.batcher.unregister(camera_id)
            self._stop(camera_id)
        for camera_id in sorted(removed):
            log.info("reload: removed camera %s", camera_id)
            self._forget(camera_id)
        for camera_id, camera in new_cameras.items():
            if camera_id in changed:
                log.info("reload: restarting %s camera %s", "failed" if camera_id in failed else "changed", camera_id)
                self._forget(camera_id)
                self.add(camera)
            elif camera_id not in old_cameras:
                log.info("reload: adding camera %s", camera_id)
                self.add(camera)

    def status(self) -> list[dict]:
        return [source.status() | self.worker.camera_counts(source.camera_id) for source in self.sources()]

    def streaming(self) -> int:
        return sum(source.state == CameraState.STREAMING for source in self.sources())

    def all_done(self) -> bool:
        """Every camera finished and its frames analysed."""
        return all(s.done for s in self.sources()) and self.worker.idle

    def _stop(self, camera_id: str) -> None:
        with self._lock:
            source = self._sources.get(camera_id)
        if source is not None:
            source.stop()

    def _forget(self, camera_id: str) -> None:
        with self._lock:
            self._sources.pop(camera_id, None)
        self.batcher.unregister(camera_id)
        self.worker.end_camera(camera_id, removed=True)
        self.metrics.forget_camera(camera_id)
        self.preview.forget(camera_id)

    # -- callbacks from the sources ------------------------------------------------------------------

    def _on_state(self, camera_id: str, state: CameraState, error: str | None) -> None:
        if state == CameraState.STOPPED:  # a removed camera: its gauges go with it (forget)
            return
        for candidate in CameraState:
            self.metrics.camera_state.labels(camera_id, candidate.value).set(1 if candidate == state else 0)
        self.metrics.camera_up.labels(camera_id).set(1 if state == CameraState.STREAMING else 0)
        if state == CameraState.STALLED:
            self.metrics.camera_stalls.labels(camera_id).inc()
        if state in (CameraState.FINISHED, CameraState.FAILED):  # no frame will come: end its objects now
            self.worker.end_camera(camera_id, removed=False)

    def _on_reconnect(self, camera_id: str) -> None:
        self.metrics.camera_reconnects.labels(camera_id).inc()

    def _on_counts(self, camera_id: str, counts: FrameCounts) -> None:
        self.metrics.frames_decoded.labels(camera_id).inc(counts.decoded)
        self.metrics.frames_received.labels(camera_id).inc(counts.delivered)
        if counts.rate_dropped:
            self.metrics.frames_dropped.labels(camera_id, "rate_limit").inc(counts.rate_dropped)
        if counts.superseded:
            self.metrics.frames_dropped.labels(camera_id, "superseded").inc(counts.superseded)
