"""The regression corpus of hard scenes (tests/analytics/test_scene_corpus.py, scripts/scene_table.py): each
scene's walkers, occluders, capture times and rules, and its ground truth (true line crossings per direction,
zone entries, loitering, objects), known exactly because the paths are scripted."""

from __future__ import annotations

import collections
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.support import scenes
from tests.support.configs import daemon_config, detector_config, write_config
from tests.support.daemon import running_daemon

GROUND = 262  # y of the walkers' feet, pixels, in the 640x272 frame
# Walkers move at most about 110 px/s (28 px a frame at 4 f/s, half a person's width): a track's second
# sighting must overlap its first, as the tracker knows no velocity yet.
FPS = 4  # the cameras' analysis rate: few frames, as the fall detector at 640 is slow on a CPU
LOST_TIMEOUT_S = 2.5
STATIONARY_S = 5.0
DOOR = {"name": "door", "points": [[0.5, 0.0], [0.5, 1.0]], "a_to_b": "in", "b_to_a": "out"}
LOBBY = {"name": "lobby", "polygon": [[0.3, 0.5], [0.7, 0.5], [0.7, 1.0], [0.3, 1.0]]}

Truth = dict[tuple[str, str, str | None], int]  # (event type, rule, direction) -> count


@dataclass(frozen=True)
class Scene:
    walkers: list[scenes.Walker]
    seconds: float
    truth: Truth  # rule events
    objects: int  # true objects (people, and a look-alike the detector takes for one)
    rules: dict = field(default_factory=dict)  # the camera's lines and zones
    pillars: Sequence[scenes.Pillar] = ()
    times: Sequence[float] | None = None  # irregular capture times; None: scenes.FPS frames a second
    camera_fps: int = FPS
    stationary: int = 0  # objects flagged stationary

    def render(self, path: Path) -> Path:
        """The scene's video file: at scenes.FPS, or at its irregular capture times."""
        if self.times is None:
            return scenes.render(self.walkers, self.seconds, path, self.pillars)
        return scenes.render_at(self.walkers, self.times, path, self.pillars)

    def analysed_times(self) -> list[float]:
        """The capture times of the frames argusd analyses (the file's, at most ``camera_fps`` a second)."""
        if self.times is not None:
            return list(self.times)
        return [index / self.camera_fps for index in range(round(self.seconds * self.camera_fps))]


def _sway(x: float, t0: float, t1: float, amplitude: float) -> scenes.Path2D:
    """Stand at x on the ground from t0 to t1, swaying sideways by ``amplitude`` pixels."""

    def at(t: float) -> tuple[float, float] | None:
        return (x + amplitude * math.sin(2 * math.pi * t / 1.3), GROUND) if t0 <= t <= t1 else None

    return at


def _flickering(t: float) -> float:
    """The look-alike's opacity: faint (the detector is unsure: confidence about 0.45), and in two stretches
    of up to 1.2 s fainter still (not detected at all)."""
    return 0.12 if any(t0 <= t < t1 for t0, t1 in ((1.8, 2.4), (4.0, 5.2))) else 0.25


def _irregular_times(seconds: float, gap: tuple[float, float]) -> list[float]:
    """Capture times with intervals of 0.15 to 0.6 s (a slow model, superseded frames) and no frame in
    ``gap`` (a stall)."""
    intervals = [0.15, 0.45, 0.2, 0.6, 0.15, 0.3, 0.5, 0.2]
    times, t, index = [], 0.0, 0
    while t < seconds:
        if not gap[0] < t < gap[1]:
            times.append(round(t, 3))
        t += intervals[index % len(intervals)]
        index += 1
    return times


