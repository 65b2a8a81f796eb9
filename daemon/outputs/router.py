"""Where a camera's events go once the lifecycle has decided them: counted, captioned, snapshotted and
handed to the publisher, in that order, without blocking the inference thread."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from daemon.config.models import CameraConfig
from daemon.core.events import Event
from daemon.outputs.captions import CaptionStage
from daemon.outputs.publisher import Publishable
from daemon.outputs.snapshots import SnapshotWriter
from daemon.service.metrics import Metrics


class EventRouter:
    """The inference worker's event sink."""

    def __init__(self, submit: Callable[[Sequence[Publishable]], None], metrics: Metrics,
                 snapshots: SnapshotWriter | None, captions: CaptionStage) -> None:
        self.submit = submit  # the publisher's queue (and the console's event feed)
        self.metrics = metrics
        self.snapshots = snapshots
        self.captions = captions

    @property
    def needs_images(self) -> bool:
        return self.snapshots is not None or self.captions.needs_images

    def emit(self, camera: CameraConfig, events: list[Event]) -> None:
        for event in events:
            self.metrics.events_produced.labels(camera.id, event.type).inc()
        events = self.captions.attach(events, camera.captions)
        # The frame and the story go to the snapshot and caption queues only; queued events must not pin them.
        self.submit([replace(e, snapshot=self.snapshots.request(e) if self.snapshots else None,
                                       best_frame=None, story=None) for e in events])
        self.captions.request(events, camera.captions)  # after the submit: captions follow their subjects
