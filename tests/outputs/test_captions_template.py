"""The template captioner's phrasing: deterministic English from class, attributes, zones, crossings,
direction names, durations and counts; loaded through the argusd.captioners entry point."""

from __future__ import annotations

import pytest
from tests.support.events import event

from daemon.config.models import CaptionerConfig
from daemon.core.events import Crossing, ObjectStory
from plugins.interfaces import CaptionRequest
from plugins.registry import load_captioner
from plugins.captioners.template import duration

STORY = ObjectStory(
    crossings=(Crossing("door", "a_to_b", "in"), Crossing("door", "a_to_b", "in"), Crossing("door", "b_to_a", "out"),
               Crossing("gate", "a_to_b", None)),
    zone_stays=(("loading", 30.2), ("loading", 12.0), ("door", 3.0)),
    loitered=("loading",),
    in_view={"person": 2, "car": 1},
)


def caption(kind: str, story: ObjectStory = ObjectStory(), **fields) -> str:
    captioner = load_captioner(CaptionerConfig(plugin="template"))
    assert captioner.needs_image is False
    return captioner.caption([CaptionRequest(event(kind, **fields), story, None)])[0]


@pytest.mark.parametrize(("kind", "story", "fields", "expected"), [
    ("new", ObjectStory(in_view={"person": 3}), {"attributes": {"top_colour": "red"}, "zones": ["loading"]},
     "A person wearing a red top appeared in the loading zone, one of three people in view."),
    ("new", ObjectStory(), {"label": "car", "attributes": {"colour": "Orange"}}, "An orange car appeared."),
    ("new", ObjectStory(), {"attributes": {"colour": "red", "posture": "lying"}},
     "A person in red (posture: lying) appeared."),
    ("new", ObjectStory(in_view={"bus": 12}), {"label": "bus", "zones": ["a", "b"]},
     "A bus appeared in the a and b zones, one of 12 buses in view."),
    ("update", ObjectStory(), {"duration_s": 12.4, "zones": ["loading"]},
     "A person has been in view for 12 s and is in the loading zone."),
    ("zone_enter", ObjectStory(), {"rule": "loading"}, "A person entered the loading zone."),
    ("zone_exit", ObjectStory(zone_stays=(("loading", 41.6),)), {"rule": "loading"},
     "A person left the loading zone after 42 s."),
    ("loiter", ObjectStory(zone_stays=(("loading", 31.0),)), {"rule": "loading"},
     "A person has stayed 31 s in the loading zone."),
    ("line_cross", ObjectStory(crossings=(Crossing("door", "a_to_b", "in"),)),
     {"rule": "door", "direction": "a_to_b", "direction_name": "in"}, "A person crossed the door line inwards."),
    ("line_cross", STORY, {"rule": "door", "direction": "b_to_a", "direction_name": "out"},
     "A person crossed the door line outwards, for the third time."),
    ("line_cross", ObjectStory(), {"rule": "gate", "direction": "b_to_a"},
     "A person crossed the gate line from side B to side A."),
    ("line_cross", ObjectStory(), {"rule": "road", "direction": "a_to_b", "direction_name": "north"},
     "A person crossed the road line going north."),
    ("end", ObjectStory(crossings=(Crossing("door", "a_to_b", "in"),), zone_stays=(("loading", 42.0),)),
     {"duration_s": 50.2, "attributes": {"top_colour": "red"}},
     "A person wearing a red top was seen for 50 s, crossed the door line inwards and stayed 42 s in the "
     "loading zone."),
    ("end", STORY, {"duration_s": 65.3},
     "A person was seen for 1 min 5 s, crossed the door line inwards twice and outwards once, crossed the gate "
     "line from side A to side B and stayed 42 s in the loading zone (loitering) and 3 s in the door zone. "
     "It was one of two people in view."),
    ("end", ObjectStory(), {"duration_s": 0.4}, "A person was seen for less than a second."),
])
def test_phrasing(kind: str, story: ObjectStory, fields: dict, expected: str) -> None:
    assert caption(kind, story, **fields) == expected


@pytest.mark.parametrize(("seconds", "text"), [
    (0.2, "less than a second"), (1.4, "1 s"), (59.4, "59 s"), (60, "1 min"), (125, "2 min 5 s"),
    (3600, "1 h"), (7380, "2 h 3 min"),
])
def test_durations(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_the_same_request_always_gives_the_same_sentence() -> None:
    assert len({caption("end", STORY, duration_s=65.3) for _ in range(3)}) == 1
