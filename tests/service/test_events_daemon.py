"""Daemon-level: the real detector on real footage, a private redis-server restarted or absent, SIGKILL."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema
import redis

from daemon.outputs.spool import decode_line
from tests.support.assets import BIKES, event_schema, free_port, require_asset
from tests.support.configs import daemon_config, write_config
from tests.support.daemon import RunningDaemon, running_daemon
from tests.support.polling import wait_for
from tests.support.redis import RedisServer, shutdown_saving, stream_event_ids

STREAM = "argusd:test:events"
SCHEMA = event_schema()
MAX_SECONDS = ("--max-seconds", "120")


def write_bikes_config(tmp_path: Path, redis_url: str) -> Path:
    return write_config(tmp_path / "argusd.yaml", daemon_config(
        [{"id": "bikes", "url": f"file://{require_asset(BIKES)}", "fps": 8, "loop": True}],
        redis={"url": redis_url, "stream": STREAM, "command_timeout_s": 0.5, "connect_timeout_s": 0.5,
               "backoff_max_s": 1},
        spool={"directory": str(tmp_path / "spool")},
        snapshots={"enabled": True, "directory": str(tmp_path / "snapshots")},
    ))


def spooled_event_ids(directory: Path) -> list[str]:
    ids = []
    for segment in sorted(directory.glob("seg-*.log")):
        for line in segment.read_bytes().splitlines(keepends=True)[1:]:
            payload = decode_line(line)
            if payload is not None:
                ids.append(json.loads(payload)["event_id"])
    return ids


def test_daemon_loses_no_event_while_redis_restarts(redis_server: RedisServer, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_server.url)
    with running_daemon(write_bikes_config(tmp_path, redis_server.url), *MAX_SECONDS) as daemon:
        wait_for(lambda: client.xlen(STREAM) >= 2, 90, "the first events from the detector")
        shutdown_saving(redis_server)
        wait_for(lambda: len(spooled_event_ids(tmp_path / "spool")) >= 2, 10, "events to be spooled")
        time.sleep(10)
        redis_server.start()
        wait_for(lambda: not spooled_event_ids(tmp_path / "spool"), 30, "the spool to be replayed")
        assert daemon.stop(60) == 0
    text = daemon.output()
    summary = re.search(r"stopped: (\d+) event\(s\) produced, \d+ published \((\d+) replayed", text)
    assert summary, text[-2000:]
    produced, replayed = int(summary[1]), int(summary[2])
    assert replayed >= 2

    entries = redis.Redis.from_url(redis_server.url).xrange(STREAM)
    events = {}
    for _, fields in entries:
        event = json.loads(fields[b"data"])
        jsonschema.validate(event, SCHEMA)
        events[event["event_id"]] = event
    assert len(events) == produced  # de-duplicated on event_id, stored == produced
    lifecycle = [e for e in events.values() if e["type"] in ("new", "end")]
    assert lifecycle and all(e["snapshot"]["store"] == "file" for e in lifecycle)
    snapshots = [Path(e["snapshot"]["path"]) for e in lifecycle]
    wait_for(lambda: all(p.is_file() for p in snapshots), 10, "snapshot files")
    assert all(p.read_bytes()[:2] == b"\xff\xd8" for p in snapshots)


def test_events_spooled_before_a_sigkill_arrive_after_the_restart(redis_server: RedisServer, tmp_path: Path) -> None:
    redis_server.stop()
    config = write_bikes_config(tmp_path, redis_server.url)
    with running_daemon(config, *MAX_SECONDS) as daemon:
        wait_for(lambda: len(spooled_event_ids(tmp_path / "spool")) >= 3, 90, "events in the spool")
        daemon.kill()
    spooled = spooled_event_ids(tmp_path / "spool")
    assert len(spooled) == len(set(spooled)) >= 3

    redis_server.start()
    with running_daemon(config, *MAX_SECONDS) as daemon:  # the same log: both runs' output, appended
        wait_for(lambda: set(spooled) <= set(stream_event_ids(redis_server.url, STREAM)), 90,
                 "the spooled events in the stream")
        assert daemon.stop(60) == 0
    stored = stream_event_ids(redis_server.url, STREAM)
    assert stored[:len(spooled)] == spooled  # replayed first, in order
    assert "undelivered event(s)" in daemon.output()


def test_a_60_second_outage_under_4_cameras_keeps_every_event_in_order_once(
        redis_server: RedisServer, tmp_path: Path) -> None:
    """Redis away for 60 s while 4 cameras (real footage, real detector) produce events: afterwards every
    event stamped inside the outage is in its camera's stream, in event-time order, with no duplicate."""
    cameras = [f"cam{i}" for i in range(4)]
    port = free_port()
    config = write_config(tmp_path / "argusd.yaml", daemon_config(
        [{"id": camera, "url": f"file://{require_asset(BIKES)}", "fps": 5, "loop": True} for camera in cameras],
        tracker={"confirm_frames": 2, "update_interval_s": 1},
        redis={"url": redis_server.url, "stream": "argusd:test:{camera}", "command_timeout_s": 0.5,
               "connect_timeout_s": 0.5, "backoff_max_s": 1},
        spool={"directory": str(tmp_path / "spool")}, port=port,
    ))
    client = redis.Redis.from_url(redis_server.url)
    with running_daemon(config, "--max-seconds", "200", address=f"127.0.0.1:{port}") as daemon:
        wait_for(lambda: daemon.check_running() and all(client.xlen(f"argusd:test:{c}") for c in cameras), 90,
                 "the first event of every camera", ignoring=(redis.ConnectionError,))
        outage = (time.time(), 0.0)
        shutdown_saving(redis_server)  # the dataset is saved and reloaded: only the outage is tested
        time.sleep(60)
        outage = (outage[0], time.time())
        redis_server.start()
        wait_for(lambda: not spooled_event_ids(tmp_path / "spool"), 30, "the spool to be replayed")
        with urllib.request.urlopen(daemon.url("/metrics"), timeout=5) as response:
            metrics = response.read().decode()
        assert daemon.stop(60) == 0
    summary = re.search(r"stopped: (\d+) event\(s\) produced", daemon.output())
    assert summary, daemon.tail()
    dropped = re.findall(r'^argusd_events_dropped_total\{reason="(\w+)"\} (\S+)$', metrics, re.MULTILINE)
    assert dropped and all(float(value) == 0 for _, value in dropped), dropped

    ids: list[str] = []
    inside = 0
    for camera in cameras:
        events = [json.loads(fields[b"data"]) for _, fields in client.xrange(f"argusd:test:{camera}")]
        assert all(e["camera"] == camera for e in events)
        # In the order produced: each object's events (event_id <object>-<step>) come step by step. (An `end`
        # decided by expiry carries the wall time, so captured_at alone is not monotonic across objects.)
        steps: dict[str, list[int]] = {}
        for e in events:
            steps.setdefault(e["object_id"], []).append(int(e["event_id"].rsplit("-", 1)[1]))
        for object_id, seen in steps.items():
            assert seen == list(range(len(seen))), f"{camera}: {object_id}'s events out of order or missing: {seen}"
        in_outage = [e for e in events if outage[0] <= e["captured_at"] <= outage[1]]
        assert in_outage, f"{camera}: no event stamped inside the outage"
        inside += len(in_outage)
        ids += [e["event_id"] for e in events]
    assert len(ids) == len(set(ids)), "duplicate event_id"
    assert len(ids) == int(summary[1])  # every event produced, so every one stamped inside the outage
    assert inside >= 8


