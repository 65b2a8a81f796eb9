"""Faults injected into the real components: Redis (a private redis-server) rejecting one entry, a full disk
(a 64 KiB tmpfs) under the spool, records in the spool that are not events, the fsync timer."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest
import redis
from tests.support.events import synthetic_events
from tests.support.filesystems import small_tmpfs
from tests.support.polling import wait_for
from tests.support.redis import RedisServer, first_occurrences, stream_event_ids

from daemon.config.models import Config, RedisConfig, SpoolConfig
from daemon.outputs import publisher as publisher_module
from daemon.outputs import spool as spool_module
from daemon.outputs.publisher import RedisPublisher
from daemon.outputs.spool import Spool
from daemon.service.daemon import Daemon
from daemon.service.metrics import Metrics

STREAM = "t:{camera}"


def make_publisher(url: str, spool_directory: Path, stream: str = STREAM, **options) -> tuple[RedisPublisher, Metrics]:
    spool_options = {k: options.pop(k) for k in ("max_bytes", "fsync", "fsync_interval_s") if k in options}
    metrics = Metrics()
    config = RedisConfig(url=url, stream=stream, command_timeout_s=0.5, connect_timeout_s=0.5,
                         backoff_initial_s=0.05, backoff_max_s=0.3, **options)
    publisher = RedisPublisher(config, metrics, SpoolConfig(directory=str(spool_directory), **spool_options))
    publisher.start()
    return publisher, metrics


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def rejection_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "rejected" in r.getMessage() and "t:bad" in r.getMessage()]


# -- 1. one rejected XADD ------------------------------------------------------------------------------------


def test_a_rejected_entry_is_dropped_and_counted_and_the_rest_delivered_once(
        redis_server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    client = redis.Redis.from_url(redis_server.url)
    client.set("t:bad", "a string, not a stream")  # every XADD to t:bad now fails with WRONGTYPE
    publisher, metrics = make_publisher(redis_server.url, tmp_path / "spool")
    good = synthetic_events(8, camera="good")
    bad = synthetic_events(2, camera="bad")
    publisher.submit(good[:4] + bad[:1] + good[4:] + bad[1:])  # one pipelined batch, poison in the middle
    wait_for(lambda: publisher.pending == 0, 10, "the batch to be dealt with",
             details=lambda: (client.xlen("t:good"), publisher.published))
    more = synthetic_events(3, camera="good") + synthetic_events(1, camera="bad")
    publisher.submit(more)  # delivery goes on
    wait_for(lambda: publisher.pending == 0, 10, "the next batch")
    time.sleep(0.5)  # a stalled publisher would resend meanwhile
    publisher.stop()

    assert stream_event_ids(redis_server.url, "t:good") == [e.event_id for e in good + more[:3]]
    assert publisher.published == 11
    assert sample(metrics, "argusd_events_dropped_total", reason="rejected") == 3
    assert sample(metrics, "argusd_redis_up") == 1
    assert sample(metrics, "argusd_events_spooled_total") == 0  # a rejection is not an outage
    assert len(rejection_lines(caplog)) == 1, rejection_lines(caplog)  # once, naming the key
    assert "WRONGTYPE" in rejection_lines(caplog)[0]


def test_a_spooled_poison_entry_does_not_block_the_replay(redis_server: RedisServer, tmp_path: Path) -> None:
    redis_server.stop()
    publisher, _ = make_publisher(redis_server.url, tmp_path / "spool")
    events = synthetic_events(5, camera="good") + synthetic_events(1, camera="bad") + synthetic_events(3, camera="good")
    publisher.submit(events)
    publisher.stop(flush_timeout=1)  # Redis down: everything goes to the spool
    redis_server.start()
    redis.Redis.from_url(redis_server.url).set("t:bad", "x")

    for _ in range(2):  # and a restart does not find the poison batch at the head of the spool again
        again, metrics = make_publisher(redis_server.url, tmp_path / "spool")
        wait_for(lambda again=again: again.pending == 0, 10, "the spool to drain")
        again.stop()
    assert stream_event_ids(redis_server.url, "t:good") == [e.event_id for e in events if e.camera == "good"]


# -- 2. a full disk under the spool --------------------------------------------------------------------------


def test_a_full_disk_drops_only_what_does_not_fit_and_delivers_the_rest_once(
        redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publisher_module, "DROP_PROBLEM_S", 1.0, raising=False)
    redis_server.stop()
    with small_tmpfs(tmp_path / "small") as disk:
        publisher, metrics = make_publisher(redis_server.url, disk / "spool", stream="argusd:test:events",
                                            queue_size=200, batch_size=50, max_bytes=1 << 20, fsync="always")
        daemon = Daemon(Config.model_validate({"cameras": [{"id": "cam1", "url": "test://ball"}],
                                               "detector": {"model": "yolo11n.pt"}}))
        daemon.publisher = publisher
        produced: list[str] = []
        for _ in range(50):  # 1000 events of ~400 bytes: far more than 64 KiB of spool plus 200 in memory
            events = synthetic_events(20)
            produced += [e.event_id for e in events]
            publisher.submit(events)
            time.sleep(0.01)
        wait_for(lambda: publisher.spool.pending + len(publisher._queue) + publisher.dropped == 1000, 10,
                 "the events to be spooled, held or dropped")
        assert publisher._thread.is_alive()
        assert "No space left on device" in (publisher.problem or "")
        ready, details = daemon.readiness()
        assert not ready and details["checks"]["events_kept"] is False
        assert "No space left on device" in details["events_problem"]
        dropped = publisher.dropped
        assert dropped == sample(metrics, "argusd_events_dropped_total", reason="spool_error") > 0
        spooled = publisher.spool.pending
        assert spooled > 50

        redis_server.start()
        wait_for(lambda: publisher.pending == 0, 20, "the spool and the memory queue to drain")
        assert publisher._thread.is_alive()
        wait_for(lambda: publisher.problem is None, 5, "readiness to recover")
        assert daemon.readiness()[1]["checks"]["events_kept"] is True
        publisher.stop()  # does not raise
    stored = stream_event_ids(redis_server.url, "argusd:test:events")
    assert len(stored) == len(set(stored)) == 1000 - dropped  # everything kept, delivered once
    assert first_occurrences(stored) == [i for i in produced if i in set(stored)]  # in order
    assert publisher.dropped == dropped  # nothing more lost at the stop
    assert sample(metrics, "argusd_events_replayed_total") == spooled


def test_spool_appends_on_a_full_disk_are_exactly_once(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "small") as disk:
        spool = Spool(disk / "spool", max_bytes=1 << 20, fsync="batch")
        records = [json.dumps({"event_id": f"e{i}", "pad": "x" * 300}).encode() for i in range(300)]
        taken = spool.append(records)
        assert 0 < taken < 300 and spool.error
        assert spool.append(records[taken:]) == 0  # still full: nothing more, nothing twice
        delivered: list[bytes] = []
        while len(delivered) < 300:  # the consumer frees space, the producer offers the rest again
            batch = spool.read(40)
            delivered += batch.records
            spool.commit(batch)
            taken += spool.append(records[taken:])
        spool.close()
        assert delivered == records
        assert spool.error is None


# -- 3. a record with a good checksum that is not an event ---------------------------------------------------


def test_a_spooled_record_that_is_not_an_event_is_skipped_and_counted(
        redis_server: RedisServer, tmp_path: Path) -> None:
    events = synthetic_events(4)
    spool = Spool(tmp_path / "spool", max_bytes=1 << 20)
    spool.append([events[0].to_json().encode(), events[1].to_json().encode(),
                  b'{"type": "new", "camera": "cam1"}',  # no event_id, checksum fine
                  b'[1, 2]', b"not json",
                  events[2].to_json().encode(), events[3].to_json().encode()])
    spool.close()
    publisher, metrics = make_publisher(redis_server.url, tmp_path / "spool", stream="argusd:test:events")
    wait_for(lambda: publisher.pending == 0, 10, "the spool to drain")
    assert publisher._thread.is_alive()
    publisher.stop()
    assert stream_event_ids(redis_server.url, "argusd:test:events") == [e.event_id for e in events]
    assert sample(metrics, "argusd_events_dropped_total", reason="spool_corrupt") == 3


# -- 5. fsync: interval without a further append -------------------------------------------------------------


def test_fsync_interval_syncs_an_idle_spool_without_a_further_append(
        redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[tuple[str, int]] = []  # (path, its size when fsync'ed): the real fsync, observed
    real_fsync = os.fsync

    def observed_fsync(fd: int) -> None:
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), os.fstat(fd).st_size))
        real_fsync(fd)

    monkeypatch.setattr(spool_module.os, "fsync", observed_fsync)
    redis_server.stop()
    publisher, _ = make_publisher(redis_server.url, tmp_path / "spool", stream="argusd:test:events",
                                  fsync="interval", fsync_interval_s=0.5)
    publisher.submit(synthetic_events(3))
    wait_for(lambda: publisher.spool.pending == 3, 5, "the first burst in the spool")
    publisher.submit(synthetic_events(3))  # within the interval: not synced by the append itself
    wait_for(lambda: publisher.spool.pending == 6, 5, "the second burst in the spool")
    segment = sorted((tmp_path / "spool").glob("seg-*.log"))[-1]
    size = segment.stat().st_size
    wait_for(lambda: (str(segment), size) in synced, 2, "an fsync of the whole segment, with no further append",
             details=lambda: synced)
    publisher.stop(flush_timeout=0.5)
