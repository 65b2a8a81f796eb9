"""Annotated JPEG snapshots of an object's best frame for its `new` and `end` events, written off the
inference thread (bounded queue + one worker; drops counted), into a directory with age/size retention
or into Redis keys with a TTL."""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time
from collections import deque
from pathlib import Path
from stat import S_ISREG

import numpy as np
import redis

from daemon.config.models import CAMERA_ID, RedisConfig, SnapshotConfig
from daemon.core.events import Event, EventType, iso_utc
from daemon.core.redact import redact_text
from daemon.outputs.annotate import annotate, encode_jpeg
from daemon.outputs.publisher import redis_client
from daemon.service.metrics import Metrics

log = logging.getLogger(__name__)

SNAPSHOT_TYPES = (EventType.NEW, EventType.END)
# What argusd names a snapshot: <directory>/<camera id>/<event id>.jpg, the event id being an object id (32
# lower-case hex digits), '-', its step, and '-caption' for a caption event's snapshot. Retention only ever
# touches files of exactly that shape, so foreign files in the directory are safe.
SNAPSHOT_NAME = re.compile(r"[0-9a-f]{32}-[0-9]+(-caption)?\.jpg")
RETENTION_CHECK_S = 30.0


class SnapshotWriter:
    def __init__(self, config: SnapshotConfig, redis_config: RedisConfig, names: dict[int, str],
                 metrics: Metrics) -> None:
        self.config = config
        self.names = names
        self.metrics = metrics
        self.directory = Path(config.path).resolve()
        self._queue: queue.Queue[tuple[dict, Event, str | None] | None] = queue.Queue(config.queue_size)
        self._client = redis_client(redis_config) if config.store == "redis" else None
        self._files: deque[tuple[float, int, Path]] = deque()  # (mtime, size, path), oldest first
        self._total_bytes = 0
        self._thread = threading.Thread(target=self._run, name="snapshots", daemon=True)

    def start(self) -> None:
        if self.config.store == "file":
            self.directory.mkdir(parents=True, exist_ok=True)
            self._index_existing()
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(30)
        if self._client is not None:
            self._client.close()

    def request(self, event: Event) -> dict | None:
        """Queue the snapshot of a new/end event; its reference for the event, or None when there is no
        frame or the queue is full (counted). Called on the inference thread: it never blocks."""
        if event.type not in SNAPSHOT_TYPES or event.best_frame is None:
            return None
        return self._enqueue(event, event.event_id, event.caption["text"] if event.caption else None)

    def request_captioned(self, event: Event, snapshot_id: str, caption: str) -> dict | None:
        """Queue a snapshot of ``event``'s best frame with ``caption`` written under it, stored under
        ``snapshot_id`` (the caption event's id). Called on caption workers; never blocks."""
        if event.best_frame is None:
            return None
        return self._enqueue(event, snapshot_id, caption)

    def _enqueue(self, event: Event, snapshot_id: str, caption: str | None) -> dict | None:
        if self.config.store == "file":
            reference = {"store": "file", "path": str(self.directory / event.camera / f"{snapshot_id}.jpg")}
        else:
            reference = {"store": "redis", "key": f"{self.config.key_prefix}{snapshot_id}"}
        try:
            self._queue.put_nowait((reference, event, caption))
        except queue.Full:
            self._drop("queue_full")
            return None
        return reference

    # -- worker --------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=RETENTION_CHECK_S)
            except queue.Empty:
                self._enforce_retention()
                continue
            if item is None:
                return
            reference, event, caption = item
            try:
                self._store(reference, self._render(event, caption))
            except (OSError, ValueError, redis.RedisError) as error:
                log.warning("snapshots: %s for event %s not stored: %s", reference.get("path") or reference["key"],
                            event.event_id, redact_text(str(error)))
                self._drop("error")
                continue
            self.metrics.snapshots_written.labels(event.camera).inc()

    def _render(self, event: Event, caption: str | None) -> bytes:
        best = event.best_frame
        if best is None:
            raise ValueError("no best frame to render")  # requests are only queued for events with one
        # The event's object is drawn last, so overlapping boxes never hide its label.
        others = [row for row in range(len(best.detections)) if row != best.row]
        detections = best.detections[np.array([*others, best.row], dtype=np.int64)]
        header = (f"{event.camera} {event.type} #{event.track_id} {event.label} {event.best_confidence:.2f} "
                  f"{iso_utc(event.at)}")
        text = f"{header}\n{caption}" if caption else header
        return encode_jpeg(annotate(best.image, detections, self.names, text), self.config.jpeg_quality)

    def read(self, reference: dict) -> bytes | None:
        """A stored snapshot (a reference this writer made, as events carry it); None until written or after
        retention removed it."""
        try:
            if self._client is not None:
                image = self._client.get(reference["key"])
                return image if isinstance(image, bytes) else None
            return Path(reference["path"]).read_bytes()
        except (OSError, KeyError, redis.RedisError):
            return None

    def _store(self, reference: dict, jpeg: bytes) -> None:
        if self._client is not None:  # store: redis
            self._client.set(reference["key"], jpeg, ex=self.config.ttl_s)
            return
        path = Path(reference["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(jpeg)
        os.replace(temporary, path)  # readers never see half a JPEG
        self._files.append((time.time(), len(jpeg), path))
        self._total_bytes += len(jpeg)
        self._enforce_retention()

    def _index_existing(self) -> None:
        """Index what earlier runs wrote, for retention: only argusd's own files (see ``is_own_snapshot``);
        nothing else under the directory is ever counted or deleted."""
        found = []
        for camera_directory in self.directory.iterdir():
            if not CAMERA_ID.fullmatch(camera_directory.name) or not camera_directory.is_dir():
                continue
            try:
                children = list(camera_directory.iterdir())
            except OSError:
                continue
            for path in children:
                if not SNAPSHOT_NAME.fullmatch(path.name):
                    continue
                try:
                    stat = path.lstat()
                except OSError:
                    continue
                if S_ISREG(stat.st_mode):  # not a link, a folder or a device that happens to be named so
                    found.append((stat.st_mtime, stat.st_size, path))
        self._files = deque(sorted(found))
        self._total_bytes = sum(size for _, size, _ in found)
        self._enforce_retention()

    def _enforce_retention(self) -> None:
        oldest_allowed = time.time() - self.config.max_age_s
        while self._files and (self._total_bytes > self.config.max_total_bytes or self._files[0][0] < oldest_allowed):
            _, size, path = self._files.popleft()
            self._total_bytes -= size
            path.unlink(missing_ok=True)
            self.metrics.snapshots_deleted.inc()

    def _drop(self, reason: str) -> None:
        self.metrics.snapshots_dropped.labels(reason).inc()
