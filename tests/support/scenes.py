"""Ground-truth scenes: real people (cut from real photos) moved along scripted paths over a real street
background, written as video files. Because the paths are scripted, the true line crossings, zone entries
and object counts are known exactly."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tests.support.assets import ASSETS, BIKES, require_asset

FPS = 10
PERSON_HEIGHT = 180  # pixels, in the 640x272 frame

# (row0, row1, col0, col1) of two whole, unoccluded people in ultralytics' bus.jpg
_PEOPLE_IN_BUS = [(384, 907, 46, 216), (391, 872, 211, 347)]
_EMPTY_STREET_FRAME = 65  # a bikes.mp4 frame with nobody in it

Path2D = Callable[[float], tuple[float, float] | None]  # t seconds -> bottom-centre (x, y) pixels, or absent


@dataclass(frozen=True)
class Walker:
    person: int  # index into _PEOPLE_IN_BUS
    path: Path2D


def walk(start: tuple[float, float], end: tuple[float, float], t0: float, t1: float) -> Path2D:
    """Appear at ``start`` at t0, walk in a straight line to ``end`` by t1, then leave the scene."""

    def at(t: float) -> tuple[float, float] | None:
        if not t0 <= t <= t1:
            return None
        k = (t - t0) / (t1 - t0)
        return start[0] + k * (end[0] - start[0]), start[1] + k * (end[1] - start[1])

    return at


def then_stand(path: Path2D, until: float, t_end_of_walk: float) -> Path2D:
    """After ``path`` ends at ``t_end_of_walk``, stand at its last point until ``until``."""
    last = path(t_end_of_walk)

    def at(t: float) -> tuple[float, float] | None:
        if t <= t_end_of_walk:
            return path(t)
        return last if t <= until else None

    return at


def _background() -> np.ndarray:
    capture = cv2.VideoCapture(str(require_asset(BIKES)))
    capture.set(cv2.CAP_PROP_POS_FRAMES, _EMPTY_STREET_FRAME)
    ok, frame = capture.read()
    if not ok:
        raise RuntimeError("cannot read the background frame")
    return frame


def _people() -> list[np.ndarray]:
    bus = cv2.imread(str(require_asset(ASSETS / "bus.jpg")))
    crops = []
    for r0, r1, c0, c1 in _PEOPLE_IN_BUS:
        crop = bus[r0:r1, c0:c1]
        crops.append(cv2.resize(crop, (round(crop.shape[1] * PERSON_HEIGHT / crop.shape[0]), PERSON_HEIGHT)))
    return crops


def frames(walkers: list[Walker], seconds: float) -> Iterator[np.ndarray]:
    """The scene's BGR frames, FPS per second."""
    background = _background()
    people = _people()
    height, width = background.shape[:2]
    for index in range(round(seconds * FPS)):
        frame = background.copy()
        for walker in walkers:
            position = walker.path(index / FPS)
            if position is None:
                continue
            crop = people[walker.person]
            x0 = round(position[0] - crop.shape[1] / 2)
            y0 = round(position[1] - crop.shape[0])
            xs, ys = max(x0, 0), max(y0, 0)
            xe, ye = min(x0 + crop.shape[1], width), min(y0 + crop.shape[0], height)
            if xe > xs and ye > ys:
                frame[ys:ye, xs:xe] = crop[ys - y0 : ye - y0, xs - x0 : xe - x0]
        yield frame


def render(walkers: list[Walker], seconds: float, path: Path) -> Path:
    """Write the scene as an MPEG-4 file at FPS frames per second."""
    scene = frames(walkers, seconds)
    first = next(scene)
    height, width = first.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (width, height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write mp4v video")
    writer.write(first)
    for frame in scene:
        writer.write(frame)
    writer.release()
    return path
