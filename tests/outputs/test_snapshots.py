"""The snapshot writer: off-thread JPEGs to files with retention, or to Redis keys with a TTL."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import redis
from tests.support.detections import make_detections
from tests.support.events import synthetic_events, with_best_frame
from tests.support.polling import wait_for
from tests.support.redis import RedisServer

from daemon.config.models import RedisConfig, SnapshotConfig
from daemon.service.metrics import Metrics
from daemon.outputs.snapshots import SnapshotWriter

NAMES = {0: "person"}
OBJECT_ID = "0123456789abcdef0123456789abcdef"  # as lifecycle.py makes them: uuid4().hex
TEN_DAYS_S = 10 * 86400


def with_frame(events, noise: bool = False):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (480, 640, 3), np.uint8) if noise else np.zeros((120, 160, 3), np.uint8)
    return with_best_frame(events, image, make_detections([[10, 10, 60, 90]], [0.9], [0], [4]))


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_file_snapshots_are_jpegs_and_retention_bounds_the_directory(tmp_path: Path) -> None:
    metrics = Metrics()
    config = SnapshotConfig(enabled=True, directory=str(tmp_path), max_total_bytes=1024 * 1024, queue_size=100)
    writer = SnapshotWriter(config, RedisConfig(), NAMES, metrics)
    writer.start()
    events = with_frame(synthetic_events(12), noise=True)  # ~300 kB each: beyond 1 MiB the oldest go
    references = [writer.request(e) for e in events]
    writer.stop()
    paths = [Path(r["path"]) for r in references]
    assert all(p.parent == tmp_path / "cam1" for p in paths)
    kept = [p for p in paths if p.exists()]
    assert kept == paths[len(paths) - len(kept):] and 0 < len(kept) < len(paths)
    assert sum(p.stat().st_size for p in kept) <= 1024 * 1024
    assert all(p.read_bytes()[:2] == b"\xff\xd8" for p in kept)
    assert sample(metrics, "argusd_snapshots_deleted_total") == len(paths) - len(kept)
    assert sample(metrics, "argusd_snapshots_written_total", camera="cam1") == 12


def test_old_snapshots_expire_by_age(tmp_path: Path) -> None:
    old = tmp_path / "cam1" / f"{OBJECT_ID}-0.jpg"
    old.parent.mkdir()
    old.write_bytes(b"\xff\xd8old")
    writer = SnapshotWriter(SnapshotConfig(enabled=True, directory=str(tmp_path), max_age_s=0.5), RedisConfig(),
                            NAMES, Metrics())
    time.sleep(0.6)
    writer.start()  # indexing the directory applies retention at once
    assert not old.exists()
    writer.stop()


def make_file(path: Path, age_s: float = TEN_DAYS_S, size: int = 1000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8" + bytes(size))
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_retention_deletes_only_argusds_own_files(tmp_path: Path) -> None:
    """Fault: foreign files of every shape, ten days old, in the snapshot directory (issue item 9: a
    `holiday/family.jpg` was deleted at start). Only argusd's own old files go."""
    own_name = f"{OBJECT_ID}-3.jpg"
    outside = make_file(tmp_path / "elsewhere" / "photo.jpg")
    directory = tmp_path / "snapshots"
    foreign = [
        make_file(directory / "holiday" / "family.jpg"),
        make_file(directory / "old.jpg"),  # top level
        make_file(directory / own_name),  # argusd's name, but not in a camera folder
        make_file(directory / "cam1" / "nested" / own_name),  # too deep
        make_file(directory / "holiday" / "2024" / "beach.jpg"),
        make_file(directory / "cam1" / "family.jpg"),  # wrong names in a camera folder
        make_file(directory / "cam1" / f"{OBJECT_ID.upper()}-3.jpg"),
        make_file(directory / "cam1" / f"{OBJECT_ID}-3.jpeg"),
        make_file(directory / "cam1" / f"{OBJECT_ID}-3.jpg.bak"),
        make_file(directory / "cam1" / f"{OBJECT_ID}-3-x.jpg"),
        make_file(directory / "cam1" / f"{OBJECT_ID[:31]}-3.jpg"),
        make_file(directory / "cam1" / f"x{OBJECT_ID}-3.jpg"),
        make_file(directory / "my photos" / own_name),  # not a camera id
        make_file(directory / ".hidden" / own_name),
        make_file(directory / "big" / "video.jpg", age_s=0, size=3 * 1024 * 1024),  # beyond max_total_bytes
    ]
    link = directory / "cam2" / f"{OBJECT_ID}-9.jpg"  # argusd's name, but a link to someone's file
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    own_old = [make_file(directory / "cam1" / own_name), make_file(directory / "cam2" / f"{OBJECT_ID}-4-caption.jpg")]
    own_new = make_file(directory / "cam1" / f"{OBJECT_ID}-5.jpg", age_s=60)
    metrics = Metrics()
    writer = SnapshotWriter(SnapshotConfig(enabled=True, directory=str(directory), max_age_s=86400,
                                           max_total_bytes=1024 * 1024), RedisConfig(), NAMES, metrics)
    writer.start()  # indexing the directory applies retention at once
    writer.stop()
    assert [p for p in own_old if p.exists()] == []
    assert own_new.exists()
    assert [p for p in foreign if not p.exists()] == []
    assert link.is_symlink() and outside.exists()
    assert sample(metrics, "argusd_snapshots_deleted_total") == len(own_old)


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    metrics = Metrics()
    writer = SnapshotWriter(SnapshotConfig(enabled=True, directory=str(tmp_path), queue_size=2), RedisConfig(),
                            NAMES, metrics)  # not started: nothing drains the queue
    references = [writer.request(e) for e in with_frame(synthetic_events(5))]
    assert references[2:] == [None, None, None]
    assert sample(metrics, "argusd_snapshots_dropped_total", reason="queue_full") == 3


def test_redis_snapshots_have_a_ttl(redis_server: RedisServer) -> None:
    config = SnapshotConfig(enabled=True, store="redis", ttl_s=60, key_prefix="argusd:test:snap:")
    writer = SnapshotWriter(config, RedisConfig(url=redis_server.url), NAMES, Metrics())
    writer.start()
    event = with_frame(synthetic_events(1))[0]
    reference = writer.request(event)
    writer.stop()
    client = redis.Redis.from_url(redis_server.url)
    assert reference == {"store": "redis", "key": f"argusd:test:snap:{event.event_id}"}
    wait_for(lambda: client.exists(reference["key"]), 5, "the snapshot key")
    assert client.get(reference["key"])[:2] == b"\xff\xd8"
    assert 0 < client.ttl(reference["key"]) <= 60
