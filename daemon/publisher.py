"""Publishes events to a Redis Stream from its own thread, pipelined, retrying while Redis is down."""

from __future__ import annotations

import collections
import logging
import random
import threading
import time

import redis

from .config import RedisConfig
from .events import Event
from .metrics import Metrics
from .redact import redact_url

log = logging.getLogger(__name__)


class RedisPublisher:
    """Bounded in-memory queue in front of ``XADD <stream> MAXLEN ~ N``.

    Events leave the queue only after Redis acknowledged them, so a failed pipeline is retried whole;
    consumers de-duplicate on ``event_id``. When the queue is full the oldest event is dropped and counted.
    """

    def __init__(self, config: RedisConfig, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self._queue: collections.deque[Event] = collections.deque()
        self._cond = threading.Condition()
        self._stop = False
        self._client = redis.Redis.from_url(config.url, socket_timeout=5, socket_connect_timeout=3)
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self._in_flight = 0
        self._batch_limit = min(500, config.queue_size // 2)
        self.published = 0
        self.dropped = 0
        self._down_logged = False

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def submit(self, events: list[Event]) -> None:
        if not events:
            return
        with self._cond:
            for event in events:
                if len(self._queue) >= self.config.queue_size:
                    # The events being sent stay; the oldest one behind them makes room.
                    del self._queue[self._in_flight]
                    self.dropped += 1
                    self.metrics.events_dropped.labels("queue_full").inc()
                self._queue.append(event)
            self.metrics.publish_queue.set(len(self._queue))
            self._cond.notify()

    def stop(self, flush_timeout: float = 10.0) -> None:
        """Publish what is queued (up to ``flush_timeout``), then stop; report what could not be sent."""
        deadline = time.monotonic() + flush_timeout
        with self._cond:
            while self._queue and time.monotonic() < deadline and self._thread.is_alive():
                self._cond.wait(0.1)
            self._stop = True
            self._cond.notify_all()
        self._thread.join(5)
        if self._queue:
            lost = len(self._queue)
            self.metrics.events_dropped.labels("shutdown").inc(lost)
            log.error("publisher: %d event(s) not delivered at shutdown (Redis unreachable)", lost)
        self._client.close()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _run(self) -> None:
        delay = 0.2
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                batch = [self._queue[i] for i in range(min(self._batch_limit, len(self._queue)))]
                self._in_flight = len(batch)
            try:
                self._send(batch)
            except (redis.RedisError, OSError) as error:
                with self._cond:
                    self._in_flight = 0
                self.metrics.redis_up.set(0)
                if not self._down_logged:
                    log.warning("publisher: Redis at %s unreachable (%s); holding %d event(s) and retrying",
                                redact_url(self.config.url), error, len(self._queue))
                    self._down_logged = True
                with self._cond:
                    if self._cond.wait_for(lambda: self._stop, delay * random.uniform(0.8, 1.2)):
                        return
                delay = min(delay * 2, 5.0)
                continue
            if self._down_logged:
                log.info("publisher: Redis reachable again")
                self._down_logged = False
            delay = 0.2
            self.metrics.redis_up.set(1)
            with self._cond:
                for _ in batch:
                    self._queue.popleft()
                self._in_flight = 0
                self.metrics.publish_queue.set(len(self._queue))
                self._cond.notify_all()

    def _send(self, batch: list[Event]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for event in batch:
            pipe.xadd(
                self.config.stream,
                {"event_id": event.event_id, "type": event.type, "camera": event.camera, "data": event.to_json()},
                maxlen=self.config.maxlen,
                approximate=True,
            )
        pipe.execute()
        acknowledged = time.time()
        self.published += len(batch)
        for event in batch:
            self.metrics.events_published.labels(event.camera, event.type).inc()
            self.metrics.capture_to_publish_seconds.observe(max(0.0, acknowledged - event.captured_at))
