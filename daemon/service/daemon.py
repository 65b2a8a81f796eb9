"""The composition root: builds the stages in the order data flows, runs the main loop (signals, reloads,
the systemd watchdog) and stops the stages in the reverse order, so nothing in flight is lost."""

from __future__ import annotations

import logging
import queue
import signal
import time
from collections.abc import Callable, Sequence

from daemon.config.loading import load_config
from daemon.config.models import CameraConfig, Config, ConfigError
from daemon.core.redact import redact_url
from daemon.inference.batcher import FreshestFrameBatcher
from daemon.inference.classes import check_camera_classes
from daemon.inference.classify import CropClassifiers
from daemon.inference.worker import InferenceWorker
from daemon.outputs.captions import CaptionStage
from daemon.outputs.preview import PreviewStore
from daemon.outputs.publisher import Publishable, RedisPublisher, stream_for
from daemon.outputs.router import EventRouter
from daemon.outputs.snapshots import SnapshotWriter
from daemon.service.auth import HttpAuth
from daemon.service.cameras import CameraFleet
from daemon.service.editor import ConfigEditor
from daemon.service.event_feed import EventFeed
from daemon.service.fleet import FleetMember
from daemon.service.http import Endpoints, HttpServer
from daemon.service.metrics import Metrics
from daemon.service.notify import SystemdNotifier
from daemon.sources.gst import prefer_gpu_decoding
from plugins.interfaces import Detector, PluginError
from plugins.registry import load_classifier, load_detector

log = logging.getLogger(__name__)