def _readiness(daemon: RunningDaemon) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(daemon.url("/readyz"), timeout=5) as response:  # noqa: S310 (loopback http)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:  # 503: not ready, with the same JSON body
        return error.code, json.loads(error.read())


def test_readiness_holds_while_events_are_spooled_and_fails_once_the_spool_is_full(tmp_path: Path) -> None:
    """Redis never answers: events go to the spool, more of them than the memory queue holds, and the
    daemon stays ready because none is lost; once the (small) spool is full it drops its oldest events
    and the daemon turns not ready, saying why."""
    port = free_port()
    queue_size = 10
    config = write_config(tmp_path / "argusd.yaml", daemon_config(
        [{"id": "bikes", "url": f"file://{require_asset(BIKES)}", "fps": 8, "loop": True}],
        tracker={"confirm_frames": 2, "update_interval_s": 1},
        redis={"url": f"redis://127.0.0.1:{free_port()}/0", "queue_size": queue_size, "connect_timeout_s": 0.5,
               "backoff_max_s": 1},
        spool={"directory": str(tmp_path / "spool"), "max_bytes": 8192}, port=port))
    seen: list[tuple[int, dict]] = []

    def spool_full_reported() -> bool:
        seen.append(_readiness(daemon))
        return seen[-1][0] == 503 and "spool_full" in (seen[-1][1]["events_problem"] or "")

    with running_daemon(config, "--max-seconds", "150", address=f"127.0.0.1:{port}") as daemon:
        wait_for(lambda: daemon.check_running() and _readiness(daemon)[0] == 200, 90, "the daemon to be ready",
                 ignoring=(OSError,))
        wait_for(spool_full_reported, 90, "readiness to report the full spool", interval=0.5,
                 details=lambda: seen[-5:])
    ready_beyond_the_queue = [body for status, body in seen
                              if status == 200 and body["spool_events"] > queue_size]
    assert ready_beyond_the_queue, seen
    assert all(body["publish_queue"] < queue_size for _, body in seen), seen
    body = seen[-1][1]
    assert body["checks"]["events_kept"] is False and body["checks"]["events_deliverable"] is True, body
