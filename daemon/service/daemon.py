"""The daemon: wires sources, batcher, inference worker, publisher and HTTP, and stops them in order."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, replace

import numpy as np

from daemon.inference.batcher import FreshestFrameBatcher
from daemon.outputs.captions import CaptionStage
from daemon.inference.classify import ClassificationInput, CropClassifiers
from daemon.config.models import CameraCaptionsConfig, CameraConfig, Config, ConfigError, load_config
from daemon.analytics.lifecycle import ObjectLifecycle
from daemon.service.http import Endpoints, HttpServer
from daemon.service.metrics import Metrics
from daemon.service.notify import SystemdNotifier
from plugins.interfaces import Detector, PluginError, load_classifier, load_detector
from daemon.outputs.publisher import RedisPublisher, stream_for
from daemon.outputs.preview import PreviewStore
from daemon.analytics.rules import CameraRules
from daemon.core.redact import redact_url
from daemon.outputs.snapshots import SnapshotWriter
from daemon.sources.camera import CameraSource, CameraState
from daemon.inference.tracking import CameraTracker
from daemon.core.types import Detections, Frame

log = logging.getLogger(__name__)

# The main loop withholds systemd watchdog pings once the inference thread has not come round for this
# long (it turns at least every 0.25 s plus one batch), so a hung detector gets the service restarted.
INFERENCE_STALL_S = 20.0


@dataclass(slots=True)
class _CameraAnalysis:
    """State only the inference thread touches."""

    tracker: CameraTracker
    lifecycle: ObjectLifecycle
    class_mask: np.ndarray | None  # by class id: reported for this camera; None reports every class
    captions: CameraCaptionsConfig | None = None  # which events get captions, by which captioner
    offline: bool = False  # a file on its own timeline: time passes only as its frames are analysed
    last_captured_at: float = 0.0
    frames_analysed: int = 0
    events: int = 0
    active_objects: int = 0  # copied from the lifecycle here, so status readers never iterate its dict

    def now(self) -> float:
        """The camera's present: wall-clock time, or for an offline file the time of its last analysed frame."""
        return self.last_captured_at if self.offline else time.time()