# The main loop withholds systemd watchdog pings once the inference thread has not come round for this
# long (it turns at least every 0.25 s plus one batch), so a hung detector gets the service restarted.
INFERENCE_STALL_S = 20.0
LOOP_S = 0.2  # the main loop's turn: watchdog pings and the exit checks run at least this often
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Daemon:
    def __init__(self, config: Config, config_path: str | None = None,
                 notifier: SystemdNotifier | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.notifier = notifier or SystemdNotifier(None)
        self.metrics = Metrics()
        self.preview = PreviewStore()
        # Signal numbers, as gunicorn's arbiter queues them: handlers only put_nowait here (SimpleQueue.put is
        # reentrant, so no lock is taken inside a handler); the main loop takes them off and acts.
        self.signals: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.batcher = FreshestFrameBatcher(config.batch.max_batch, config.batch.max_wait_ms / 1000)
        self.publisher = RedisPublisher(config.redis, self.metrics, config.spool)
        self.feed = EventFeed(self.metrics.event_feed_skipped.inc)
        self.detector: Detector | None = None
        self.snapshots: SnapshotWriter | None = None
        self.captions: CaptionStage | None = None
        self.worker: InferenceWorker | None = None
        self.cameras: CameraFleet | None = None
        self.http: HttpServer | None = None
        self.fleet: FleetMember | None = None
        self._inference_stall_logged = False

    # -- start and stop ------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the model and start every stage. Raises PluginError/OSError for problems a user can fix."""
        config = self.config
        # A TensorRT engine is built for the batch the batcher fills (config.detector itself stays as read, so
        # a reload compares it with the file's).
        detector_config = config.detector.model_copy(
            update={"max_batch": config.detector.max_batch or config.batch.max_batch})
        self.detector = detector = load_detector(detector_config)
        check_camera_classes(detector, config.cameras)
        classifiers = CropClassifiers([(c, load_classifier(c)) for c in config.classifiers])
        auth = HttpAuth.from_config(config.http.auth) if config.http.auth is not None else None
        editor = ConfigEditor(self.config_path, config.http.allow_config_writes,
                              lambda: self.signals.put_nowait(signal.SIGHUP)) if self.config_path else None
        endpoints = Endpoints(self.metrics, self.camera_status, self.readiness, self.preview,
                              config.http.preview_clients, {"runtime": detector.runtime, "device": detector.device},
                              self.feed, self.camera_rules, editor, auth, self.snapshot_image, self.fleet_status)
        try:
            self.http = HttpServer(config.http.host, config.http.port, endpoints)
        except OSError as error:
            raise OSError(error.errno, f"http.listen {config.http.listen}: {error.strerror or error}") from None
        if detector.device.startswith("cuda"):
            decoders = prefer_gpu_decoding()
            log.info("decoding: %s", f"on the GPU ({', '.join(decoders)})" if decoders
                     else "on the CPU (no NVDEC decoder element: GStreamer's nvcodec plugin or driver missing)")
        self.preview.names = detector.names
        self.metrics.model_info.info({
            "plugin": config.detector.plugin, "model": redact_url(config.detector.model),
            "device": detector.device, "runtime": detector.runtime, "imgsz": str(config.detector.imgsz),
        })
        self.metrics.publish_queue_capacity.set(config.redis.queue_size)
        if config.snapshots.enabled:
            self.snapshots = SnapshotWriter(config.snapshots, config.redis, detector.names, self.metrics)
            self.snapshots.start()
        self.captions = CaptionStage(config.captions, detector.names, self.metrics, self.submit, self.snapshots)
        self.captions.start(config.cameras)
        router = EventRouter(self.submit, self.metrics, self.snapshots, self.captions)
        self.worker = InferenceWorker(detector, self.batcher, config.tracker, config.detector.conf, classifiers,
                                      router, self.metrics, self.preview)
        self.cameras = CameraFleet(self.batcher, self.worker, self.metrics, self.preview)
        self.publisher.start()
        self.http.start()
        self.worker.start()
        if config.fleet is not None:  # the fleet starts the cameras this member wins
            self.fleet = FleetMember(config.fleet, config.cameras, self.metrics, self.cameras.add,
                                     self.cameras.remove)
            self.fleet.start()
        else:
            for camera in config.cameras:
                if camera.enabled:
                    self.cameras.add(camera)
        log.info("argusd started: %d camera(s)%s, events to %s stream %s", len(self.cameras.sources()),
                 f" (fleet member {self.fleet.member})" if self.fleet else "", redact_url(config.redis.url),
                 stream_for(config.redis.stream, "<camera>", config.redis.is_cluster))

    def shutdown(self) -> None:
        log.info("stopping")
        if self.fleet is not None:  # no more claims; the lease is revoked once the last events are out
            self.fleet.stop()
        self.preview.close()
        self.batcher.close()
        if self.cameras is not None:
            self.cameras.stop_all()
        if self.worker is not None:
            self.worker.stop()
            for camera in self.cameras.status() if self.cameras else []:  # what each camera's run came to
                log.info("camera %s: %d frame(s) received, %d analysed, %d skipped without motion, %d event(s)",
                         camera["id"], camera["frames_received"], camera["frames_analysed"],
                         camera["frames_skipped"], camera["events"])
        if self.captions is not None:  # before snapshots and publisher: its last captions use both
            self.captions.stop()
        if self.snapshots is not None:
            self.snapshots.stop()
        self.publisher.stop()
        if self.fleet is not None:
            self.fleet.leave()
        if self.http is not None:
            self.http.stop()
        produced = ((self.worker.events_produced if self.worker else 0)
                    + (self.captions.published if self.captions else 0))
        log.info("stopped: %d event(s) produced, %d published (%d replayed from the spool), %d left in the spool",
                 produced, self.publisher.published, self.publisher.replayed,
                 self.publisher.spool.pending if self.publisher.spool else 0)

    # -- the main loop -------------------------------------------------------------------------------

    def wait(self, exit_when_done: bool = False, max_seconds: float | None = None,
             on_turn: Callable[[], None] | None = None) -> None:
        """Run until a stop signal, ``max_seconds``, or (with ``exit_when_done``) every camera has finished
        and its frames are analysed. Signals that arrived together count once: a stop wins, then one reload.
        ``on_turn`` runs every turn (the offline progress display)."""
        deadline = time.monotonic() + max_seconds if max_seconds else None
        while True:
            pending = self._take_signals()
            if any(sig in STOP_SIGNALS for sig in pending):
                return
            if signal.SIGHUP in pending:
                self.notifier.reloading()
                self.reload()
                self.notifier.ready()
            self._feed_watchdog(self.worker.heartbeat if self.worker else time.monotonic())
            if on_turn is not None:
                on_turn()
            if deadline is not None and time.monotonic() >= deadline:
                log.info("run time limit reached")
                return
            if exit_when_done and self.cameras is not None and self.cameras.all_done():
                log.info("all cameras finished")
                return

    def _take_signals(self) -> set[int]:
        """Wait up to one turn for a signal, then take every other one already queued."""
        try:
            pending = {self.signals.get(timeout=LOOP_S)}
        except queue.Empty:
            return set()
        while True:
            try:
                pending.add(self.signals.get_nowait())
            except queue.Empty:
                return pending

    def _feed_watchdog(self, heartbeat: float) -> None:
        """Ping systemd's watchdog unless the inference thread last came round (``heartbeat``) too long ago."""
        stalled_for = time.monotonic() - heartbeat
        if stalled_for > INFERENCE_STALL_S:
            if not self._inference_stall_logged:
                log.error("inference thread stuck for %.0f s; withholding the systemd watchdog ping", stalled_for)
                self._inference_stall_logged = True
            return
        self._inference_stall_logged = False
        if self.notifier.watchdog_ping():
            self.notifier.status(self.status_line())

    def reload(self) -> None:
        """Re-read the config file and apply camera changes; keep the running config if it is invalid."""
        if self.config_path is None:
            log.warning("reload: no config file to re-read")
            return
        try:
            new = load_config(self.config_path)
            if self.detector is not None:
                check_camera_classes(self.detector, new.cameras)
        except (ConfigError, PluginError) as error:
            self.metrics.reloads.labels("rejected").inc()
            log.error("reload rejected, keeping the running config: %s", "; ".join(
                line.strip() for line in str(error).splitlines()))
            return
        if self.fleet is not None:
            self._reload_fleet(self.fleet, new.cameras)
        elif self.cameras is not None:
            self.cameras.apply(self.config.cameras, new.cameras)
        sections = ("detector", "batch", "tracker", "redis", "spool", "snapshots", "captions", "http", "log",
                    "fleet")
        changed = [name for name in sections if getattr(new, name) != getattr(self.config, name)]
        if changed:
            log.warning("reload: changes to %s take effect after a restart", ", ".join(changed))
        self.config = self.config.model_copy(update={"cameras": new.cameras})
        self.metrics.reloads.labels("applied").inc()
        log.info("reload: done, %d camera(s)", len(self.cameras.sources()) if self.cameras else 0)

    def _reload_fleet(self, fleet: FleetMember, cameras: list[CameraConfig]) -> None:
        """Restart the changed cameras this member runs; the fleet stops removed ones and claims new ones."""
        if self.cameras is None:
            return
        with fleet.camera_changes():
            running = fleet.running()
            self.cameras.apply([c for c in self.config.cameras if c.id in running],
                               [c for c in cameras if c.id in running])
            fleet.set_cameras(cameras)

    def submit(self, events: Sequence[Publishable]) -> None:
        """Where every event goes once decided (router and captions): the publisher, and the console's feed."""
        self.publisher.submit(events)
        self.feed.publish(events)

    # -- what the endpoints and systemd read ---------------------------------------------------------

    def camera_rules(self, camera_id: str) -> dict | None:
        """A camera's zones and lines as the running config has them (the console draws and edits them)."""
        camera = next((c for c in self.config.cameras if c.id == camera_id), None)
        if camera is None:
            return None
        return {"zones": [z.model_dump(mode="json", exclude_none=True) for z in camera.zones],
                "lines": [line.model_dump(mode="json", exclude_none=True) for line in camera.lines]}

    def snapshot_image(self, reference: dict) -> bytes | None:
        return self.snapshots.read(reference) if self.snapshots is not None else None

    def status_line(self) -> str:
        """One line for `systemctl status` (STATUS=)."""
        sources = self.cameras.sources() if self.cameras else []
        streaming = self.cameras.streaming() if self.cameras else 0
        return f"{streaming}/{len(sources)} camera(s) streaming, {self.publisher.published} event(s) published"

    def events_by_type(self, camera_id: str) -> dict[str, int]:
        return self.worker.events_by_type(camera_id) if self.worker else {}

    def camera_status(self) -> list[dict]:
        """Every camera this daemon runs; in fleet mode also those other members own (``owner``)."""
        local = self.cameras.status() if self.cameras else []
        if self.fleet is None:
            return local
        view = self.fleet.view()
        here = {camera["id"] for camera in local}
        elsewhere = [{"id": camera.id, "state": "elsewhere", "owner": view.owners.get(camera.id)}
                     for camera in self.config.cameras if camera.enabled and camera.id not in here]
        return [camera | {"owner": view.member} for camera in local] + elsewhere

    def fleet_status(self) -> dict | None:
        """GET /fleet: None outside fleet mode."""
        return self.fleet.status() if self.fleet else None

    def readiness(self) -> tuple[bool, dict]:
        """Ready when the model is loaded, at least one camera streams, and events are delivered or kept:
        the memory queue has room (while Redis is away it drains to the spool, so a long outage alone is
        not a reason; only a spool that cannot take events lets it fill) and nothing was lost lately (a
        full spool drops its oldest events; ``events_problem`` says why)."""
        cameras = len(self.cameras.sources()) if self.cameras else 0
        streaming = self.cameras.streaming() if self.cameras else 0
        queued, capacity = self.publisher.queued, self.config.redis.queue_size
        problem = self.publisher.problem
        checks = {
            "model_loaded": self.detector is not None,
            # a fleet member may rightly have no camera (more members than cameras); it must reach etcd
            "camera_streaming": streaming > 0 or (self.fleet is not None and cameras == 0),
            "events_deliverable": queued < capacity,
            "events_kept": problem is None,
        }
        if self.fleet is not None:
            checks["fleet_connected"] = self.fleet.view().connected
        details = {"checks": checks, "cameras_streaming": streaming, "cameras": cameras,
                   "publish_queue": queued, "publish_queue_capacity": capacity,
                   "spool_events": self.publisher.spooled, "events_problem": problem}
        return all(checks.values()), details
