"""Publishes events to Redis Streams from its own thread: pipelined, spooled to disk while Redis is away.

Order of delivery: the spool (older events) first, then the in-memory queue. While Redis is down or
slower than ``command_timeout_s``, the publisher moves every queued event to the spool and retries with
jittered exponential backoff; once a batch succeeds it replays the spool, oldest first, before new events.
An event leaves the memory queue or the spool only after Redis acknowledged it, so delivery is
at-least-once; with ``XADD IDMP`` (Redis 8.6+) the server drops re-sent duplicates, and on older servers
consumers de-duplicate on ``event_id`` (see daemon/client/consumer.py).

An outage (no connection, a timeout, or a server-wide refusal such as OOM, READONLY or LOADING) is told
from a rejection of one entry (say WRONGTYPE: the stream key holds another type): a rejected entry is
dropped, counted (``reason="rejected"``) and logged once per stream, and the rest of its batch counts as
delivered. When the spool cannot be written (disk full), what it did not take stays in the memory queue
(bounded by ``queue_size``; overflow is counted as ``spool_error``) and ``problem`` says why, for /readyz.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
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
DROP_PROBLEM_S = 30.0  # /readyz reports events as not kept this long after a drop
REJECTION_LOG_S = 60.0  # a stream whose entries Redis rejects is logged again after this long
# Error replies that say the server cannot take writes now, whatever the entry: an outage, retried.
OUTAGE_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.OutOfMemoryError,
                 redis.exceptions.BusyLoadingError, redis.exceptions.ReadOnlyError, redis.exceptions.TryAgainError,
                 redis.exceptions.ClusterDownError, redis.exceptions.MasterDownError)
OUTAGE_CODES = frozenset({"OOM", "READONLY", "LOADING", "BUSY", "MISCONF", "NOREPLICAS", "MASTERDOWN", "TRYAGAIN",
                          "CLUSTERDOWN", "NOAUTH"})
# Drops that mean the daemon cannot keep events now (a rejected entry or a damaged record does not).
CAPACITY_DROPS = frozenset({"queue_full", "spool_full", "spool_error", "shutdown"})


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
        """An event read back from the spool; ValueError when it is not one (whatever its checksum says)."""
        try:
            fields = json.loads(data)
            event_id, kind, camera = fields["event_id"], fields["type"], fields["camera"]
            captured_at = float(fields.get("captured_at", 0.0))
        except (KeyError, TypeError, AttributeError) as error:  # ValueError (bad JSON, bad float) passes
            raise ValueError(f"not an event record: {error!r}") from None
        if not all(isinstance(value, str) and value for value in (event_id, kind, camera)):
            raise ValueError("not an event record: event_id, type and camera must be strings")
        return cls(event_id, kind, camera, captured_at, data.decode())


def is_outage(error: Exception) -> bool:
    """True for a reply that says Redis cannot take writes now (retry later), False for a rejection of
    this one entry (WRONGTYPE, a bad argument, an ACL denial on its key: retrying cannot help)."""
    if isinstance(error, OUTAGE_ERRORS) or not isinstance(error, redis.ResponseError):
        return True
    return str(error).split(" ", 1)[0] in OUTAGE_CODES


def redis_client(config: RedisConfig) -> redis.Redis:
    """A client with the configured timeouts and TLS, and no hidden retries (callers own the backoff); a
    RedisCluster client (same commands, routed by slot) when the url names a cluster node."""
    options: dict = {
        "socket_timeout": config.command_timeout_s,
        "socket_connect_timeout": config.connect_timeout_s,
        "retry": Retry(NoBackoff(), 0),
    }
    if config.tls:
        options.update(ssl_ca_certs=config.tls_ca_file, ssl_certfile=config.tls_cert_file,
                       ssl_keyfile=config.tls_key_file, ssl_cert_reqs="required" if config.tls_verify else "none",
                       ssl_check_hostname=config.tls_verify)
    url = config.url.replace("+cluster://", "://", 1)
    if config.is_cluster:
        # A node that went away is looked up again on the next command (the cluster's slot map is re-read),
        # so the publisher's own backoff and spool handle a master restart like any outage.
        cluster = RedisCluster.from_url(url, **options)
        return cast(redis.Redis, cluster)
    return redis.Redis.from_url(url, **options)


def stream_for(template: str, camera: str, cluster: bool = False) -> str:
    """The stream key of ``camera``'s events. On a Redis Cluster the camera is hash-tagged ({camera}): the
    stream and the consumer groups' keys named after it hash to one slot."""
    if "{camera}" not in template:
        return template
    return template.format(camera=f"{{{camera}}}" if cluster else camera)


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
        self._last_capacity_drop: tuple[float, str] | None = None  # (monotonic time, reason)
        self._spool_refused = False  # the spool did not take all it was offered; the rest is held in memory
        self._spool_read_error: str | None = None
        self._rejections_logged: dict[str, float] = {}  # stream -> when its rejection was last logged
        self._crash_logged = 0.0
        self._backoff = Backoff(config.backoff_initial_s, config.backoff_max_s)
        self.published = 0
        self.replayed = 0
        self.dropped = 0

    # -- interface for the daemon ----------------------------------------------------------------------

    def start(self) -> None:
        if self.spool_config is not None:
            self.metrics.spool_capacity.set(self.spool_config.max_bytes)
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
            self._count_drop("spool_error" if self._spool_refused else "queue_full", overflow)

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
        lost = len(left) - self._spill(left) if left else 0
        if lost:
            self._count_drop("shutdown", lost, quiet=True)
            log.error("publisher: %d event(s) not delivered at shutdown (Redis unreachable, %s)", lost,
                      f"spool write failed: {self.spool.error}" if self.spool and self.spool.error else "no spool")
        if self.spool is not None:
            if self.spool.pending:
                log.warning("publisher: %d event(s) left in the spool %s; they are sent on the next start",
                            self.spool.pending, self.spool.directory)
            self.spool.close()
        self._client.close()

    @property
    def pending(self) -> int:
        """Events not yet acknowledged by Redis (memory and spool)."""
        return self.queued + self.spooled

    @property
    def queued(self) -> int:
        """Events in the memory queue (bounded by ``queue_size``; drained to the spool while Redis is away)."""
        return len(self._queue)

    @property
    def spooled(self) -> int:
        """Events in the spool, waiting for Redis."""
        return self.spool.pending if self.spool else 0

    @property
    def problem(self) -> str | None:
        """Why events are not being kept now (for /readyz), or None: the spool cannot be written, cannot
        be read, or events were dropped in the last DROP_PROBLEM_S seconds."""
        spool = self.spool
        if self._spool_refused and spool is not None and spool.error is not None:
            return (f"spool {spool.directory} cannot be written ({spool.error}); {len(self._queue)} event(s) "
                    f"held in memory, the oldest dropped beyond {self.config.queue_size}")
        if self._spool_read_error is not None:
            return f"spool cannot be read ({self._spool_read_error}); delivery of spooled events waits"
        recent = self._last_capacity_drop
        if recent is not None and time.monotonic() - recent[0] < DROP_PROBLEM_S:
            return f"events dropped ({recent[1]}) in the last {DROP_PROBLEM_S:.0f} s"
        return None

    # -- publisher thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                if not self._turn():
                    return
            except Exception:  # a bug must not end delivery: log it (at most once a minute), back off, go on
                if time.monotonic() - self._crash_logged > 60:
                    self._crash_logged = time.monotonic()
                    log.exception("publisher: unexpected error; retrying")
                self._wait_backoff()

    def _turn(self) -> bool:
        """One turn of the publisher thread; False when it is time to exit."""
        self._sync_spool()
        with self._cond:
            if not self._queue and not self._spool_pending() and not self._stop:
                self._cond.wait(self._idle_wait(HEALTH_CHECK_S))
            stopping = self._stop
        if stopping and (self._up is False or time.monotonic() >= self._flush_deadline
                         or not (self._queue or self._spool_pending())):
            return False
        if not self._queue and not self._spool_pending():
            if self.spool is None or self.spool.sync_due_in() > 0:  # else the wait ended for the fsync
                self._health_check()
            return True
        if not self._publish_next():
            self._wait_backoff()
        return True

    def _idle_wait(self, longest: float) -> float:
        """How long the thread may sleep: at most ``longest``, less when a spool fsync falls due sooner."""
        return min(longest, self.spool.sync_due_in()) if self.spool is not None else longest

    def _sync_spool(self) -> None:
        if self.spool is not None:
            self.spool.sync_if_due()

    def _publish_next(self) -> bool:
        """Send the next batch: spooled events first. False when Redis failed."""
        spool = self.spool
        if spool is not None and spool.pending > 0:
            if len(self._queue) >= self.config.queue_size // 2:
                self._spill_queue()  # a long replay: keep memory small, order is kept (spool tail is newest)
            try:
                batch = spool.read(self.config.batch_size)
            except OSError as error:
                if self._spool_read_error is None:
                    log.error("spool: cannot read %s (%s); retrying", spool.directory, error.strerror or error)
                self._spool_read_error = error.strerror or str(error)
                return False
            if self._spool_read_error is not None:
                log.info("spool: reading %s works again", spool.directory)
                self._spool_read_error = None
            wire = self._parse_spooled(batch.records)
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
        if self._spool_refused and not self._queue:
            self._spool_refused = False  # nothing is held back for the spool any more
        return True

    def _parse_spooled(self, records: list[bytes]) -> list[WireEvent]:
        """The spooled records as events; one that is not an event (a checksum can be right for a record
        written by a bug or by hand) is skipped, logged and counted as ``spool_corrupt``."""
        wire, bad, example = [], 0, ""
        for record in records:
            try:
                wire.append(WireEvent.from_json(record))
            except ValueError as error:
                bad += 1
                example = example or str(error)
        if bad:
            log.error("spool: %d record(s) that are not events skipped (%s)", bad, redact_text(example))
            self._count_drop("spool_corrupt", bad, quiet=True)
        return wire

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
            replies = pipe.execute(raise_on_error=False)
        except (redis.RedisError, OSError) as error:
            self._went_down(error)
            return False
        errors = [reply for reply in replies if isinstance(reply, Exception)]
        outage = next((error for error in errors if is_outage(error)), None)
        if outage is None and errors and len(errors) == len(batch) \
                and len({self._stream(event) for event in batch}) > 1:
            # Every entry of several streams refused: the server or this client is wrong (an ACL change, an
            # XADD option the server does not know), not the entries. Keep them, look at the server again.
            self._idmp = None
            outage = errors[0]
        if outage is not None:  # the entries it did add are sent again: at-least-once, as for a lost reply
            self._went_down(outage)
            return False
        acknowledged = time.time()
        self.metrics.publish_seconds.observe(time.perf_counter() - started)
        self._came_up()
        delivered = batch
        if errors:
            delivered = [event for event, reply in zip(batch, replies, strict=True)
                         if not isinstance(reply, Exception)]
            self._rejected([(event, reply) for event, reply in zip(batch, replies, strict=True)
                            if isinstance(reply, Exception)])
        self.published += len(delivered)
        for (camera, kind), count in collections.Counter((e.camera, e.type) for e in delivered).items():
            self.metrics.events_published.labels(camera, kind).inc(count)
        for event in delivered:
            self.metrics.capture_to_publish_seconds.observe(max(0.0, acknowledged - event.captured_at))
        return True

    def _rejected(self, rejected: list[tuple[WireEvent, Exception]]) -> None:
        """Entries Redis refused (not an outage): dropped and counted; logged once per stream a minute."""
        self._count_drop("rejected", len(rejected), quiet=True)
        now = time.monotonic()
        by_stream: dict[str, list[tuple[WireEvent, Exception]]] = collections.defaultdict(list)
        for event, error in rejected:
            by_stream[self._stream(event)].append((event, error))
        if len(self._rejections_logged) > 1000:  # bounded: forget the oldest
            self._rejections_logged = dict(sorted(self._rejections_logged.items(), key=lambda kv: kv[1])[-500:])
        for stream, entries in by_stream.items():
            if now - self._rejections_logged.get(stream, -REJECTION_LOG_S) < REJECTION_LOG_S:
                continue
            self._rejections_logged[stream] = now
            log.error("publisher: Redis rejected %d event(s) for stream %s (%s), e.g. event %s; dropped and "
                      "counted in argusd_events_dropped_total{reason=\"rejected\"} (logged again for this "
                      "stream after %.0f s)", len(entries), stream, redact_text(str(entries[0][1])),
                      entries[0][0].event_id, REJECTION_LOG_S)

    def _xadd_args(self, event: WireEvent) -> list:
        args: list = ["XADD", self._stream(event)]
        if self._idmp:
            args += ["IDMP", self.config.producer_id, event.event_id]
        return [*args, "MAXLEN", "~", self.config.maxlen, "*",
                "event_id", event.event_id, "type", event.type, "camera", event.camera, "data", event.data]

    def _stream(self, event: WireEvent) -> str:
        return stream_for(self.config.stream, event.camera, self.config.is_cluster)

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
            spilled = self._spill_queue()
            self._sync_spool()
            remaining = deadline - time.monotonic()
            with self._cond:
                if self._stop or remaining <= 0:
                    return
                if not self._queue or not spilled:  # not spilled: the spool refused; wait for new events
                    self._cond.wait(self._idle_wait(remaining))

    # -- spool -----------------------------------------------------------------------------------------

    def _spool_pending(self) -> bool:
        return self.spool is not None and self.spool.pending > 0

    def _spill_queue(self) -> bool:
        """Move the memory queue to the spool; False when the spool did not take all of it."""
        with self._cond:
            events = list(self._queue)
        if not events:
            return True
        taken = self._spill(events)
        if taken:
            self._remove_from_queue(events[:taken])
        return taken == len(events)

    def _spill(self, events: list[Publishable]) -> int:
        """Append events to the spool; how many it took, from the first (the rest stay where they are):
        none without a usable spool, fewer than all when it cannot be written (disk full: Spool.error)."""
        if self.spool is None:
            return 0
        taken = self.spool.append([event.to_json().encode() for event in events])
        self._spool_refused = taken < len(events)
        if taken:
            self.metrics.events_spooled.inc(taken)
        self._update_spool_metrics()
        return taken

    def _update_spool_metrics(self) -> None:
        if self.spool is not None:
            self.metrics.spool_bytes.set(self.spool.bytes)
            self.metrics.spool_events.set(self.spool.pending)

    def _count_drop(self, reason: str, count: int, quiet: bool = False) -> None:
        """Count dropped events; log it (queue overflows at most every 10 s) unless the caller did."""
        if count <= 0:
            return
        self.dropped += count
        self.metrics.events_dropped.labels(reason).inc(count)
        if reason in CAPACITY_DROPS:
            self._last_capacity_drop = (time.monotonic(), reason)
        if quiet:
            return
        if reason not in ("queue_full", "spool_error") or time.monotonic() - self._last_drop_log > 10:
            self._last_drop_log = time.monotonic()
            log.warning("publisher: %d event(s) dropped (%s); argusd_events_dropped_total counts them all",
                        count, reason)
