"""Publishes events to Redis Streams from its own thread: pipelined, spooled to disk while Redis is away.

Order of delivery: the spool (older events) first, then the in-memory queue. While Redis is down or
slower than ``command_timeout_s``, the publisher moves every queued event to the spool and retries with
jittered exponential backoff; once a batch succeeds it replays the spool, oldest first, before new events.
An event leaves the memory queue or the spool only after Redis acknowledged it, so delivery is
at-least-once; with ``XADD IDMP`` (Redis 8.6+) the server drops re-sent duplicates, and on older servers
consumers de-duplicate on ``event_id`` (see daemon/client/consumer.py).
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from daemon.config.models import RedisConfig, SpoolConfig
from daemon.core.backoff import Backoff
from daemon.core.events import CaptionEvent, Event
from daemon.core.redact import redact_text, redact_url
from daemon.outputs.spool import Spool
from daemon.service.metrics import Metrics

log = logging.getLogger(__name__)

IDMP_MIN_VERSION = (8, 6)
HEALTH_CHECK_S = 5.0  # PING this often when idle, so argusd_redis_up is true even without events


Publishable = Event | CaptionEvent


@dataclass(frozen=True, slots=True)
class WireEvent:
    """An event as it goes to Redis: the stream fields plus the capture time for the latency metric."""

    event_id: str
    type: str
    camera: str
    captured_at: float
    data: str  # the full event as JSON

    @classmethod
    def of(cls, event: Publishable) -> WireEvent:
        return cls(event.event_id, event.type, event.camera, event.captured_at, event.to_json())

    @classmethod
    def from_json(cls, data: bytes) -> WireEvent:
        fields = json.loads(data)
        return cls(fields["event_id"], fields["type"], fields["camera"], float(fields.get("captured_at", 0.0)),
                   data.decode())


def redis_client(config: RedisConfig) -> redis.Redis:
    """A client with the configured timeouts and TLS, and no hidden retries (callers own the backoff)."""
    options: dict = {
        "socket_timeout": config.command_timeout_s,
        "socket_connect_timeout": config.connect_timeout_s,
        "retry": Retry(NoBackoff(), 0),
    }
    if config.url.startswith("rediss://"):
        options.update(ssl_ca_certs=config.tls_ca_file, ssl_certfile=config.tls_cert_file,
                       ssl_keyfile=config.tls_key_file, ssl_cert_reqs="required" if config.tls_verify else "none",
                       ssl_check_hostname=config.tls_verify)
    return redis.Redis.from_url(config.url, **options)


def stream_for(template: str, camera: str) -> str:
    return template.format(camera=camera) if "{camera}" in template else template


class RedisPublisher:
    def __init__(self, config: RedisConfig, metrics: Metrics, spool_config: SpoolConfig | None = None) -> None:
        self.config = config
        self.spool_config = spool_config
        self.metrics = metrics
        self.spool: Spool | None = None
        self._queue: collections.deque[Publishable] = collections.deque()
        self._cond = threading.Condition()
        self._stop = False
        self._flush_deadline = 0.0
        self._client = redis_client(config)
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self._idmp: bool | None = None  # None: not yet probed on the current connection
        self._up: bool | None = None  # None until the first command tells
        self._down_since = 0.0
        self._last_drop_log = 0.0
        self._backoff = Backoff(config.backoff_initial_s, config.backoff_max_s)
        self.published = 0
        self.replayed = 0
        self.dropped = 0

    # -- interface for the daemon ----------------------------------------------------------------------

    def start(self) -> None:
        if self.spool_config is not None:
            try:
                self.spool = Spool(self.spool_config.path, self.spool_config.max_bytes,
                                   self.spool_config.fsync, self.spool_config.fsync_interval_s, self._count_drop)
            except OSError as error:
                log.error("spool: cannot use %s (%s); events are held in memory only while Redis is down",
                          self.spool_config.path, error.strerror or error)
            self._update_spool_metrics()
        self._thread.start()

    def submit(self, events: Sequence[Publishable]) -> None:
        """Queue events for publishing; never blocks. Called from the inference thread."""
        if not events:
            return
        with self._cond:
            overflow = len(self._queue) + len(events) - self.config.queue_size
            for _ in range(max(0, overflow)):
                # Only reached when the spool cannot take them either (unusable, or the disk is slower
                # than the camera): the oldest queued event makes room, counted.
                self._queue.popleft()
            self._queue.extend(events)
            self.metrics.publish_queue.set(len(self._queue))
            self._cond.notify()
        if overflow > 0:
            self._count_drop("queue_full", overflow)

    def stop(self, flush_timeout: float = 10.0) -> None:
        """Publish what is queued (up to ``flush_timeout``); spool what could not be sent; stop."""
        with self._cond:
            self._flush_deadline = time.monotonic() + flush_timeout
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():  # not started when the daemon failed before start()
            self._thread.join(flush_timeout + self.config.command_timeout_s + 5)
        with self._cond:
            left = list(self._queue)
            self._queue.clear()
        if left and not self._spill(left):
            self._count_drop("shutdown", len(left))
            log.error("publisher: %d event(s) not delivered at shutdown (Redis unreachable, no spool)", len(left))
        if self.spool is not None:
            if self.spool.pending:
                log.warning("publisher: %d event(s) left in the spool %s; they are sent on the next start",
                            self.spool.pending, self.spool.directory)
            self.spool.close()
        self._client.close()

    @property
    def pending(self) -> int:
        """Events not yet acknowledged by Redis (memory and spool)."""
        return len(self._queue) + (self.spool.pending if self.spool else 0)

    # -- publisher thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue and not self._spool_pending() and not self._stop:
                    self._cond.wait(HEALTH_CHECK_S)
                stopping = self._stop
            if stopping and (self._up is False or time.monotonic() >= self._flush_deadline
                             or not (self._queue or self._spool_pending())):
                return
            if not self._queue and not self._spool_pending():
                self._health_check()
                continue
            if self._publish_next():
                continue
            self._wait_backoff()

    def _publish_next(self) -> bool:
        """Send the next batch: spooled events first. False when Redis failed."""
        spool = self.spool
        if spool is not None and spool.pending > 0:
            if len(self._queue) >= self.config.queue_size // 2:
                self._spill_queue()  # a long replay: keep memory small, order is kept (spool tail is newest)
            batch = spool.read(self.config.batch_size)
            wire = [WireEvent.from_json(record) for record in batch.records]
            if not self._send(wire):
                return False
            spool.commit(batch)
            self.replayed += len(wire)
            self._update_spool_metrics()
            self.metrics.events_replayed.inc(len(wire))
            return True
        with self._cond:
            events = [self._queue[i] for i in range(min(self.config.batch_size, len(self._queue)))]
        if not self._send([WireEvent.of(event) for event in events]):
            self._spill_queue()
            return False
        self._remove_from_queue(events)
        return True

    def _remove_from_queue(self, events: list[Publishable]) -> None:
        """Remove events taken from the head of the queue; submit() may have dropped some meanwhile."""
        taken = {id(event) for event in events}
        with self._cond:
            while self._queue and id(self._queue[0]) in taken:
                self._queue.popleft()
            self.metrics.publish_queue.set(len(self._queue))

    def _send(self, batch: list[WireEvent]) -> bool:
        if not batch:
            return True
        started = time.perf_counter()
        try:
            if self._idmp is None:
                self._idmp = self._server_supports_idmp()
            pipe = self._client.pipeline(transaction=False)
            for event in batch:
                pipe.execute_command(*self._xadd_args(event))
            pipe.execute()
        except (redis.RedisError, OSError) as error:
            self._went_down(error)
            return False
        acknowledged = time.time()
        self.metrics.publish_seconds.observe(time.perf_counter() - started)
        self._came_up()
        self.published += len(batch)
        for (camera, kind), count in collections.Counter((e.camera, e.type) for e in batch).items():
            self.metrics.events_published.labels(camera, kind).inc(count)
        for event in batch:
            self.metrics.capture_to_publish_seconds.observe(max(0.0, acknowledged - event.captured_at))
        return True

    def _xadd_args(self, event: WireEvent) -> list:
        args: list = ["XADD", stream_for(self.config.stream, event.camera)]
        if self._idmp:
            args += ["IDMP", self.config.producer_id, event.event_id]
        return [*args, "MAXLEN", "~", self.config.maxlen, "*",
                "event_id", event.event_id, "type", event.type, "camera", event.camera, "data", event.data]

    def _server_supports_idmp(self) -> bool:
        if self.config.idempotent == "off":
            return False
        try:
            version = str(self._client.info("server").get("redis_version", "0"))
        except redis.ResponseError:  # INFO denied by an ACL: assume an older server
            return False
        supported = tuple(int(part) for part in version.split(".")[:2] if part.isdigit()) >= IDMP_MIN_VERSION
        log.info("publisher: Redis %s; %s", version, "XADD IDMP de-duplicates re-sent events" if supported
                 else "no XADD IDMP (needs 8.6+), consumers de-duplicate on event_id")
        return supported

    def _health_check(self) -> None:
        try:
            self._client.ping()
        except (redis.RedisError, OSError) as error:
            self._went_down(error)
            self._wait_backoff()
            return
        self._came_up()

    def _went_down(self, error: Exception) -> None:
        self._idmp = None  # the server may come back as a different version
        self.metrics.redis_up.set(0)
        if self._up is not False:
            log.warning("publisher: Redis at %s unavailable (%s); spooling events and retrying",
                        redact_url(self.config.url), redact_text(str(error)) or type(error).__name__)
            self._down_since = time.monotonic()
        self._up = False

    def _came_up(self) -> None:
        self.metrics.redis_up.set(1)
        if self._up is False:
            log.info("publisher: Redis reachable again after %.1f s; %d spooled event(s) to replay",
                     time.monotonic() - self._down_since, self.spool.pending if self.spool else 0)
        self._up = True
        self._backoff.reset()

    def _wait_backoff(self) -> None:
        """Sleep the jittered backoff; meanwhile move newly submitted events to the spool."""
        deadline = time.monotonic() + self._backoff.next_wait()
        while True:
            self._spill_queue()
            remaining = deadline - time.monotonic()
            with self._cond:
                if self._stop or remaining <= 0:
                    return
                if not self._queue:
                    self._cond.wait(remaining)

    # -- spool -----------------------------------------------------------------------------------------

    def _spool_pending(self) -> bool:
        return self.spool is not None and self.spool.pending > 0

    def _spill_queue(self) -> None:
        with self._cond:
            events = list(self._queue)
        if events and self._spill(events):
            self._remove_from_queue(events)

    def _spill(self, events: list[Publishable]) -> bool:
        """Append events to the spool; False when there is no usable spool (they stay where they are)."""
        if self.spool is None:
            return False
        try:
            self.spool.append([event.to_json().encode() for event in events])
        except OSError as error:
            log.error("spool: write to %s failed (%s); holding events in memory", self.spool.directory,
                      error.strerror or error)
            return False
        self.metrics.events_spooled.inc(len(events))
        self._update_spool_metrics()
        return True

    def _update_spool_metrics(self) -> None:
        if self.spool is not None:
            self.metrics.spool_bytes.set(self.spool.bytes)
            self.metrics.spool_events.set(self.spool.pending)

    def _count_drop(self, reason: str, count: int) -> None:
        self.dropped += count
        self.metrics.events_dropped.labels(reason).inc(count)
        if reason != "queue_full" or time.monotonic() - self._last_drop_log > 10:
            self._last_drop_log = time.monotonic()
            log.warning("publisher: %d event(s) dropped (%s); argusd_events_dropped_total counts them all",
                        count, reason)
