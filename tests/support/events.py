"""Events for tests, built in this one place: synthetic lifecycle events in bulk, and single events with
every field chosen (for the caption tests)."""

from __future__ import annotations

import time
import uuid

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

