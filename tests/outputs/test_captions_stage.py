"""The caption stage: captions follow their subjects as schema-valid `caption` events, an `end` carries the
object's latest ready caption, a full queue drops (counted) without ever blocking the caller, failures are
counted, and the caption is drawn on a snapshot."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest
from tests.support.assets import event_schema, free_port
from tests.support.captions import NAMES, best_frame
from tests.support.events import NOW, event
from tests.support.polling import wait_for

from daemon.outputs.captions import CaptionStage
from daemon.config.models import (
    CameraCaptionsConfig, CameraConfig, CaptionerConfig, CaptionsConfig, RedisConfig, SnapshotConfig,
)
from daemon.core.events import Crossing, Event, ObjectStory
from daemon.service.metrics import Metrics
from daemon.outputs.snapshots import SnapshotWriter
from daemon.testing.chat_server import ChatServer

SCHEMA = event_schema()


class Run:
    """A started stage for one camera, fed like the daemon feeds it; ``stream`` is what was published, in order."""

    def __init__(self, captioner: CaptionerConfig, events: list[str], snapshots: SnapshotWriter | None = None) -> None:
        self.metrics = Metrics()
        self.stream: list[dict] = []
        self.policy = CameraCaptionsConfig(captioner="c", events=events)
        self.stage = CaptionStage(CaptionsConfig(captioners={"c": captioner}), NAMES, self.metrics,
                                  lambda events: self.stream.extend(e.to_dict() for e in events), snapshots)
        self.stage.start([CameraConfig(id="door", url="test://ball", captions=self.policy)])

    def emit(self, *events: Event) -> float:
        """Returns how long the inference thread was held."""
        started = time.perf_counter()
        attached = self.stage.attach(list(events), self.policy)
        self.stream.extend(e.to_dict() for e in attached)
        self.stage.request(attached, self.policy)
        return time.perf_counter() - started

    def captions(self) -> list[dict]:
        return [e for e in self.stream if e["type"] == "caption"]

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, {"captioner": "c", **labels}) or 0.0


def test_captions_follow_subjects_and_the_end_carries_the_latest_ready_one() -> None:
    run = Run(CaptionerConfig(plugin="template"), events=["new", "line_cross", "end"])
    frame = best_frame()
    run.emit(event("new", step=0, frame=frame, attributes={"top_colour": "red"}))
    wait_for(lambda: len(run.captions()) == 1, 5, "the caption of new")
    crossed = ObjectStory(crossings=(Crossing("door", "a_to_b", "in"),))  # what the camera's rules kept
    run.emit(event("line_cross", step=1, at=NOW + 3, frame=frame, rule="door", direction="a_to_b",
                   direction_name="in", attributes={"top_colour": "red"}, story=crossed))
    wait_for(lambda: len(run.captions()) == 2, 5, "the caption of line_cross")
    run.emit(event("end", step=2, at=NOW + 9, duration_s=9.0, frame=frame, attributes={"top_colour": "red"},
                   story=crossed))
    wait_for(lambda: len(run.captions()) == 3, 5, "the caption of end")
    run.stage.stop()

    ids = [e["event_id"] for e in run.stream]
    for caption in run.captions():
        jsonschema.validate(caption, SCHEMA)
        assert ids.index(caption["subject_event_id"]) < ids.index(caption["event_id"])  # subject first
        assert caption["event_id"] == f"{caption['subject_event_id']}-caption"
        assert caption["object_id"] == "obj1" and caption["captioner"] == "c" and caption["latency_s"] >= 0
    assert [c["text"] for c in run.captions()] == [
        "A person wearing a red top appeared.",
        "A person wearing a red top crossed the door line inwards.",
        "A person wearing a red top was seen for 9 s and crossed the door line inwards.",
    ]
    end = next(e for e in run.stream if e["type"] == "end")
    jsonschema.validate(end, SCHEMA)
    assert end["caption"] == {"text": "A person wearing a red top crossed the door line inwards.",
                              "event_id": "obj1-1-caption", "subject_event_id": "obj1-1", "captioner": "c"}
    assert run.sample("argusd_captions_completed_total") == 3
    assert run.sample("argusd_caption_seconds_count") == 3


def test_an_end_without_a_ready_caption_goes_out_at_once_without_one() -> None:
    run = Run(CaptionerConfig(plugin="template"), events=["end"])
    run.emit(event("new", step=0))
    run.emit(event("end", step=1, duration_s=2.0))
    wait_for(lambda: len(run.captions()) == 1, 5, "the caption of end")
    run.stage.stop()
    assert "caption" not in next(e for e in run.stream if e["type"] == "end")
    assert [e["type"] for e in run.stream] == ["new", "end", "caption"]


def test_a_full_queue_drops_and_counts_without_blocking() -> None:
    with ChatServer(delay_s=1.0) as server:
        run = Run(CaptionerConfig(plugin="openai", base_url=server.base_url, model="m", queue_size=2, workers=1),
                  events=["new"])
        held = [run.emit(event("new", object_id=f"o{i}", frame=best_frame())) for i in range(20)]
        assert max(held) < 0.05, held  # the inference thread never waits for a 1 s captioner
        assert run.sample("argusd_caption_requests_total") == 20
        assert run.sample("argusd_captions_dropped_total", reason="queue_full") >= 17
        wait_for(lambda: len(run.captions()) >= 1, 5, "the first caption")
        run.stage.stop(drain_s=0.1)
    completed = run.sample("argusd_captions_completed_total")
    dropped = sum(run.sample("argusd_captions_dropped_total", reason=r) for r in ("queue_full", "shutdown"))
    assert completed == len(run.captions()) and completed + dropped == 20
    assert run.sample("argusd_caption_queue_requests") == 0
    for caption in run.captions():
        jsonschema.validate(caption, SCHEMA)
        assert caption["text"] == server.reply


def test_a_failing_captioner_is_counted_and_publishes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    run = Run(CaptionerConfig(plugin="openai", base_url=f"http://127.0.0.1:{free_port()}/v1", model="m",
                              retries=0), events=["new"])
    run.emit(event("new", frame=best_frame()))
    wait_for(lambda: run.sample("argusd_captions_failed_total") == 1, 5, "the failure to be counted")
    run.stage.stop()
    assert run.captions() == []
    assert "captions: c failed for 1 event(s): openai http://127.0.0.1" in caplog.text


def caption_band_rows(image: np.ndarray) -> int:
    """Rows at the bottom with the caption's dark grey background."""
    grey = np.all(np.abs(image.astype(int) - 40) < 12, axis=2).sum(axis=1) >= 20
    return int(grey.sum())


