"""Helpers shared by the tests/test_events_*.py files: synthetic events, stream reading, waiting."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import redis

from daemon.analytics.lifecycle import Event, iso_utc


def synthetic_events(count: int, camera: str = "cam1", kind: str = "new") -> list[Event]:
    now = time.time()
    run = uuid.uuid4().hex[:8]
    return [
        Event(event_id=f"{run}-{i}", object_id=f"{run}-obj{i}", type=kind, camera=camera, ts=iso_utc(now),
              label="person", class_id=0, confidence=0.9, bbox=[0.1, 0.2, 0.3, 0.4], track_id=i, frame_seq=i,
              captured_at=now, started_at=iso_utc(now))
        for i in range(count)
    ]


def stream_event_ids(url: str, stream: str) -> list[str]:
    """Every entry's event_id, in stream order (duplicates kept)."""
    client = redis.Redis.from_url(url)
    ids, start = [], "-"
    while True:
        entries = client.xrange(stream, start, "+", count=5000)
        if not entries:
            return ids
        ids += [fields[b"event_id"].decode() for _, fields in entries]
        last = entries[-1][0].decode()
        ms, seq = last.split("-")
        start = f"{ms}-{int(seq) + 1}"


def first_occurrences(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def shutdown_saving(server) -> None:
    """Stop a private redis-server the way an operator restart does: save the dataset, then exit."""
    try:
        redis.Redis(port=server.port).shutdown(save=True)
    except redis.ConnectionError:
        pass  # the server closes the connection as it exits
    server.stop()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
