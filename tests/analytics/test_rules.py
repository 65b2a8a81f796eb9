"""Zone and line rules, and how the lifecycle gates them on confirmed objects."""

from __future__ import annotations

import numpy as np

from tests.support.detections import make_detections

from daemon.config.models import LineConfig, ZoneConfig
from daemon.analytics.lifecycle import ObjectLifecycle
from daemon.analytics.rules import CameraRules, points_in_polygon
from daemon.core.events import Crossing, ObjectStory
from daemon.core.types import Detections

W, H = 100, 100


def person_at(x: float, y: float, track_id: int = 1, confidence: float = 0.9) -> Detections:
    """A 10x30 box whose bottom-centre is at pixel (x, y)."""
    box = np.array([[x - 5, y - 30, x + 5, y]], np.float32)
    return make_detections(box, [confidence], [0], [track_id])


def run(rules: CameraRules, path: list[tuple[float, float]], step: float = 0.2) -> list[tuple]:
    hits = []
    for i, (x, y) in enumerate(path):
        for hit in rules.update(person_at(x, y), ["person"], W, H, i * step):
            hits.append((hit.kind, hit.rule, hit.direction))
    return hits


VERTICAL = LineConfig(name="door", points=((0.5, 0.0), (0.5, 1.0)))


def test_line_crossings_have_direction() -> None:
    assert run(CameraRules([], [VERTICAL]), [(20, 90), (40, 90), (60, 90), (80, 90)]) == [
        ("line_cross", "door", "a_to_b")
    ]
    assert run(CameraRules([], [VERTICAL]), [(80, 90), (60, 90), (40, 90)]) == [("line_cross", "door", "b_to_a")]


def test_jitter_on_the_line_counts_once() -> None:
    path = [(40, 90), (49.6, 90), (50.4, 90), (49.7, 90), (50.3, 90), (60, 90), (70, 90)]
    assert run(CameraRules([], [VERTICAL]), path) == [("line_cross", "door", "a_to_b")]


def test_min_distance_ignores_swaying_on_the_line_and_never_misses_a_crossing() -> None:
    wide = LineConfig(name="door", points=((0.5, 0.0), (0.5, 1.0)), min_distance=0.05)
    sway = [(40, 90), (47, 90), (53, 90), (46, 90), (54, 90), (47, 90)]  # within 5% of the line: no side
    assert run(CameraRules([], [wide]), sway + [(44, 90)]) == [], "swaying on the line and going back"
    assert run(CameraRules([], [wide]), sway + [(56, 90)]) == [("line_cross", "door", "a_to_b")]
    assert run(CameraRules([], [wide]), [(40, 90), (60, 90)]) == [("line_cross", "door", "a_to_b")], \
        "one step across the band"
    narrow = LineConfig(name="door", points=((0.5, 0.0), (0.5, 1.0)), min_distance=0.0)
    assert run(CameraRules([], [narrow]), [(49.9, 90), (50.1, 90), (49.9, 90)]) == [
        ("line_cross", "door", "a_to_b"), ("line_cross", "door", "b_to_a")]


def test_passing_round_the_end_of_a_line_is_not_a_crossing() -> None:
    short = LineConfig(name="gate", points=((0.5, 0.0), (0.5, 0.5)))
    assert run(CameraRules([], [short]), [(20, 90), (50, 90), (80, 90)]) == []


def test_horizontal_line_side_a_is_below() -> None:
    line = LineConfig(name="kerb", points=((0.0, 0.5), (1.0, 0.5)))
    assert run(CameraRules([], [line]), [(50, 90), (50, 70), (50, 30)]) == [("line_cross", "kerb", "a_to_b")]


def test_zone_enter_exit_and_loiter_once() -> None:
    zone = ZoneConfig(name="dock", polygon=[(0.6, 0.5), (1.0, 0.5), (1.0, 1.0), (0.6, 1.0)], loiter_s=1.0)
    path = [(20, 90), (70, 90)] + [(75, 90)] * 10 + [(20, 90)]
    assert run(CameraRules([zone], []), path) == [
        ("zone_enter", "dock", None), ("loiter", "dock", None), ("zone_exit", "dock", None)
    ]


def test_the_rules_keep_each_objects_story_zones_and_visits() -> None:
    zone = ZoneConfig(name="dock", polygon=[(0.6, 0.5), (1.0, 0.5), (1.0, 1.0), (0.6, 1.0)], loiter_s=1.0)
    rules = CameraRules([zone], [LineConfig(name="door", points=((0.5, 0.0), (0.5, 1.0)), a_to_b="in")])
    # right across the door into the dock for 2.2 s (loitering), out again, and back in
    path = [(20, 90), (70, 90)] + [(75, 90)] * 10 + [(20, 90), (70, 90)]
    run(rules, path)
    now = (len(path) - 1) * 0.2
    story = rules.story(1, now + 1.0)
    assert story.crossings == (Crossing("door", "a_to_b", "in"), Crossing("door", "b_to_a", None),
                               Crossing("door", "a_to_b", "in"))
    assert story.zone_stays == (("dock", 2.2), ("dock", 1.0))  # the open stay counted up to the story's time
    assert story.loitered == ("dock",)
    assert rules.zones_of(1) == ["dock"] and rules.visited(1) == ["dock"]
    rules.forget(1)
    assert rules.story(1, now) == ObjectStory() and rules.zones_of(1) == [] and rules.visited(1) == []


