"""Prometheus metrics: one registry, one `argusd_` prefix, base units, low-cardinality labels."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from daemon import __version__
from daemon.core.events import EventType

# No `*_created` series: they double the series count and Prometheus does not use them.
disable_created_metrics()

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
# Every label value a labelled counter can take is created up front (at 0), so rate() and alert rules see
# a series from the first scrape instead of "no data" until the first drop.
FRAME_DROP_REASONS = ("rate_limit", "superseded")
FRAME_SKIP_REASONS = ("no_motion",)
EVENT_DROP_REASONS = ("queue_full", "spool_full", "spool_corrupt", "spool_error", "rejected", "shutdown")
CAPTION_DROP_REASONS = ("queue_full", "shutdown")
SNAPSHOT_DROP_REASONS = ("queue_full", "error")
RELOAD_RESULTS = ("applied", "rejected")
FLEET_HANDOVER_REASONS = ("acquired", "released", "fenced", "expired")
CAPTION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# Per-frame latency is compared across runs and against other systems: finer steps where frames usually land.
FRAME_LATENCY_BUCKETS = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25,
                         0.3, 0.35, 0.4, 0.5, 0.6, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes, fds, ...
        PlatformCollector(registry=r)  # python_info
        self.build_info = Info("argusd_build", "argusd version", registry=r)
        self.build_info.info({"version": __version__})
        self.frames_decoded = Counter(
            "argusd_frames_decoded", "Frames decoded by GStreamer, before the analysis-rate limit",
            ["camera"], registry=r)
        self.frames_received = Counter(
            "argusd_frames_received",
            "Frames that passed the analysis-rate limit and waited for inference (it pulls the newest)",
            ["camera"], registry=r)
        self.frames_analysed = Counter(
            "argusd_frames_analysed", "Frames that went through detection", ["camera"], registry=r)
        self.frames_dropped = Counter(
            "argusd_frames_dropped",
            "Frames not analysed, by reason: rate_limit (above the camera's fps, dropped in GStreamer), "
            "superseded (a newer frame replaced it before inference pulled it; it never entered Python)",
            ["camera", "reason"], registry=r)
        self.frames_skipped = Counter(
            "argusd_frames_skipped",
            "Frames received but not sent to the detector, by reason: no_motion (motion gating found the scene "
            "still; the objects last detected are kept)", ["camera", "reason"], registry=r)
        self.tracks_relinked = Counter(
            "argusd_tracks_relinked",
            "New tracks that continued an object lost for at most tracker.lost_timeout_s (it kept its object_id)",
            ["camera"], registry=r)
        self.camera_up = Gauge("argusd_camera_up", "1 while the camera is streaming", ["camera"], registry=r)
        self.camera_state = Gauge(
            "argusd_camera_state", "1 for the camera's current supervisor state", ["camera", "state"], registry=r)
        self.camera_reconnects = Counter(
            "argusd_camera_reconnects", "Pipeline rebuilds after an error, stall or end of stream",
            ["camera"], registry=r)
        self.camera_stalls = Counter(
            "argusd_camera_stalls",
            "Times a streaming camera delivered no frame for its watchdog_s (a hung source, not back-pressure: "
            "back-pressure shows as argusd_frames_dropped_total{reason=\"superseded\"})", ["camera"], registry=r)
        self.fleet_members = Gauge("argusd_fleet_members", "Live fleet members this member sees in etcd",
                                   registry=r)
        self.fleet_cameras_owned = Gauge("argusd_fleet_cameras_owned", "Cameras this fleet member analyses",
                                         registry=r)
        self.fleet_camera_owned = Gauge(
            "argusd_fleet_camera_owned", "1 while this fleet member holds the camera (summed over members: the "
            "assignment)", ["camera"], registry=r)
        self.fleet_etcd_up = Gauge("argusd_fleet_etcd_up", "1 while this fleet member's last etcd call worked",
                                   registry=r)
        self.fleet_handovers = Counter(
            "argusd_fleet_camera_handovers",
            "Cameras this member started or stopped for the fleet, by reason: acquired, released (another member "
            "wins it now), fenced (no etcd keep-alive: stopped before the lease could expire), expired",
            ["reason"], registry=r)
        for reason in FLEET_HANDOVER_REASONS:
            self.fleet_handovers.labels(reason)
        self.reloads = Counter(
            "argusd_config_reloads", "Configuration reloads (SIGHUP), by result: applied or rejected",
            ["result"], registry=r)
        self.inference_seconds = Histogram(
            "argusd_inference_seconds", "Detector time per batch", buckets=LATENCY_BUCKETS, registry=r)
        self.inference_errors = Counter(
            "argusd_inference_errors", "Batches whose analysis raised an error (logged with a traceback)",
            registry=r)
        self.crops_classified = Counter(
            "argusd_crops_classified", "Object crops run through the crop classifiers", registry=r)
        self.batch_size = Histogram(
            "argusd_batch_size", "Frames per inference batch", buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64),
            registry=r)
        self.events_produced = Counter(
            "argusd_events_produced", "Events produced by the lifecycle", ["camera", "type"], registry=r)
        self.events_published = Counter(
            "argusd_events_published", "Events acknowledged by Redis", ["camera", "type"], registry=r)
        self.events_dropped = Counter(
            "argusd_events_dropped",
            "Events lost, by reason: queue_full, spool_full, spool_corrupt, spool_error (the spool could not be "
            "written and memory overflowed), rejected (Redis refused the entry), shutdown", ["reason"], registry=r)
        self.publish_queue = Gauge(
            "argusd_publish_queue_events", "Events waiting to be published", registry=r)
        self.redis_up = Gauge("argusd_redis_up", "1 while the last Redis command succeeded", registry=r)
        self.capture_to_publish_seconds = Histogram(
            "argusd_capture_to_publish_seconds", "From frame capture to Redis acknowledgement of its event",
            buckets=LATENCY_BUCKETS, registry=r)
        self.capture_to_analysed_seconds = Histogram(
            "argusd_capture_to_analysed_seconds",
            "Per analysed frame: from capture (the frame leaving GStreamer) to the end of its detection, "
            "tracking and event generation (its events, if any, are then queued for Redis)",
            buckets=FRAME_LATENCY_BUCKETS, registry=r)
        self.model_info = Info("argusd_model", "Detector model and device", registry=r)
        self.events_spooled = Counter(
            "argusd_events_spooled", "Events written to the local spool while Redis was unreachable or slow",
            registry=r)
        self.events_replayed = Counter(
            "argusd_events_replayed", "Spooled events delivered to Redis (also counted as published)", registry=r)
        self.spool_bytes = Gauge("argusd_spool_bytes", "Size of the spool on disk", registry=r)
        self.spool_events = Gauge("argusd_spool_events", "Spooled events waiting for Redis", registry=r)
        self.spool_capacity = Gauge(
            "argusd_spool_capacity_bytes", "Spool size cap (spool.max_bytes); beyond it the oldest events are "
            "dropped", registry=r)
        self.publish_seconds = Histogram(
            "argusd_publish_seconds", "Redis round trip of one pipelined XADD batch", buckets=LATENCY_BUCKETS,
            registry=r)
        self.snapshots_written = Counter(
            "argusd_snapshots_written", "Annotated event snapshots stored", ["camera"], registry=r)
        self.snapshots_dropped = Counter(
            "argusd_snapshots_dropped",
            "Snapshots not stored, by reason: queue_full (encoder behind), error (write or Redis failed)",
            ["reason"], registry=r)
        self.snapshots_deleted = Counter(
            "argusd_snapshots_deleted", "Snapshot files removed by retention (max age or total size)", registry=r)
        self.camera_clock_offset = Gauge(
            "argusd_camera_clock_offset_seconds",
            "clock: camera only: the camera's clock minus this host's, measured on its newest frame that carried "
            "the camera's RTCP time (the frame's capture by the camera's clock minus its arrival here, so the "
            "network and decoding delay read as a few tens of ms behind); 0 until its first sender report. "
            "Absent for cameras timed by the host", ["camera"], registry=r)
        self.camera_fps_target = Gauge(
            "argusd_camera_fps_target", "Configured analysis frames per second", ["camera"], registry=r)
        self.camera_last_analysed = Gauge(
            "argusd_camera_last_analysed_timestamp_seconds",
            "Capture time (Unix seconds) of the camera's most recent analysed frame, or frame skipped for lack "
            "of motion (until the first: the time the camera was added)", ["camera"], registry=r)
        self.publish_queue_capacity = Gauge(
            "argusd_publish_queue_capacity_events", "Events the publish queue holds before it drops the oldest",
            registry=r)
        self.preview_clients = Gauge(
            "argusd_preview_clients", "Open /cameras/{id}/preview.mjpg streams", registry=r)
        self.preview_rejected = Counter(
            "argusd_preview_rejected", "Preview streams refused because the client limit was reached",
            registry=r)
        self.event_feed_skipped = Counter(
            "argusd_event_feed_skipped", "Events a console feed viewer missed because it fell too far behind",
            registry=r)
        self.caption_requests = Counter(
            "argusd_caption_requests", "Caption requests made for events (queued or dropped)", ["captioner"],
            registry=r)
        self.captions_completed = Counter(
            "argusd_captions_completed", "Captions made and handed to the publisher", ["captioner"], registry=r)
        self.captions_dropped = Counter(
            "argusd_captions_dropped",
            "Caption requests abandoned, by reason: queue_full (the captioner is behind), shutdown (still "
            "queued when the daemon stopped)", ["captioner", "reason"], registry=r)
        self.captions_failed = Counter(
            "argusd_captions_failed", "Caption requests the plugin failed (logged): server down, timeout, bad "
            "reply, empty text", ["captioner"], registry=r)
        self.caption_seconds = Histogram(
            "argusd_caption_seconds", "From the caption request (on the inference thread) to its text, queue "
            "wait included", ["captioner"], buckets=CAPTION_BUCKETS, registry=r)
        self.caption_queue = Gauge(
            "argusd_caption_queue_requests", "Caption requests waiting for a worker", ["captioner"], registry=r)
        for reason in EVENT_DROP_REASONS:
            self.events_dropped.labels(reason)
        for reason in SNAPSHOT_DROP_REASONS:
            self.snapshots_dropped.labels(reason)
        for result in RELOAD_RESULTS:
            self.reloads.labels(result)

    def add_captioner(self, name: str) -> None:
        """Create a captioner's series at 0, so drops and failures have a series before the first one."""
        for counter in (self.caption_requests, self.captions_completed, self.captions_failed):
            counter.labels(name)
        for reason in CAPTION_DROP_REASONS:
            self.captions_dropped.labels(name, reason)
        self.caption_seconds.labels(name)
        self.caption_queue.labels(name).set(0)

    def add_camera(self, camera_id: str, fps_target: float,
                   clock_offset_s: Callable[[], float] | None = None) -> None:
        """Create the camera's series at 0 so dashboards and alerts see it before its first frame; until
        then its last-analysed time is the time it was added, so a camera never analysed looks stalled.
        ``clock_offset_s`` (cameras timed by their own clock only) is read when the metrics are scraped."""
        if clock_offset_s is not None:
            self.camera_clock_offset.labels(camera_id).set_function(clock_offset_s)
        self.camera_fps_target.labels(camera_id).set(fps_target)
        self.camera_last_analysed.labels(camera_id).set(time.time())
        self.camera_up.labels(camera_id)
        for counter in (self.frames_decoded, self.frames_received, self.frames_analysed, self.camera_reconnects,
                        self.camera_stalls, self.snapshots_written, self.tracks_relinked):
            counter.labels(camera_id)
        for reason in FRAME_DROP_REASONS:
            self.frames_dropped.labels(camera_id, reason)
        for reason in FRAME_SKIP_REASONS:  # 0 for a camera without motion gating: it skips nothing
            self.frames_skipped.labels(camera_id, reason)
        for event_type in EventType:
            self.events_produced.labels(camera_id, event_type.value)
            self.events_published.labels(camera_id, event_type.value)

    def add_fleet_camera(self, camera_id: str) -> None:
        """A camera of the fleet's list: 0 until this member holds it."""
        self.fleet_camera_owned.labels(camera_id)

    def forget_camera(self, camera_id: str) -> None:
        """Drop a removed camera's gauges so dashboards do not show it as down (or stalled) forever."""
        for gauge in (self.camera_up, self.camera_state, self.camera_fps_target, self.camera_last_analysed,
                      self.camera_clock_offset):
            for labels in list(gauge._metrics):  # noqa: SLF001 (prometheus_client has no public lister)
                if labels[0] == camera_id:
                    gauge.remove(*labels)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
