"""The per-frame path: one inference thread takes cross-camera batches, detects, tracks, classifies crops,
runs each camera's lifecycle and rules, and hands the resulting events to an event sink.

Everything here runs on that one thread, except ``add_camera``/``end_camera`` and the status readers, which
only touch thread-safe queues, dict assignments and copied counters.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from daemon.analytics.lifecycle import ObjectLifecycle
from daemon.analytics.rules import CameraRules
from daemon.config.models import CameraConfig, TrackerConfig
from daemon.core.events import Event
from daemon.core.types import Detections, Frame
from daemon.inference.batcher import FreshestFrameBatcher
from daemon.inference.classes import class_mask, merge_groups
from daemon.inference.classify import ClassificationInput, CropClassifiers
from daemon.inference.motion import MotionGate
from daemon.inference.tracking import CameraTracker
from daemon.outputs.preview import PreviewStore
from daemon.service.metrics import Metrics
from plugins.interfaces import Detector

log = logging.getLogger(__name__)

BATCH_POLL_S = 0.25  # the thread comes round at least this often (expiry, finished cameras, stop)


class EventSink(Protocol):
    """Where a camera's events go (the outputs stage); called on the inference thread, must not block."""

    @property
    def needs_images(self) -> bool:
        """Events should carry their object's best frame (snapshots, image captioners)."""

    def emit(self, camera: CameraConfig, events: list[Event]) -> None: ...


@dataclass(slots=True)
class CameraAnalysis:
    """One camera's state; only the inference thread touches it."""

    camera: CameraConfig
    tracker: CameraTracker
    lifecycle: ObjectLifecycle
    class_mask: np.ndarray | None  # by class id: reported for this camera; None reports every class
    motion: MotionGate | None  # None: every frame is detected on
    last_captured_at: float = 0.0
    clock_offset_s: float = 0.0  # the camera's clock minus this host's, as its last frame carried it
    frames_analysed: int = 0  # detected on
    frames_skipped: int = 0  # not detected on: no motion
    events: int = 0
    events_by_type: Counter[str] = field(default_factory=Counter)  # the offline run's summary table
    active_objects: int = 0  # copied from the lifecycle here, so status readers never iterate its dict

    def now(self) -> float:
        """The camera's present on the clock its frames' captured_at are on: wall-clock time (the camera's own,
        with `clock: camera`), or for an offline file the time of its last frame."""
        return self.last_captured_at if self.camera.offline else time.time() + self.clock_offset_s


