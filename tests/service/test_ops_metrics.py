"""Labelled counters exist at 0 for every known label set from the start (per camera once it is added),
so rates and alerts see a series before the first increment."""

from __future__ import annotations

from prometheus_client import Counter

from daemon.core.events import EventType
from daemon.service.metrics import Metrics


def _series(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in metrics.registry.collect() for sample in family.samples}


def test_every_counter_has_a_series_once_a_camera_and_a_captioner_are_added() -> None:
    metrics = Metrics()
    metrics.add_camera("door", 5.0)
    metrics.add_captioner("template")
    counters = [value for value in vars(metrics).values() if isinstance(value, Counter)]
    without_series = [counter.describe()[0].name for counter in counters if not counter.collect()[0].samples]
    assert without_series == []


def test_known_label_sets_start_at_zero() -> None:
    metrics = Metrics()
    metrics.add_camera("door", 5.0)
    series = _series(metrics)
    expected = [
        ("argusd_camera_stalls_total", {"camera": "door"}),
        ("argusd_snapshots_written_total", {"camera": "door"}),
        ("argusd_tracks_relinked_total", {"camera": "door"}),
        *(("argusd_config_reloads_total", {"result": result}) for result in ("applied", "rejected")),
        *(("argusd_snapshots_dropped_total", {"reason": reason}) for reason in ("queue_full", "error")),
        *(("argusd_events_dropped_total", {"reason": reason})
          for reason in ("queue_full", "spool_full", "spool_corrupt", "spool_error", "rejected", "shutdown")),
        *((name, {"camera": "door", "type": kind.value}) for kind in EventType
          for name in ("argusd_events_produced_total", "argusd_events_published_total")),
    ]
    missing = [(name, labels) for name, labels in expected if series.get((name, frozenset(labels.items()))) != 0]
    assert missing == []


def test_the_clock_offset_exists_only_for_cameras_on_their_own_clock_and_reads_the_source() -> None:
    """``clock: camera``: the gauge reads the camera source's measured offset when scraped (0 until its first
    sender report); a camera timed by the host has no such series."""
    measured = [0.0]
    metrics = Metrics()
    metrics.add_camera("door", 5.0, lambda: measured[0])
    metrics.add_camera("yard", 5.0)
    assert _series(metrics)[("argusd_camera_clock_offset_seconds", frozenset({("camera", "door")}))] == 0
    measured[0] = -7199.98
    series = _series(metrics)
    assert series[("argusd_camera_clock_offset_seconds", frozenset({("camera", "door")}))] == -7199.98
    assert ("argusd_camera_clock_offset_seconds", frozenset({("camera", "yard")})) not in series
    metrics.forget_camera("door")
    assert not [key for key in _series(metrics) if key[0] == "argusd_camera_clock_offset_seconds"]
