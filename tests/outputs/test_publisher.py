"""The publisher against a private redis-server: outages, spool replay, the spool cap."""

from __future__ import annotations

import time

from tests.support.events import synthetic_events
from tests.support.polling import wait_for
from tests.support.redis import RedisServer, first_occurrences, shutdown_saving, stream_event_ids

from daemon.config.models import RedisConfig, SpoolConfig
from daemon.service.metrics import Metrics
from daemon.outputs.publisher import RedisPublisher

STREAM = "argusd:test:events"


def make_publisher(url: str, tmp_path, **spool) -> tuple[RedisPublisher, Metrics]:
    metrics = Metrics()
    config = RedisConfig(url=url, stream=STREAM, command_timeout_s=0.5, connect_timeout_s=0.5,
                         backoff_initial_s=0.05, backoff_max_s=0.5)
    publisher = RedisPublisher(config, metrics, SpoolConfig(directory=str(tmp_path / "spool"), **spool))
    publisher.start()
    return publisher, metrics


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_redis_stopped_for_10_seconds_loses_nothing(redis_server: RedisServer, tmp_path) -> None:
    publisher, metrics = make_publisher(redis_server.url, tmp_path)
    produced: list[str] = []

    def produce(seconds: float) -> None:  # ~100 events/s in small batches, like a busy set of cameras
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            events = synthetic_events(2)
            produced.extend(e.event_id for e in events)
            publisher.submit(events)
            time.sleep(0.02)

    produce(2)
    wait_for(lambda: publisher.pending == 0, 10, "the first events to be published")
    shutdown_saving(redis_server)
    produce(10)
    assert sample(metrics, "argusd_redis_up") == 0
    assert publisher.spool.pending > 0
    redis_server.start()
    produce(2)
    wait_for(lambda: publisher.pending == 0, 30, "the spool to drain")
    publisher.stop()

    stored = stream_event_ids(redis_server.url, STREAM)
    assert len(produced) > 1000
    assert set(stored) == set(produced)
    assert first_occurrences(stored) == produced  # the spool is replayed in order, before newer events
    spooled = sample(metrics, "argusd_events_spooled_total")
    assert spooled > 500
    assert sample(metrics, "argusd_events_replayed_total") == spooled
    assert sample(metrics, "argusd_redis_up") == 1
    assert sample(metrics, "argusd_spool_events") == 0
    assert not any(sample(metrics, "argusd_events_dropped_total", reason=r)
                   for r in ("queue_full", "spool_full", "spool_corrupt", "shutdown"))


def test_spool_cap_drops_the_oldest_and_counts_them(redis_server: RedisServer, tmp_path) -> None:
    redis_server.stop()
    publisher, metrics = make_publisher(redis_server.url, tmp_path, max_bytes=8192, fsync="always")
    events = synthetic_events(120)
    for start in range(0, len(events), 10):
        publisher.submit(events[start:start + 10])
    wait_for(lambda: publisher.spool.pending + publisher.dropped == len(events), 10, "everything spooled")
    dropped = int(sample(metrics, "argusd_events_dropped_total", reason="spool_full"))
    assert dropped == publisher.dropped > 0
    assert publisher.spool.bytes <= 8192
    assert sample(metrics, "argusd_spool_bytes") == publisher.spool.bytes

    redis_server.start()
    wait_for(lambda: publisher.pending == 0, 20, "the spool to drain")
    publisher.stop()
    stored = first_occurrences(stream_event_ids(redis_server.url, STREAM))
    assert stored == [e.event_id for e in events[dropped:]]  # exactly the oldest ones are gone


def test_events_queued_at_shutdown_while_redis_is_down_are_spooled_for_the_next_start(
        redis_server: RedisServer, tmp_path) -> None:
    redis_server.stop()
    publisher, _ = make_publisher(redis_server.url, tmp_path)
    events = synthetic_events(50)
    publisher.submit(events)
    publisher.stop(flush_timeout=1)
    assert publisher.dropped == 0

    redis_server.start()
    again, metrics = make_publisher(redis_server.url, tmp_path)
    wait_for(lambda: again.pending == 0, 10, "the spool to drain")
    again.stop()
    assert first_occurrences(stream_event_ids(redis_server.url, STREAM)) == [e.event_id for e in events]
    assert sample(metrics, "argusd_events_replayed_total") == 50


def test_one_stream_per_camera(redis_server: RedisServer, tmp_path) -> None:
    metrics = Metrics()
    config = RedisConfig(url=redis_server.url, stream="argusd:test:{camera}:events")
    publisher = RedisPublisher(config, metrics, SpoolConfig(directory=str(tmp_path / "spool")))
    publisher.start()
    a, b = synthetic_events(3, camera="door"), synthetic_events(2, camera="yard")
    publisher.submit(a + b)
    wait_for(lambda: publisher.pending == 0, 10, "publishing")
    publisher.stop()
    assert stream_event_ids(redis_server.url, "argusd:test:door:events") == [e.event_id for e in a]
    assert stream_event_ids(redis_server.url, "argusd:test:yard:events") == [e.event_id for e in b]


def test_submit_never_blocks_while_redis_hangs(redis_server: RedisServer, tmp_path) -> None:
    """A hung Redis (SIGSTOP) counts as down after command_timeout_s; submit stays instant."""
    publisher, metrics = make_publisher(redis_server.url, tmp_path)
    publisher.submit(synthetic_events(1))
    wait_for(lambda: publisher.pending == 0, 10, "the first event")
    redis_server.process.send_signal(19)  # SIGSTOP
    try:
        slowest = 0.0
        for _ in range(100):
            started = time.perf_counter()
            publisher.submit(synthetic_events(1))
            slowest = max(slowest, time.perf_counter() - started)
            time.sleep(0.01)
        wait_for(lambda: sample(metrics, "argusd_events_spooled_total") > 0, 10, "spooling")
        assert slowest < 0.05
    finally:
        redis_server.process.send_signal(18)  # SIGCONT
    wait_for(lambda: publisher.pending == 0, 20, "the spool to drain")
    publisher.stop()
    assert len(set(stream_event_ids(redis_server.url, STREAM))) == 101