def test_the_caption_is_drawn_on_a_snapshot_of_its_own(tmp_path: Path) -> None:
    snapshots = SnapshotWriter(SnapshotConfig(enabled=True, directory=str(tmp_path)), RedisConfig(), NAMES, Metrics())
    snapshots.start()
    run = Run(CaptionerConfig(plugin="template"), events=["new"], snapshots=snapshots)
    subject = event("new", frame=best_frame(), attributes={"top_colour": "red"}, zones=["loading"])
    plain = snapshots.request(subject)
    run.emit(subject)
    wait_for(lambda: len(run.captions()) == 1, 5, "the caption")
    run.stage.stop()
    snapshots.stop()
    [caption] = run.captions()
    assert caption["snapshot"] == {"store": "file", "path": str(tmp_path / "door" / "obj1-0-caption.jpg")}
    captioned = cv2.imread(caption["snapshot"]["path"])
    uncaptioned = cv2.imread(plain["path"])
    assert captioned.shape == uncaptioned.shape == (240, 320, 3)
    # The header line on both; the sentence wraps onto two more lines on the captioned one.
    assert caption_band_rows(captioned) >= caption_band_rows(uncaptioned) + 20


@pytest.mark.parametrize("broken", [
    lambda e: e.pop("subject_event_id"),
    lambda e: e.update(text=""),
    lambda e: e.pop("object_id"),
])
def test_broken_caption_events_are_rejected(broken) -> None:
    caption = {"event_id": "o-0-caption", "type": "caption", "camera": "door", "ts": "2026-01-01T00:00:00.000Z",
               "schema_version": "1.3", "object_id": "o", "subject_event_id": "o-0", "subject_type": "new",
               "text": "A person appeared.", "captioner": "template"}
    jsonschema.validate(caption, SCHEMA)
    broken(caption)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(caption, SCHEMA)
