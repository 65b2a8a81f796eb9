"""With the real pretrained detector, argusd reports exactly the true line crossings and zone entries of
scripted scenes (real people moved over a real street), whether it detects on every frame or only on the
frames motion gating lets through."""

from __future__ import annotations

import collections
import json
import re
import uuid
from dataclasses import dataclass

import pytest
import redis

from tests.support import scenes
from tests.support.configs import daemon_config, detector_config, write_config
from tests.support.daemon import running_daemon

MOSTLY_EMPTY = "mostly-empty"
GROUND = 262  # y of the walkers' feet, pixels
MIDDLE_LINE = {"name": "door", "points": [[0.5, 0.0], [0.5, 1.0]], "a_to_b": "in", "b_to_a": "out"}
MIDDLE_ZONE = {"name": "lobby", "polygon": [[0.35, 0.5], [0.65, 0.5], [0.65, 1.0], [0.35, 1.0]]}
RIGHT_ZONE = {"name": "dock", "polygon": [[0.55, 0.5], [0.98, 0.5], [0.98, 1.0], [0.55, 1.0]], "loiter_s": 3.0}

SCENES = {
    # one person walks left to right, later another right to left, through a zone around the line
    "there-and-back": (
        [scenes.Walker(0, scenes.walk((40, GROUND), (600, GROUND), 0.3, 8.3)),
         scenes.Walker(1, scenes.walk((600, GROUND - 6), (40, GROUND - 6), 9.3, 17.3))],
        18.0,
        {"lines": [MIDDLE_LINE], "zones": [MIDDLE_ZONE]},
        {("line_cross", "door", "a_to_b"): 1, ("line_cross", "door", "b_to_a"): 1,
         ("zone_enter", "lobby", None): 2, ("zone_exit", "lobby", None): 2},
    ),
    # two people cross the line together, side by side
    "two-at-once": (
        [scenes.Walker(0, scenes.walk((30, GROUND), (470, GROUND), 0.3, 8.3)),
         scenes.Walker(1, scenes.walk((170, GROUND - 8), (610, GROUND - 8), 0.3, 8.3))],
        9.5,
        {"lines": [MIDDLE_LINE]},
        {("line_cross", "door", "a_to_b"): 2},
    ),
    # one person walks into the dock zone and stands there past the loitering time
    "loiterer": (
        [scenes.Walker(0, scenes.then_stand(scenes.walk((60, GROUND), (470, GROUND), 0.3, 5.3), 12.0, 5.3))],
        12.5,
        {"zones": [RIGHT_ZONE]},
        {("zone_enter", "dock", None): 1, ("loiter", "dock", None): 1},
    ),
    # one person passes by; the street is empty for the other four fifths of the recording
    MOSTLY_EMPTY: (
        [scenes.Walker(0, scenes.walk((-20, GROUND), (660, GROUND), 16.0, 24.0))],
        40.0,
        {"lines": [MIDDLE_LINE]},
        {("line_cross", "door", "a_to_b"): 1},
    ),
}
GATED = "-motion"  # the camera id suffix of a scene's twin that has motion gating on
# camera id -> scene: every scene with motion gating and without, except the mostly empty street, which is run
# gated only (without gating, offline, every frame received is detected on, as the other scenes show)
RUNS = {scene + gating: scene for scene in SCENES for gating in ("", GATED) if gating or scene != MOSTLY_EMPTY}
SUMMARY = re.compile(r"camera (\S+): (\d+) frame\(s\) received, (\d+) analysed, (\d+) skipped")


@dataclass(frozen=True)
class FrameCounts:
    received: int
    analysed: int  # detected on
    skipped: int  # by motion gating


@dataclass(frozen=True)
class SceneRuns:
    events: dict[str, list[dict]]  # by camera id
    frames: dict[str, FrameCounts]  # by camera id, from the daemon's closing summary


@pytest.fixture(scope="module")
def scene_runs(tmp_path_factory: pytest.TempPathFactory) -> SceneRuns:
    """Render every scene, run one daemon over all of them (a camera per entry of RUNS), return events and
    frame counts per camera."""
    directory = tmp_path_factory.mktemp("scenes")
    stream = f"argusd:test:scenes:{uuid.uuid4().hex}"  # its own: other test sessions may share this Redis
    clips = {name: scenes.render(walkers, seconds, directory / f"{name}.mp4")
             for name, (walkers, seconds, _, _) in SCENES.items()}
    # offline: every frame at 5 fps is analysed (or skipped by gating), so the result does not depend on this
    # CPU's speed
    cameras = [{"id": camera, "url": f"file://{clips[scene]}", "fps": 5, "realtime": False, **SCENES[scene][2],
                **({"motion": {"enabled": True}} if camera.endswith(GATED) else {})}
               for camera, scene in RUNS.items()]
    config = daemon_config(
        cameras,
        detector=detector_config(imgsz=640, device=None, labels={"Normal": "person"}),
        tracker={"confirm_frames": 3, "lost_timeout_s": 2.5},
        classifiers=[{"name": "colour", "plugin": "colour", "classes": ["person"]}],
        redis={"stream": stream},
    )
    with running_daemon(write_config(directory / "argusd.yaml", config), "--exit-when-done") as daemon:
        returncode = daemon.wait(240)
    assert returncode == 0, daemon.output()
    client = redis.Redis(decode_responses=True)
    events = [json.loads(fields["data"]) for _, fields in client.xrange(stream)]
    client.delete(stream)
    by_camera: dict[str, list[dict]] = collections.defaultdict(list)
    for event in events:
        by_camera[event["camera"]].append(event)
    frames = {camera: FrameCounts(*map(int, counts)) for camera, *counts in SUMMARY.findall(daemon.output())}
    return SceneRuns(by_camera, frames)


@pytest.mark.parametrize("camera", list(RUNS))
def test_rule_events_match_ground_truth(camera: str, scene_runs: SceneRuns) -> None:
    scene = RUNS[camera]
    expected = SCENES[scene][3]
    events = scene_runs.events[camera]
    counted = collections.Counter(
        (e["type"], e["rule"], e.get("direction")) for e in events if "rule" in e
    )
    assert dict(counted) == expected, [(e["type"], e.get("rule"), e["track_id"], e["ts"]) for e in events]
    people = {e["object_id"] for e in events if e["type"] == "new"}
    walkers = len(SCENES[scene][0])
    assert len(people) == walkers, "one object per person: no unconfirmed or duplicate tracks"
    for event in events:
        if event["type"] == "line_cross":
            assert event["direction_name"] == {"a_to_b": "in", "b_to_a": "out"}[event["direction"]]
    assert all(e["attributes"].get("colour") for e in events if e["type"] == "new"), "classified when confirmed"
    ends = [e for e in events if e["type"] == "end"]
    assert len(ends) == walkers
    for end in ends:
        visited = {e["rule"] for e in events if e["type"] == "zone_enter" and e["object_id"] == end["object_id"]}
        assert set(end["zones_visited"]) == visited


def test_motion_gating_detects_on_a_third_of_the_frames_or_fewer_where_people_pass_a_fifth_of_the_time(
        scene_runs: SceneRuns) -> None:
    frames = scene_runs.frames
    assert set(frames) == set(RUNS), "a summary line per camera"
    for camera, counts in frames.items():
        assert counts.received == counts.analysed + counts.skipped, camera
        if not camera.endswith(GATED):
            assert counts.skipped == 0, camera
    gated = frames[MOSTLY_EMPTY + GATED]
    assert gated.analysed * 3 <= gated.received, gated
