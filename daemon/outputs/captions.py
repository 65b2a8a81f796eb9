"""The caption stage: describes objects in words without ever slowing detection.

The inference thread only queues a request for an event (which carries its object's story, kept by the
camera's rules); one
bounded queue and worker pool per configured captioner does the slow part (cropping, the plugin call, the
captioned snapshot) and hands a ``caption`` event to the publisher. A full queue drops the request,
counted. Semantics (docs/captions.md):

- every caption is published as its own ``caption`` event, ``<subject event_id>-caption``, after its
  subject event (requests are queued only once the subject was handed to the publisher);
- an ``end`` event carries the object's most recent caption that was ready when the object ended
  (``caption``: text, event_id, subject_event_id, captioner); the ``end``'s own caption, when ``end`` is
  captioned, can only follow as a ``caption`` event: ``end`` is never held back waiting for a model.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from daemon.config.models import CameraCaptionsConfig, CameraConfig, CaptionerConfig, CaptionsConfig
from daemon.core.events import CaptionEvent, Event, EventType, ObjectStory
from daemon.core.images import crop
from daemon.core.redact import redact_text
from daemon.outputs.snapshots import SnapshotWriter
from daemon.service.metrics import Metrics
from plugins.interfaces import Captioner, CaptionError, CaptionRequest
from plugins.registry import load_captioner

log = logging.getLogger(__name__)

SHUTDOWN_DRAIN_S = 5.0  # at shutdown, queued requests get this long; the rest are dropped (counted)
POLL_S = 0.2


@dataclass(frozen=True, slots=True)
class _Job:
    event: Event  # still holding best_frame and story: the image is cropped on the worker
    requested_at: float  # time.monotonic()


class _CaptionerPool:
    """One named captioner: its plugin, bounded queue and worker threads."""

    def __init__(self, name: str, config: CaptionerConfig, captioner: Captioner, stage: CaptionStage) -> None:
        self.name = name
        self.config = config
        self.captioner = captioner
        self.stage = stage
        self.metrics = stage.metrics
        self._queue: queue.Queue[_Job] = queue.Queue(config.queue_size)
        self._stop = threading.Event()
        self._abandoned = threading.Event()  # stop() gave up waiting: late results are dropped, not published
        self._deadline = math.inf
        self._threads = [threading.Thread(target=self._run, name=f"caption-{name}-{i}", daemon=True)
                         for i in range(config.workers)]
        self.metrics.add_captioner(name)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, job: _Job) -> None:
        """Never blocks: a full queue drops the request (counted)."""
        self.metrics.caption_requests.labels(self.name).inc()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self._drop("queue_full")
            return
        self.metrics.caption_queue.labels(self.name).set(self._queue.qsize())

    def stop(self, drain_s: float) -> None:
        """Caption what is queued for up to ``drain_s``, drop the rest (counted), then close the plugin."""
        self._deadline = time.monotonic() + drain_s
        self._stop.set()
        for thread in self._threads:
            thread.join(max(0.0, self._deadline - time.monotonic()) + 1.0)
        busy = [thread.name for thread in self._threads if thread.is_alive()]
        if busy:
            self._abandoned.set()
            log.warning("captions: %s still busy in the plugin at shutdown (%s); its result will be dropped",
                        self.name, ", ".join(busy))
        while self._take(block=False) is not None:
            self._drop("shutdown")
        if not busy:
            self.captioner.close()

    def _take(self, block: bool) -> _Job | None:
        try:
            job = self._queue.get(timeout=POLL_S) if block else self._queue.get_nowait()
        except queue.Empty:
            return None
        self.metrics.caption_queue.labels(self.name).set(self._queue.qsize())
        return job

    def _run(self) -> None:
        while True:
            job = self._take(block=not self._stop.is_set())
            if job is None:
                if self._stop.is_set():
                    return
                continue
            if self._stop.is_set() and time.monotonic() > self._deadline:
                self._drop("shutdown")
                continue
            batch = [job]
            while len(batch) < self.config.batch_size and (more := self._take(block=False)) is not None:
                batch.append(more)
            self._caption(batch)

    def _caption(self, batch: list[_Job]) -> None:
        requests = [CaptionRequest(job.event, replace(job.event.story or ObjectStory(),
                                                      in_view=self.stage.in_view(job.event)),
                                   self._image(job.event) if self.captioner.needs_image else None)
                    for job in batch]
        try:
            texts = self.captioner.caption(requests)
            if len(texts) != len(requests):
                raise CaptionError(f"returned {len(texts)} caption(s) for {len(requests)} request(s)")
        except CaptionError as error:
            log.warning("captions: %s failed for %d event(s): %s", self.name, len(batch), redact_text(str(error)))
            self.metrics.captions_failed.labels(self.name).inc(len(batch))
            return
        except Exception:  # a plugin bug must not end the worker
            log.exception("captions: %s raised for %d event(s)", self.name, len(batch))
            self.metrics.captions_failed.labels(self.name).inc(len(batch))
            return
        if self._abandoned.is_set():
            for _ in batch:
                self._drop("shutdown")
            return
        for job, text in zip(batch, texts, strict=True):
            text = " ".join(str(text).split())  # one line, whatever the model produced
            if not text:
                log.warning("captions: %s returned an empty caption for %s", self.name, job.event.event_id)
                self.metrics.captions_failed.labels(self.name).inc()
                continue
            self.stage.deliver(self.name, job, text)

    def _image(self, event: Event) -> np.ndarray | None:
        best = event.best_frame
        if best is None:
            return None
        if self.config.image == "frame":
            return best.image
        piece = crop(best.image, best.detections.xyxy[best.row], self.config.crop_margin)
        return best.image if piece is None else piece

    def _drop(self, reason: str) -> None:
        self.metrics.captions_dropped.labels(self.name, reason).inc()


class CaptionStage:
    """All captioners in use. ``attach`` and ``request`` are called on the inference thread and never block."""

    def __init__(self, config: CaptionsConfig, names: dict[int, str], metrics: Metrics,
                 publish: Callable[[Sequence[CaptionEvent]], None], snapshots: SnapshotWriter | None = None) -> None:
        self.config = config
        self.names = names
        self.metrics = metrics
        self.publish = publish
        self.snapshots = snapshots
        self.pools: dict[str, _CaptionerPool] = {}
        self.published = 0
        self._latest: dict[str, dict | None] = {}  # object_id -> latest caption, for live objects; under _lock
        self._latest_at: dict[str, float] = {}  # object_id -> captured_at of that caption's subject
        self._lock = threading.Lock()
        self._unloaded_warned: set[str] = set()

    def start(self, cameras: list[CameraConfig]) -> None:
        """Load the captioners the enabled cameras use (PluginError for a problem the user can fix)."""
        used = sorted({c.captions.captioner for c in cameras if c.enabled and c.captions is not None})
        for name in used:
            pool = _CaptionerPool(name, self.config.captioners[name], load_captioner(self.config.captioners[name]),
                                  self)
            pool.start()  # at once: a later captioner failing to load leaves only started pools to stop
            self.pools[name] = pool
            log.info("captions: captioner %s (%s) ready", name, self.config.captioners[name].plugin)

    def stop(self, drain_s: float = SHUTDOWN_DRAIN_S) -> None:
        for pool in self.pools.values():
            pool.stop(drain_s)

    @property
    def needs_images(self) -> bool:
        return any(pool.captioner.needs_image for pool in self.pools.values())

    def attach(self, events: list[Event], policy: CameraCaptionsConfig | None) -> list[Event]:
        """The events, each ``end`` carrying its object's latest ready caption."""
        if policy is None:
            return events
        attached = []
        with self._lock:
            for event in events:
                if event.type == EventType.NEW:
                    self._latest.setdefault(event.object_id, None)
                elif event.type == EventType.END:
                    self._latest_at.pop(event.object_id, None)
                    if (caption := self._latest.pop(event.object_id, None)) is not None:
                        event = replace(event, caption=caption)
                attached.append(event)
        return attached

    def request(self, events: list[Event], policy: CameraCaptionsConfig | None) -> None:
        """Queue captions for the events the camera's policy names; call after the events were handed to
        the publisher, so a caption never precedes its subject in the stream."""
        if policy is None:
            return
        pool = self.pools.get(policy.captioner)
        if pool is None and policy.captioner not in self._unloaded_warned:
            self._unloaded_warned.add(policy.captioner)
            log.warning("captions: captioner %s was not in use at start; restart argusd to load it",
                        policy.captioner)
        if pool is None:
            return
        for event in events:
            if event.type in policy.events:
                pool.submit(_Job(event, time.monotonic()))

    def in_view(self, event: Event) -> dict[str, int]:
        """Objects by label on the subject's best frame (itself included)."""
        best = event.best_frame
        if best is None:
            return {}
        return dict(Counter(self.names.get(c, str(c)) for c in best.detections.class_id.tolist()))

    def deliver(self, captioner: str, job: _Job, text: str) -> None:
        """Called on a worker: publish the caption event, remember it for the object's ``end``."""
        subject = job.event
        latency = time.monotonic() - job.requested_at
        self.metrics.caption_seconds.labels(captioner).observe(latency)
        event_id = f"{subject.event_id}-caption"
        snapshot = self.snapshots.request_captioned(subject, event_id, text) if self.snapshots else None
        now = time.time()
        caption = CaptionEvent(
            event_id=event_id, camera=subject.camera, at=now, object_id=subject.object_id,
            subject_event_id=subject.event_id, subject_type=subject.type, label=subject.label,
            track_id=subject.track_id, text=text, captioner=captioner, latency_s=round(latency, 3),
            captured_at=now, snapshot=snapshot,
        )
        with self._lock:
            # Workers finish out of order: keep the caption of the object's most recent subject.
            if subject.object_id in self._latest and subject.captured_at >= self._latest_at.get(
                    subject.object_id, -math.inf):
                self._latest[subject.object_id] = {"text": text, "event_id": event_id,
                                                   "subject_event_id": subject.event_id, "captioner": captioner}
                self._latest_at[subject.object_id] = subject.captured_at
            self.published += 1
        self.metrics.captions_completed.labels(captioner).inc()
        self.metrics.events_produced.labels(caption.camera, caption.type).inc()
        self.publish([caption])