def test_rule_filters() -> None:
    zone = ZoneConfig(name="dock", polygon=[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0)], classes=["car"])
    assert run(CameraRules([zone], []), [(90, 20), (95, 10)]) == []
    weak = ZoneConfig(name="dock", polygon=[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0)], min_confidence=0.95)
    assert run(CameraRules([weak], []), [(90, 20)]) == []
    big = ZoneConfig(name="dock", polygon=[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0)], min_area=0.05)
    assert run(CameraRules([big], []), [(90, 20)]) == []  # the box covers 3% of the frame


def test_points_in_concave_polygon() -> None:
    u_shape = np.array([(0, 0), (3, 0), (3, 3), (2, 3), (2, 1), (1, 1), (1, 3), (0, 3)], float)
    inside = points_in_polygon(np.array([(0.5, 2.0), (1.5, 2.0), (2.5, 2.0), (1.5, 0.5)]), u_shape)
    assert inside.tolist() == [True, False, True, True]


def test_crossing_before_confirmation_waits_for_new_and_false_tracks_never_count() -> None:
    lifecycle = ObjectLifecycle("cam", {0: "person"}, confirm_frames=3, lost_timeout_s=1.0,
                                rules=CameraRules([], [VERTICAL]))
    types = []
    for i, x in enumerate([40, 60, 70, 80]):
        types += [e.type for e in lifecycle.update(person_at(x, 90), i, i * 0.2, W, H)]
    assert types == ["new", "line_cross"]

    flicker = ObjectLifecycle("cam", {0: "person"}, confirm_frames=3, lost_timeout_s=1.0,
                              rules=CameraRules([], [VERTICAL]))
    events = flicker.update(person_at(40, 90, 7), 0, 0.0, W, H) + flicker.update(person_at(60, 90, 7), 1, 0.2, W, H)
    events += flicker.expire(5.0)
    assert events == [], "a track seen twice is never confirmed, so its crossing is never reported"


def test_event_ids_are_unique_and_shared_object_id() -> None:
    lifecycle = ObjectLifecycle("cam", {0: "person"}, confirm_frames=1, lost_timeout_s=1.0,
                                rules=CameraRules([], [VERTICAL]))
    events = lifecycle.update(person_at(40, 90), 0, 0.0, W, H) + lifecycle.update(person_at(60, 90), 1, 0.2, W, H)
    events += lifecycle.end_all(1.0)
    assert [e.type for e in events] == ["new", "line_cross", "end"]
    assert len({e.event_id for e in events}) == 3 and len({e.object_id for e in events}) == 1
    assert events[-1].duration_s == 0.2


def test_update_is_rate_limited() -> None:
    lifecycle = ObjectLifecycle("cam", {0: "person"}, confirm_frames=1, lost_timeout_s=10.0, update_interval_s=1.0)
    lifecycle.update(person_at(40, 90), 0, 0.0, W, H)
    lifecycle.record_classification(1, "colour", "red", 0.2)
    assert [e.type for e in lifecycle.update(person_at(41, 90), 1, 0.5, W, H)] == []
    updates = lifecycle.update(person_at(42, 90), 2, 1.1, W, H)
    assert [(e.type, e.attributes) for e in updates] == [("update", {"colour": "red"})]
    assert lifecycle.update(person_at(43, 90), 3, 2.5, W, H) == [], "nothing changed since"


def test_an_object_in_place_for_stationary_s_is_flagged_and_unflagged_when_it_moves() -> None:
    lifecycle = ObjectLifecycle("cam", {0: "person"}, confirm_frames=1, lost_timeout_s=10.0, update_interval_s=0.0,
                                stationary_s=2.0)
    events = []
    for i in range(16):  # 3 s in place, its box jittering by a few pixels
        events += lifecycle.update(person_at(40 + (i % 3) - 1, 90 + (i % 2)), i, i * 0.2, W, H)
    for i in range(16, 20):  # then it walks away
        events += lifecycle.update(person_at(40 + 10 * (i - 15), 90), i, i * 0.2, W, H)
    assert [(e.type, e.stationary, round(e.at, 1)) for e in events] == [
        ("new", False, 0.0), ("update", True, 2.0), ("update", False, 3.2)]


def test_stationary_is_never_flagged_without_stationary_s() -> None:
    lifecycle = ObjectLifecycle("cam", {0: "person"}, confirm_frames=1, lost_timeout_s=100.0)
    events = [e for i in range(100) for e in lifecycle.update(person_at(40, 90), i, i * 1.0, W, H)]
    assert [(e.type, e.stationary) for e in events] == [("new", False)]