class InferenceWorker:
    def __init__(self, detector: Detector, batcher: FreshestFrameBatcher, tracking: TrackerConfig, conf: float,
                 classifiers: CropClassifiers, sink: EventSink, metrics: Metrics,
                 preview: PreviewStore | None = None) -> None:
        self.detector = detector
        self.batcher = batcher
        self.tracking = tracking
        self.conf = conf
        self.classifiers = classifiers
        self.sink = sink
        self.metrics = metrics
        self.preview = preview
        self._merge = merge_groups(detector, tracking.merge_classes)  # by class id; PluginError: unknown names
        self.heartbeat = time.monotonic()  # when the thread last came round; the watchdog reads it
        self.events_produced = 0
        self._cameras: dict[str, CameraConfig] = {}  # cameras whose frames are analysed
        self._analysis: dict[str, CameraAnalysis] = {}
        self._ended: queue.SimpleQueue[tuple[str, bool]] = queue.SimpleQueue()  # (camera, removed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inference", daemon=True)

    # -- control, from other threads -----------------------------------------------------------------

    def start(self) -> None:
        self.heartbeat = time.monotonic()
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """End every object, then stop the thread (the batcher is closed first: no more frames)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def add_camera(self, camera: CameraConfig) -> None:
        self._cameras[camera.id] = camera

    def end_camera(self, camera_id: str, removed: bool) -> None:
        """No frame will come from the camera (finished, failed) or it was removed: end its objects once its
        last queued frame is analysed; a removed camera's state is dropped."""
        if removed:
            self._cameras.pop(camera_id, None)
        self._ended.put((camera_id, removed))

    @property
    def idle(self) -> bool:
        """No camera end waits to be processed."""
        return self._ended.empty()

    def camera_counts(self, camera_id: str) -> dict[str, int]:
        analysis = self._analysis.get(camera_id)
        return {
            "frames_analysed": analysis.frames_analysed if analysis else 0,
            "frames_skipped": analysis.frames_skipped if analysis else 0,
            "events": analysis.events if analysis else 0,
            "active_objects": analysis.active_objects if analysis else 0,
        }

    def events_by_type(self, camera_id: str) -> dict[str, int]:
        analysis = self._analysis.get(camera_id)
        return dict(analysis.events_by_type) if analysis else {}  # a C-level copy: safe beside the updates

    # -- the inference thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self.heartbeat = time.monotonic()
            batch = self.batcher.next_batch(timeout=BATCH_POLL_S)
            if not batch and self._stop.is_set():
                break
            try:
                if batch:
                    self.analyse(batch)
                self._end_finished_cameras()
                for analysis in list(self._analysis.values()):
                    self._emit(analysis, analysis.lifecycle.expire(analysis.now()))
            except Exception:  # a bug or a broken model must not silently end analysis for every camera
                self.metrics.inference_errors.inc()
                log.exception("inference: batch of %d frame(s) failed; continuing", len(batch))
        for analysis in list(self._analysis.values()):
            self._emit(analysis, analysis.lifecycle.end_all(analysis.now()))

    def analyse(self, batch: list[Frame]) -> None:
        """Detect on the batch's frames that motion gating lets through, then track, classify and run the
        lifecycle per frame; the other frames only keep their camera's objects alive."""
        batch = [frame for frame in batch if self._needs_detection(frame)]
        if not batch:
            return
        started = time.perf_counter()
        inputs = [frame.image_within(self.detector.input_size) for frame in batch]
        detections = [found.scaled(x, y) for found, (_, x, y) in
                      zip(self.detector.detect([image for image, _, _ in inputs]), inputs, strict=True)]
        elapsed = time.perf_counter() - started
        self.metrics.inference_seconds.observe(elapsed)
        self.batcher.observe_inference(elapsed)
        self.metrics.batch_size.observe(len(batch))
        tracked_frames: list[tuple[Frame, CameraAnalysis, Detections]] = []
        for frame, found in zip(batch, detections, strict=True):
            analysis = self._analysis_for(frame.camera_id)
            if analysis is None or frame.camera_id not in self._cameras:
                continue  # removed (a reload, a fleet handover) while its frame was in the batch
            self._count_analysed(frame, analysis)
            if analysis.class_mask is not None:
                found = found[analysis.class_mask[found.class_id]]
            tracked_frames.append((frame, analysis, analysis.tracker.update(found, frame)))
        if self.classifiers:  # before the lifecycle, so a `new` event already carries the attributes
            crops = self.classifiers.run([ClassificationInput(frame.image, tracked, analysis.lifecycle,
                                                              frame.captured_at)
                                          for frame, analysis, tracked in tracked_frames])
            self.metrics.crops_classified.inc(crops)
        for frame, analysis, tracked in tracked_frames:
            if self.preview is not None:
                self.preview.update(frame, tracked, analysis.lifecycle.rules)
            events = analysis.lifecycle.update(tracked, frame.seq, frame.captured_at, frame.width, frame.height,
                                               frame.image if self.sink.needs_images else None)
            self._emit(analysis, events)
            if not analysis.camera.offline:  # an offline file's timeline is not a capture time to measure from
                self.metrics.capture_to_analysed_seconds.observe(time.time() - frame.host_time)

    def _needs_detection(self, frame: Frame) -> bool:
        """False for a frame motion gating skips, which is then counted and held here (not detected on: the
        tracker and the lifecycle keep what they saw last as seen now) and for a removed camera's frame."""
        analysis = self._analysis_for(frame.camera_id)
        if analysis is None:
            return True  # dropped after detection, with the frames of removed cameras batched before
        if analysis.motion is None or analysis.motion.wants_detection(frame, analysis.lifecycle.confirming):
            return True
        analysis.frames_skipped += 1
        self.metrics.frames_skipped.labels(frame.camera_id, "no_motion").inc()
        self._mark_looked_at(frame, analysis)
        analysis.tracker.hold(frame.captured_at)
        self._emit(analysis, analysis.lifecycle.hold(frame.captured_at))
        return False

    def _count_analysed(self, frame: Frame, analysis: CameraAnalysis) -> None:
        analysis.frames_analysed += 1
        self.metrics.frames_analysed.labels(frame.camera_id).inc()
        self._mark_looked_at(frame, analysis)

    def _mark_looked_at(self, frame: Frame, analysis: CameraAnalysis) -> None:
        """The camera is being analysed up to this frame (detected on, or skipped for lack of motion)."""
        analysis.last_captured_at = frame.captured_at
        analysis.clock_offset_s = frame.captured_at - frame.host_time
        # the alert and dashboard read `time() - this` as how long the camera went unanalysed, so an
        # offline file (whose frames carry its own timeline) reports the wall clock, and a camera on its own
        # clock the host's time of the frame
        self.metrics.camera_last_analysed.labels(frame.camera_id).set(
            time.time() if analysis.camera.offline else frame.host_time)

    def _analysis_for(self, camera_id: str) -> CameraAnalysis | None:
        analysis = self._analysis.get(camera_id)
        if analysis is None:
            camera = self._cameras.get(camera_id)
            if camera is None:
                return None
            tracking = self.tracking
            analysis = self._analysis[camera_id] = CameraAnalysis(
                camera,
                CameraTracker(tracking.kind, camera.fps, tracking.lost_timeout_s, self.conf, self._merge,
                              self.metrics.tracks_relinked.labels(camera_id).inc),
                ObjectLifecycle(camera_id, self.detector.names, tracking.confirm_frames, tracking.lost_timeout_s,
                                tracking.update_interval_s, CameraRules(camera.zones, camera.lines),
                                tracking.stationary_s),
                class_mask(self.detector, camera.classes),
                MotionGate(camera.motion) if camera.motion.enabled else None,
            )
        return analysis

    def _end_finished_cameras(self) -> None:
        # A camera ends once its source reported the end of its file, which GStreamer posts only after the
        # appsink's last frame was pulled; this thread pulled it in an earlier batch and has analysed it.
        while not self._ended.empty():
            camera_id, removed = self._ended.get()
            analysis = self._analysis.pop(camera_id, None) if removed else self._analysis.get(camera_id)
            if analysis is not None:
                self._emit(analysis, analysis.lifecycle.end_all(analysis.now()))

    def _emit(self, analysis: CameraAnalysis, events: list[Event]) -> None:
        analysis.active_objects = analysis.lifecycle.active
        if not events:
            return
        analysis.events += len(events)
        analysis.events_by_type.update(event.type.value for event in events)
        self.events_produced += len(events)
        self.sink.emit(analysis.camera, events)