class Daemon:
    def __init__(self, config: Config, config_path: str | None = None,
                 notifier: SystemdNotifier | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.notifier = notifier or SystemdNotifier(None)
        self.metrics = Metrics()
        self.preview = PreviewStore()
        self.detector: Detector | None = None
        self.classifiers = CropClassifiers([])
        self.sources: dict[str, CameraSource] = {}
        self.batcher = FreshestFrameBatcher(
            config.batch.max_batch, config.batch.max_wait_ms / 1000, self._on_superseded
        )
        self.publisher = RedisPublisher(config.redis, self.metrics, config.spool)
        self.snapshots: SnapshotWriter | None = None
        self.captions: CaptionStage | None = None
        self.events_produced = 0
        self.http: HttpServer | None = None
        self._analysis: dict[str, _CameraAnalysis] = {}
        self._camera_ended: queue.SimpleQueue[tuple[str, bool]] = queue.SimpleQueue()  # (camera, removed)
        self._stop_requested = threading.Event()
        self._reload_requested = threading.Event()
        self._wake = threading.Event()  # set by request_stop/request_reload so wait() reacts at once
        self._inference_heartbeat = time.monotonic()
        self._inference_stall_logged = False
        self._worker_stop = threading.Event()
        self._worker = threading.Thread(target=self._inference_loop, name="inference", daemon=True)
        self._lock = threading.Lock()  # guards self.sources against reload vs status readers

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the model and start every stage. Raises PluginError/OSError for problems a user can fix."""
        self.detector = load_detector(self.config.detector)
        self._check_camera_classes(self.config.cameras)
        self.classifiers = CropClassifiers([(c, load_classifier(c)) for c in self.config.classifiers])
        endpoints = Endpoints(self.metrics, self.camera_status, self.readiness, self.preview,
                              self.config.http.preview_clients)
        try:
            self.http = HttpServer(self.config.http.host, self.config.http.port, endpoints)
        except OSError as error:
            raise OSError(error.errno, f"http.listen {self.config.http.listen}: {error.strerror or error}") from None
        self.preview.names = self.detector.names
        detector_config = self.config.detector
        self.metrics.model_info.info({
            "plugin": detector_config.plugin, "model": redact_url(detector_config.model),
            "device": self.detector.device, "imgsz": str(detector_config.imgsz),
        })
        self.metrics.publish_queue_capacity.set(self.config.redis.queue_size)
        self._inference_heartbeat = time.monotonic()
        if self.config.snapshots.enabled:
            self.snapshots = SnapshotWriter(self.config.snapshots, self.config.redis, self.detector.names,
                                            self.metrics)
            self.snapshots.start()
        self.captions = CaptionStage(self.config.captions, self.detector.names, self.metrics,
                                     self._publish_captions, self.snapshots)
        self.captions.start(self.config.cameras)
        self.publisher.start()
        self.http.start()
        self._worker.start()
        for camera in self.config.cameras:
            if camera.enabled:
                self._add_camera(camera)
        log.info("argusd started: %d camera(s), events to %s stream %s", len(self.sources),
                 redact_url(self.config.redis.url), stream_for(self.config.redis.stream, "<camera>"))

    def request_stop(self) -> None:
        self._stop_requested.set()
        self._wake.set()

    def request_reload(self) -> None:
        """Safe from a signal handler: the reload itself runs in ``wait``'s loop, not inside the handler."""
        self._reload_requested.set()
        self._wake.set()

    def wait(self, exit_when_done: bool = False, max_seconds: float | None = None) -> None:
        """Block until a stop is requested, ``max_seconds`` pass, or (with ``exit_when_done``) every
        camera has finished and its frames are analysed. Requested reloads run here."""
        deadline = time.monotonic() + max_seconds if max_seconds else None
        while not self._stop_requested.is_set():
            self._wake.wait(0.2)
            self._wake.clear()
            if self._reload_requested.is_set() and not self._stop_requested.is_set():
                self._reload_requested.clear()
                self.notifier.reloading()
                self.reload()
                self.notifier.ready()
            self._feed_watchdog()
            if deadline is not None and time.monotonic() >= deadline:
                log.info("run time limit reached")
                return
            if exit_when_done and self._all_done():
                log.info("all cameras finished")
                return

    def _feed_watchdog(self) -> None:
        stalled_for = time.monotonic() - self._inference_heartbeat
        if stalled_for > INFERENCE_STALL_S:
            if not self._inference_stall_logged:
                log.error("inference thread stuck for %.0f s; withholding the systemd watchdog ping", stalled_for)
                self._inference_stall_logged = True
            return
        self._inference_stall_logged = False
        if self.notifier.watchdog_ping():
            self.notifier.status(self.status_line())

    def _source_list(self) -> list[CameraSource]:
        with self._lock:
            return list(self.sources.values())

    def status_line(self) -> str:
        """One line for `systemctl status` (STATUS=)."""
        sources = self._source_list()
        streaming = sum(source.state == CameraState.STREAMING for source in sources)
        return f"{streaming}/{len(sources)} camera(s) streaming, {self.publisher.published} event(s) published"

    def readiness(self) -> tuple[bool, dict]:
        """Ready when the model is loaded, at least one camera streams, and events can be delivered or
        queued (the publish queue is not full, so nothing is being dropped)."""
        sources = self._source_list()
        streaming = sum(source.state == CameraState.STREAMING for source in sources)
        pending, capacity = self.publisher.pending, self.config.redis.queue_size
        checks = {
            "model_loaded": self.detector is not None,
            "camera_streaming": streaming > 0,
            "events_deliverable": pending < capacity,
        }
        details = {"checks": checks, "cameras_streaming": streaming, "cameras": len(sources),
                   "publish_queue": pending, "publish_queue_capacity": capacity}
        return all(checks.values()), details

    def shutdown(self) -> None:
        log.info("stopping")
        self.preview.close()
        self.batcher.close()
        sources = self._source_list()
        for source in sources:
            source.stop()
        self._worker_stop.set()
        if self._worker.is_alive():
            self._worker.join(30)
        if self.captions is not None:  # before snapshots and publisher: its last captions use both
            self.captions.stop()
        if self.snapshots is not None:
            self.snapshots.stop()
        self.publisher.stop()
        if self.http is not None:
            self.http.stop()
        log.info("stopped: %d event(s) produced, %d published (%d replayed from the spool), %d left in the spool",
                 self.events_produced + (self.captions.published if self.captions else 0),
                 self.publisher.published, self.publisher.replayed,
                 self.publisher.spool.pending if self.publisher.spool else 0)

    def _all_done(self) -> bool:
        sources = self._source_list()
        return all(s.done for s in sources) and self._camera_ended.empty() and not self.batcher.pending

    # -- cameras -------------------------------------------------------------------------------------

    def _add_camera(self, camera: CameraConfig) -> None:
        self.metrics.add_camera(camera.id, camera.fps)
        source = CameraSource(camera, self._on_frame, self._on_camera_state, self._on_rate_stats, self._on_reconnect)
        with self._lock:
            self.sources[camera.id] = source
        self.batcher.register(camera.id, lossless=camera.offline)
        source.start()

    def _stop_camera(self, camera_id: str) -> None:
        with self._lock:
            source = self.sources.get(camera_id)
        if source is not None:
            source.stop()

    def _forget_camera(self, camera_id: str) -> None:
        with self._lock:
            self.sources.pop(camera_id, None)
        self.batcher.unregister(camera_id)
        self._camera_ended.put((camera_id, True))
        self.metrics.forget_camera(camera_id)
        self.preview.forget(camera_id)

    def reload(self) -> None:
        """Re-read the config file and apply camera changes; keep the running config if it is invalid.

        Only cameras that were added, removed or changed are touched (and FAILED ones retried); the others
        and the inference worker keep running undisturbed."""
        if self.config_path is None:
            log.warning("reload: no config file to re-read")
            return
        try:
            new = load_config(self.config_path)
            self._check_camera_classes(new.cameras)
        except (ConfigError, PluginError) as error:
            self.metrics.reloads.labels("rejected").inc()
            log.error("reload rejected, keeping the running config: %s", "; ".join(
                line.strip() for line in str(error).splitlines()))
            return
        old_cameras = {c.id: c for c in self.config.cameras if c.enabled}
        new_cameras = {c.id: c for c in new.cameras if c.enabled}
        with self._lock:
            failed = {i for i, s in self.sources.items() if s.state == CameraState.FAILED}
        removed = old_cameras.keys() - new_cameras.keys()
        changed = {i for i, c in new_cameras.items() if i in old_cameras and (old_cameras[i] != c or i in failed)}
        for camera_id in sorted(removed | changed):  # stop them all first: their teardowns overlap
            self.batcher.unregister(camera_id)  # releases an offline file's decoder waiting for its slot
            self._stop_camera(camera_id)
        for camera_id in sorted(removed):
            log.info("reload: removed camera %s", camera_id)
            self._forget_camera(camera_id)
        for camera_id, camera in new_cameras.items():
            if camera_id in changed:
                log.info("reload: restarting %s camera %s", "failed" if camera_id in failed else "changed", camera_id)
                self._forget_camera(camera_id)
                self._add_camera(camera)
            elif camera_id not in old_cameras:
                log.info("reload: adding camera %s", camera_id)
                self._add_camera(camera)
        sections = ("detector", "batch", "tracker", "redis", "spool", "snapshots", "captions", "http", "log")
        unchanged = [name for name in sections
                     if getattr(new, name) != getattr(self.config, name)]
        if unchanged:
            log.warning("reload: changes to %s take effect after a restart", ", ".join(unchanged))
        self.config = self.config.model_copy(update={"cameras": new.cameras})
        self.metrics.reloads.labels("applied").inc()
        log.info("reload: done, %d camera(s)", len(self.sources))

    def _on_frame(self, frame: Frame) -> None:
        self.metrics.frames_received.labels(frame.camera_id).inc()
        self.batcher.put(frame)

    def _on_camera_state(self, camera_id: str, state: CameraState, error: str | None) -> None:
        if state == CameraState.STOPPED:  # a removed camera: its gauges go with it (forget_camera)
            return
        for candidate in CameraState:
            self.metrics.camera_state.labels(camera_id, candidate.value).set(1 if candidate == state else 0)
        self.metrics.camera_up.labels(camera_id).set(1 if state == CameraState.STREAMING else 0)
        if state == CameraState.STALLED:
            self.metrics.camera_stalls.labels(camera_id).inc()
        if state in (CameraState.FINISHED, CameraState.FAILED):  # no frame will come: end its objects now
            self._camera_ended.put((camera_id, False))

    def _on_reconnect(self, camera_id: str) -> None:
        self.metrics.camera_reconnects.labels(camera_id).inc()

    def _on_rate_stats(self, camera_id: str, decoded: int, rate_dropped: int) -> None:
        self.metrics.frames_decoded.labels(camera_id).inc(decoded)
        if rate_dropped:
            self.metrics.frames_dropped.labels(camera_id, "rate_limit").inc(rate_dropped)

    def _on_superseded(self, camera_id: str) -> None:
        self.metrics.frames_dropped.labels(camera_id, "superseded").inc()

    def camera_status(self) -> list[dict]:
        sources = self._source_list()
        status = []
        for source in sources:
            analysis = self._analysis.get(source.camera_id)
            status.append(source.status() | {
                "frames_analysed": analysis.frames_analysed if analysis else 0,
                "events": analysis.events if analysis else 0,
                "active_objects": analysis.active_objects if analysis else 0,
            })
        return status

    # -- inference thread ----------------------------------------------------------------------------

    def _inference_loop(self) -> None:
        while True:
            self._inference_heartbeat = time.monotonic()
            batch = self.batcher.next_batch(timeout=0.25)
            if not batch and self._worker_stop.is_set():
                break
            try:
                if batch:
                    self._analyse(batch)
                self._end_finished_cameras()
                for camera_id, analysis in list(self._analysis.items()):
                    self._emit(camera_id, analysis, analysis.lifecycle.expire(analysis.now()))
            except Exception:  # a bug or a broken model must not silently end analysis for every camera
                self.metrics.inference_errors.inc()
                log.exception("inference: batch of %d frame(s) failed; continuing", len(batch))
        for camera_id, analysis in list(self._analysis.items()):
            self._emit(camera_id, analysis, analysis.lifecycle.end_all(analysis.now()))

    def _end_finished_cameras(self) -> None:
        waiting = []
        while not self._camera_ended.empty():
            camera_id, removed = self._camera_ended.get()
            if not removed and self.batcher.holds(camera_id):  # its last frame is analysed first
                waiting.append((camera_id, removed))
                continue
            analysis = self._analysis.pop(camera_id, None) if removed else self._analysis.get(camera_id)
            if analysis is not None:
                self._emit(camera_id, analysis, analysis.lifecycle.end_all(analysis.now()))
        for item in waiting:
            self._camera_ended.put(item)

    def _analysis_for(self, frame: Frame) -> _CameraAnalysis | None:
        analysis = self._analysis.get(frame.camera_id)
        if analysis is None:
            source = self.sources.get(frame.camera_id)
            if source is None:
                return None  # removed by a reload while its frame was in the batch
            camera = source.config
            tracking = self.config.tracker
            analysis = _CameraAnalysis(
                CameraTracker(tracking.kind, camera.fps, tracking.lost_timeout_s, self.config.detector.conf),
                ObjectLifecycle(frame.camera_id, self.detector.names, tracking.confirm_frames,
                                tracking.lost_timeout_s, tracking.update_interval_s,
                                CameraRules(camera.zones, camera.lines)),
                self._class_mask(camera.classes),
                camera.captions,
                offline=camera.offline,
            )
            self._analysis[frame.camera_id] = analysis
        return analysis

    def _class_aliases(self) -> list[set[str]]:
        """By class id: the lower-case names a camera's `classes` may use for it (label or model name)."""
        names = self.detector.names
        model_names = getattr(self.detector, "model_names", names)
        return [{names[i].lower(), model_names.get(i, names[i]).lower()} if i in names else set()
                for i in range(max(names) + 1)]

    def _check_camera_classes(self, cameras: list[CameraConfig]) -> None:
        known = set().union(*self._class_aliases())
        for index, camera in enumerate(cameras):
            unknown = [name for name in camera.classes or [] if name.lower() not in known]
            if unknown:
                raise PluginError(f"cameras.{index}.classes: {', '.join(unknown)} not among the detector's "
                                  f"classes ({', '.join(self.detector.names.values())})")

    def _class_mask(self, wanted: list[str] | None) -> np.ndarray | None:
        if not wanted:
            return None
        keep = {name.lower() for name in wanted}
        return np.array([bool(aliases & keep) for aliases in self._class_aliases()], dtype=bool)

    def _analyse(self, batch: list[Frame]) -> None:
        started = time.perf_counter()
        detections = self.detector.detect([frame.image for frame in batch])
        elapsed = time.perf_counter() - started
        self.metrics.inference_seconds.observe(elapsed)
        self.batcher.observe_inference(elapsed)
        self.metrics.batch_size.observe(len(batch))
        tracked_frames: list[tuple[Frame, _CameraAnalysis, Detections]] = []
        for frame, found in zip(batch, detections, strict=True):
            analysis = self._analysis_for(frame)
            if analysis is None:
                continue
            analysis.frames_analysed += 1
            analysis.last_captured_at = frame.captured_at
            self.metrics.frames_analysed.labels(frame.camera_id).inc()
            # the alert and dashboard read `time() - this` as how long the camera went unanalysed, so an
            # offline file (whose frames carry its own timeline) reports the wall clock
            self.metrics.camera_last_analysed.labels(frame.camera_id).set(
                time.time() if analysis.offline else frame.captured_at)
            if analysis.class_mask is not None:
                found = found[analysis.class_mask[found.class_id]]
            tracked_frames.append((frame, analysis, analysis.tracker.update(found, frame.image)))
        if self.classifiers:  # before the lifecycle, so a `new` event already carries the attributes
            crops = self.classifiers.run([ClassificationInput(frame.image, tracked, analysis.lifecycle,
                                                              frame.captured_at)
                                          for frame, analysis, tracked in tracked_frames])
            self.metrics.crops_classified.inc(crops)
        for frame, analysis, tracked in tracked_frames:
            self.preview.update(frame, tracked, analysis.lifecycle.rules)
            events = analysis.lifecycle.update(tracked, frame.seq, frame.captured_at, frame.width, frame.height,
                                               frame.image if self.snapshots or self.captions.needs_images else None)
            self._emit(frame.camera_id, analysis, events)
            if not analysis.offline:  # an offline file's timeline is not a capture time to measure from
                self.metrics.capture_to_analysed_seconds.observe(time.time() - frame.captured_at)

    def _emit(self, camera_id: str, analysis: _CameraAnalysis, events: list) -> None:
        analysis.active_objects = analysis.lifecycle.active
        if not events:
            return
        analysis.events += len(events)
        self.events_produced += len(events)
        for event in events:
            self.metrics.events_produced.labels(camera_id, event.type).inc()
        # The frame reference goes to the snapshot queue only; queued events must not pin images.
        events = self.captions.attach(events, analysis.captions)
        self.publisher.submit([replace(e, snapshot=self.snapshots.request(e) if self.snapshots else None,
                                       best_frame=None) for e in events])
        self.captions.request(events, analysis.captions)  # after the submit: captions follow their subjects

    def _publish_captions(self, captions: list) -> None:
        """Caption workers hand their events here."""
        for caption in captions:
            self.metrics.events_produced.labels(caption.camera, caption.type).inc()
        self.publisher.submit(captions)
