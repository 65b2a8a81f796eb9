"""Ground-truth scenes: real people (cut from real photos) moved along scripted paths over a real street
background, in front of or behind real-textured occluders, written as video files (at a constant rate, or at
the irregular capture times a scene gives). Because the paths are scripted, the true line crossings, zone
entries and object counts are known exactly."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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
_FACADE_IN_BUS = (0, 300, 560, 620)  # a strip of the building's wall in bus.jpg: the texture of a pillar

Path2D = Callable[[float], tuple[float, float] | None]  # t seconds -> bottom-centre (x, y) pixels, or absent


@dataclass(frozen=True)
class Walker:
    person: int  # index into _PEOPLE_IN_BUS
    path: Path2D
    # below 1: blended with the background (a faint look-alike the detector flickers on); a function of the
    # time for a flickering one
    opacity: float | Callable[[float], float] = 1.0


@dataclass(frozen=True)
class Pillar:
    """A full-height pillar between pixel columns x0 and x1, in front of the walkers."""

    x0: int
    x1: int


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


def stand(at: tuple[float, float], t0: float, t1: float) -> Path2D:
    """Stand at ``at`` from t0 to t1."""
    return walk(at, at, t0, t1)


def via(*legs: Path2D) -> Path2D:
    """The first of ``legs`` that places the walker at a time (legs in time order, e.g. walk, stand, walk)."""

    def at(t: float) -> tuple[float, float] | None:
        return next((p for p in (leg(t) for leg in legs) if p is not None), None)

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


def _pillar_texture(height: int, width: int) -> np.ndarray:
    bus = cv2.imread(str(require_asset(ASSETS / "bus.jpg")))
    r0, r1, c0, c1 = _FACADE_IN_BUS
    return cv2.resize(bus[r0:r1, c0:c1], (width, height))


def frame_times(seconds: float) -> list[float]:
    """Capture times at FPS frames per second."""
    return [index / FPS for index in range(round(seconds * FPS))]


def frames(walkers: list[Walker], times: Sequence[float], pillars: Sequence[Pillar] = ()) -> Iterator[np.ndarray]:
    """The scene's BGR frames at ``times`` (seconds)."""
    background = _background()
    people = _people()
    height, width = background.shape[:2]
    textures = [_pillar_texture(height, pillar.x1 - pillar.x0) for pillar in pillars]
    for t in times:
        frame = background.copy()
        for walker in walkers:
            position = walker.path(t)
            if position is None:
                continue
            crop = people[walker.person]
            x0 = round(position[0] - crop.shape[1] / 2)
            y0 = round(position[1] - crop.shape[0])
            xs, ys = max(x0, 0), max(y0, 0)
            xe, ye = min(x0 + crop.shape[1], width), min(y0 + crop.shape[0], height)
            if xe > xs and ye > ys:
                visible = crop[ys - y0 : ye - y0, xs - x0 : xe - x0]
                opacity = walker.opacity(t) if callable(walker.opacity) else walker.opacity
                if opacity < 1:
                    visible = cv2.addWeighted(visible, opacity, frame[ys:ye, xs:xe], 1 - opacity, 0)
                frame[ys:ye, xs:xe] = visible
        for pillar, texture in zip(pillars, textures, strict=True):
            frame[:, pillar.x0 : pillar.x1] = texture
        yield frame


def render(walkers: list[Walker], seconds: float, path: Path, pillars: Sequence[Pillar] = ()) -> Path:
    """Write the scene as an MPEG-4 file at FPS frames per second."""
    scene = frames(walkers, frame_times(seconds), pillars)
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


def render_at(walkers: list[Walker], times: Sequence[float], path: Path, pillars: Sequence[Pillar] = ()) -> Path:
    """Write the scene as an MP4 (H.264) whose frames carry ``times`` as their timestamps: a file whose frames
    are as irregular as the times (OpenCV's writer only writes a constant rate)."""
    from daemon.sources.gst import Gst

    first, *_ = scene = list(frames(walkers, times, pillars))
    height, width = first.shape[:2]
    pipeline = Gst.parse_launch(
        f"appsrc name=src format=time caps=video/x-raw,format=BGR,width={width},height={height},framerate=0/1 "
        f"! videoconvert ! x264enc speed-preset=ultrafast tune=zerolatency key-int-max=10 ! h264parse "
        f"! mp4mux ! filesink location={path}")
    source = pipeline.get_by_name("src")
    pipeline.set_state(Gst.State.PLAYING)
    ends = [*times[1:], times[-1] + 0.1]
    for image, t, end in zip(scene, times, ends, strict=True):
        buffer = Gst.Buffer.new_wrapped(image.tobytes())
        buffer.pts, buffer.duration = round(t * Gst.SECOND), round((end - t) * Gst.SECOND)
        source.emit("push-buffer", buffer)
    source.emit("end-of-stream")
    message = pipeline.get_bus().timed_pop_filtered(30 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if message is None or message.type != Gst.MessageType.EOS:
        raise RuntimeError(f"cannot write {path}: {message.parse_error() if message else 'timed out'}")
    return path
