"""The caption stage: describes objects in words without ever slowing detection.

The inference thread only records each object's story (crossings, zone stays) and queues a request; one
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

import json
import logging
import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime

import numpy as np

from daemon.config.models import CameraCaptionsConfig, CameraConfig, CaptionerConfig, CaptionsConfig
from daemon.analytics.lifecycle import SCHEMA_VERSION, Event, iso_utc
from daemon.service.metrics import Metrics
from plugins.interfaces import Captioner, CaptionError, CaptionRequest, Crossing, ObjectStory, load_captioner
from daemon.core.redact import redact_text
from daemon.outputs.snapshots import SnapshotWriter

log = logging.getLogger(__name__)

SHUTDOWN_DRAIN_S = 5.0  # at shutdown, queued requests get this long; the rest are dropped (counted)
MAX_STORY_ITEMS = 64  # crossings and zone stays remembered per object
POLL_S = 0.2


@dataclass(frozen=True, slots=True)
class CaptionEvent:
    """A caption of one earlier event (the subject), published as its own event."""

    event_id: str  # <subject event_id>-caption
    camera: str
    ts: str  # when the text was ready
    object_id: str
    subject_event_id: str
    subject_type: str
    label: str
    track_id: int
    text: str
    captioner: str  # the configured captioner name
    latency_s: float  # request to text, queue wait included
    captured_at: float  # when the text was ready (Unix s); capture-to-publish then measures publishing only
    snapshot: dict | None = None  # the subject's best frame with this caption drawn on it
    type: str = "caption"
    schema_version: str = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return {f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not None}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


def epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


@dataclass(slots=True)
class _Stay:
    zone: str
    entered: float
    left: float | None = None


@dataclass(slots=True)
class _StoryBuilder:
    """An object's rule events so far; touched by the inference thread only."""

    crossings: list[Crossing] = field(default_factory=list)
    stays: list[_Stay] = field(default_factory=list)
    loitered: list[str] = field(default_factory=list)

    def record(self, event: Event) -> None:
        at = epoch(event.ts)
        if event.type == "line_cross" and len(self.crossings) < MAX_STORY_ITEMS:
            self.crossings.append(Crossing(event.rule, event.direction, event.direction_name))
        elif event.type == "zone_enter" and len(self.stays) < MAX_STORY_ITEMS:
            self.stays.append(_Stay(event.rule, at))
        elif event.type == "zone_exit":
            for stay in reversed(self.stays):
                if stay.zone == event.rule and stay.left is None:
                    stay.left = at
                    break
        elif event.type == "loiter" and event.rule not in self.loitered:
            self.loitered.append(event.rule)

    def freeze(self, now: float) -> ObjectStory:
        return ObjectStory(
            crossings=tuple(self.crossings),
            zone_stays=tuple((s.zone, round(max(0.0, (s.left or now) - s.entered), 3)) for s in self.stays),
            loitered=tuple(self.loitered),
        )


@dataclass(frozen=True, slots=True)
class _Job:
    event: Event  # still holding best_frame: the image is cropped on the worker
    story: ObjectStory
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
        requests = [CaptionRequest(job.event, replace(job.story, in_view=self.stage.in_view(job.event)),
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
        height, width = best.image.shape[:2]
        x1, y1, x2, y2 = (float(v) for v in best.detections.xyxy[best.row])
        margin_x, margin_y = (x2 - x1) * self.config.crop_margin, (y2 - y1) * self.config.crop_margin
        left, top = max(0, int(x1 - margin_x)), max(0, int(y1 - margin_y))
        right, bottom = min(width, math.ceil(x2 + margin_x)), min(height, math.ceil(y2 + margin_y))
        if right <= left or bottom <= top:
            return best.image
        return best.image[top:bottom, left:right]

    def _drop(self, reason: str) -> None:
        self.metrics.captions_dropped.labels(self.name, reason).inc()


class CaptionStage:
    """All captioners in use. ``attach`` and ``request`` are called on the inference thread and never block."""

    def __init__(self, config: CaptionsConfig, names: dict[int, str], metrics: Metrics,
                 publish: Callable[[list[CaptionEvent]], None], snapshots: SnapshotWriter | None = None) -> None:
        self.config = config
        self.names = names
        self.metrics = metrics
        self.publish = publish
        self.snapshots = snapshots
        self.pools: dict[str, _CaptionerPool] = {}
        self.published = 0
        self._stories: dict[str, _StoryBuilder] = {}  # object_id -> story; inference thread only
        self._latest: dict[str, dict | None] = {}  # object_id -> latest caption, for live objects; under _lock
        self._latest_at: dict[str, float] = {}  # object_id -> captured_at of that caption's subject
        self._lock = threading.Lock()
        self._unloaded_warned: set[str] = set()

    def start(self, cameras: list[CameraConfig]) -> None:
        """Load the captioners the enabled cameras use (PluginError for a problem the user can fix)."""
        used = sorted({c.captions.captioner for c in cameras if c.enabled and c.captions is not None})
        for name in used:
            self.pools[name] = _CaptionerPool(name, self.config.captioners[name],
                                              load_captioner(self.config.captioners[name]), self)
            log.info("captions: captioner %s (%s) ready", name, self.config.captioners[name].plugin)
        for pool in self.pools.values():
            pool.start()

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
                if event.type == "new":
                    self._latest.setdefault(event.object_id, None)
                elif event.type == "end":
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
        for event in events:
            story = self._stories.get(event.object_id)
            if story is None:
                story = self._stories[event.object_id] = _StoryBuilder()
            story.record(event)
            if pool is not None and event.type in policy.events:
                pool.submit(_Job(event, story.freeze(epoch(event.ts)), time.monotonic()))
            if event.type == "end":
                del self._stories[event.object_id]

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
            event_id=event_id, camera=subject.camera, ts=iso_utc(now), object_id=subject.object_id,
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
        self.publish([caption])
