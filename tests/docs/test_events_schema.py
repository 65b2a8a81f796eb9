"""The versioned event schema matches what the lifecycle produces."""

from __future__ import annotations


import jsonschema
import numpy as np
import pytest
from tests.support.assets import event_schema
from tests.support.detections import make_detections

from daemon.analytics.lifecycle import ObjectLifecycle
from daemon.core.events import SCHEMA_VERSION
from daemon.core.types import Detections

SCHEMA = event_schema()


def lifecycle_events() -> list[dict]:
    lifecycle = ObjectLifecycle("door", {0: "person"}, confirm_frames=2, lost_timeout_s=1.0)
    seen = make_detections([[10, 20, 110, 220]], [0.8], [0], [7])
    image = np.zeros((240, 320, 3), np.uint8)
    events = []
    for i in range(3):
        events += lifecycle.update(seen, i, 1000.0 + i * 0.2, 320, 240, image)
    events += lifecycle.update(Detections(), 3, 1010.0, 320, 240, image)
    return [e.to_dict() for e in events]


def test_the_schema_is_valid_and_versioned_like_the_code() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$id"].endswith(f"/{SCHEMA_VERSION}.json")
    assert f"Version {SCHEMA_VERSION}." in SCHEMA["description"]


def test_lifecycle_events_validate_and_never_carry_the_frame() -> None:
    events = lifecycle_events()
    assert [e["type"] for e in events] == ["new", "end"]
    for event in events:
        jsonschema.validate(event, SCHEMA)
        assert "best_frame" not in event
    with_snapshot = {**events[0], "snapshot": {"store": "redis", "key": "argusd:snapshot:x"}}
    jsonschema.validate(with_snapshot, SCHEMA)


@pytest.mark.parametrize("broken", [
    lambda e: e.pop("event_id"),
    lambda e: e.update(bbox=[0.1, 0.2, 1.5, 0.4]),
    lambda e: e.update(snapshot={"store": "file"}),
    lambda e: e.update(schema_version="2.0"),
])
def test_broken_events_are_rejected(broken) -> None:
    event = lifecycle_events()[0]
    broken(event)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(event, SCHEMA)


def test_a_future_event_type_with_the_common_envelope_is_accepted() -> None:
    jsonschema.validate({"event_id": "r1", "type": "rule", "camera": "door", "ts": "2026-01-01T00:00:00.000Z",
                         "schema_version": "1.3", "rule": "loitering"}, SCHEMA)