SCENES: dict[str, Scene] = {
    # a person walks behind a pillar that hides the line: one crossing, one object, one zone stay
    "pillar": Scene(
        [scenes.Walker(0, scenes.walk((40, GROUND), (600, GROUND), 0.2, 5.2))], 5.5,
        {("line_cross", "door", "a_to_b"): 1, ("zone_enter", "lobby", None): 1, ("zone_exit", "lobby", None): 1},
        objects=1, rules={"lines": [DOOR], "zones": [LOBBY]}, pillars=[scenes.Pillar(285, 355)],
    ),
    # two people cross the line in opposite directions, overlapping as they pass each other on it
    "overlap": Scene(
        [scenes.Walker(0, scenes.walk((40, GROUND), (600, GROUND), 0.2, 5.2)),
         scenes.Walker(1, scenes.walk((600, GROUND - 8), (40, GROUND - 8), 0.2, 5.2))], 5.5,
        {("line_cross", "door", "a_to_b"): 1, ("line_cross", "door", "b_to_a"): 1},
        objects=2, rules={"lines": [DOOR]},
    ),
    # a person walks to the line, stands on it swaying, loiters in the zone around it, then walks on
    "pause-on-line": Scene(
        [scenes.Walker(0, scenes.via(scenes.walk((100, GROUND), (320, GROUND), 0.2, 2.2), _sway(320, 2.2, 5.7, 5),
                                     scenes.walk((320, GROUND), (560, GROUND), 5.7, 7.7)))], 8.0,
        {("line_cross", "door", "a_to_b"): 1, ("zone_enter", "lobby", None): 1, ("zone_exit", "lobby", None): 1,
         ("loiter", "lobby", None): 1},
        objects=1, rules={"lines": [DOOR | {"min_distance": 0.03}], "zones": [LOBBY | {"loiter_s": 3.0}]},
    ),
    # a faint person-like figure stands still all along (the detector loses it for up to 1.2 s at a time) while
    # a person walks by
    "look-alike": Scene(
        [scenes.Walker(1, scenes.stand((130, GROUND), 0.0, 7.0), opacity=_flickering),
         scenes.Walker(0, scenes.walk((600, GROUND), (240, GROUND), 0.5, 4.0))], 7.0,
        {("line_cross", "door", "b_to_a"): 1},
        objects=2, stationary=1, rules={"lines": [DOOR]},
    ),
    # a person walks out of the frame and comes back after the lost timeout: two objects
    "re-enter": Scene(
        [scenes.Walker(0, scenes.via(scenes.walk((420, GROUND), (700, GROUND), 0.2, 3.0),
                                     scenes.walk((700, GROUND), (420, GROUND), 5.5, 8.3)))], 8.5,
        {("line_cross", "door", "a_to_b"): 1, ("line_cross", "door", "b_to_a"): 1},
        objects=2, rules={"lines": [DOOR | {"points": [[0.75, 0.0], [0.75, 1.0]]}]},
    ),
    # a person stands half out of the frame at its left edge, then walks in across a line near the edge
    "edge": Scene(
        [scenes.Walker(1, scenes.via(scenes.stand((5, GROUND), 0.0, 1.5),
                                     scenes.walk((5, GROUND), (275, GROUND), 1.5, 4.5)))], 5.0,
        {("line_cross", "door", "a_to_b"): 1},
        objects=1, rules={"lines": [DOOR | {"points": [[0.2, 0.0], [0.2, 1.0]]}]},
    ),
    # frames arrive at irregular intervals, with a 1.75 s stall while the person crosses the line
    "irregular": Scene(
        [scenes.Walker(0, scenes.walk((40, GROUND), (600, GROUND), 0.3, 7.3))], 8.0,
        {("line_cross", "door", "a_to_b"): 1, ("zone_enter", "lobby", None): 1, ("zone_exit", "lobby", None): 1},
        objects=1, rules={"lines": [DOOR], "zones": [LOBBY]}, times=_irregular_times(8.0, (3.2, 4.8)),
        camera_fps=10,
    ),
}


@dataclass(frozen=True)
class Counts:
    """What argusd reported for a scene, in the terms of its truth."""

    rules: Truth
    objects: int
    stationary: int
    events: list[dict]

    def matches(self, scene: Scene) -> bool:
        return self.rules == scene.truth and self.objects == scene.objects and self.stationary == scene.stationary


def counts(events: list[dict]) -> Counts:
    rules = collections.Counter((e["type"], e["rule"], e.get("direction")) for e in events if "rule" in e)
    objects = {e["object_id"] for e in events if e["type"] == "new"}
    stationary = {e["object_id"] for e in events if e.get("stationary")}
    return Counts(dict(rules), len(objects), len(stationary), events)


def run_corpus(directory: Path, tracker: str = "bytetrack", names: Sequence[str] = tuple(SCENES),
               timeout_s: float = 540) -> dict[str, Counts]:
    """Render the scenes into ``directory``, analyse them all with one argusd (a camera each, offline, the
    fall detector at 640 with both its classes labelled `person`), return what it reported per scene."""
    stream = f"argusd:test:corpus:{uuid.uuid4().hex}:{tracker}"  # a stream of this run's events alone
    cameras = [{"id": name, "url": f"file://{SCENES[name].render(directory / f'{name}.mp4')}",
                "fps": SCENES[name].camera_fps, "realtime": False, **SCENES[name].rules} for name in names]
    config = daemon_config(
        cameras,
        detector=detector_config(imgsz=640, device=None, labels={"Normal": "person", "Fall": "person"}),
        tracker={"kind": tracker, "confirm_frames": 3, "lost_timeout_s": LOST_TIMEOUT_S,
                 "stationary_s": STATIONARY_S},
        redis={"stream": stream},
    )
    with running_daemon(write_config(directory / f"argusd-{tracker}.yaml", config), "--exit-when-done") as daemon:
        returncode = daemon.wait(timeout_s)
    if returncode != 0:
        raise AssertionError(f"argusd exited with {returncode}:\n{daemon.tail()}")
    client = redis.Redis(decode_responses=True)
    by_camera: dict[str, list[dict]] = collections.defaultdict(list)
    for _, fields in client.xrange(stream):
        event = json.loads(fields["data"])
        by_camera[event["camera"]].append(event)
    client.delete(stream)
    return {name: counts(by_camera[name]) for name in names}
