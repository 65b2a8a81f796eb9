"""Every Event the tests build is built here: synthetic lifecycle events in bulk, single events with each
field chosen (for the caption tests), and copies carrying a best frame (for the snapshot tests)."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

import numpy as np

from daemon.core.events import BestFrame, Event, EventType
from daemon.core.types import Detections

NOW = 1_800_000_000.0  # the wall-clock time of event()'s events, unless told otherwise


def synthetic_events(count: int, camera: str = "cam1", kind: str = "new") -> list[Event]:
    now = time.time()
    run = uuid.uuid4().hex[:8]
    return [
        Event(event_id=f"{run}-{i}", object_id=f"{run}-obj{i}", type=EventType(kind), camera=camera, at=now,
              label="person", class_id=0, confidence=0.9, bbox=[0.1, 0.2, 0.3, 0.4], track_id=i, frame_seq=i,
              captured_at=now, started_at=now)
        for i in range(count)
    ]


def event(kind: str = "new", *, step: int = 0, object_id: str = "obj1", label: str = "person",
          at: float = NOW, duration_s: float = 0.0, frame: BestFrame | None = None, **extra) -> Event:
    return Event(
        event_id=f"{object_id}-{step}", object_id=object_id, type=EventType(kind), camera="door", at=at,
        label=label, class_id=0 if label == "person" else 1, confidence=0.8, bbox=[0.3, 0.2, 0.6, 0.8],
        track_id=1, frame_seq=step, captured_at=at, started_at=at - duration_s, duration_s=duration_s,
        best_confidence=0.8, best_frame=frame, **extra,
    )


def with_best_frame(events: list[Event], image: np.ndarray, detections: Detections, row: int = 0) -> list[Event]:
    """Copies of ``events`` whose best frame is ``image`` with ``detections``, taken when each event was."""
    return [replace(e, best_frame=BestFrame(image, detections, row, e.captured_at)) for e in events]
