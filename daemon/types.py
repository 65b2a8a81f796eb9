"""The data that flows between stages: frames, detections (struct of arrays) and events."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded BGR frame from a camera, as GStreamer produced it."""

    camera_id: str
    seq: int  # 0-based count of frames delivered by this camera's current source
    pts_ns: int  # stream timestamp (GStreamer buffer PTS), -1 when the buffer has none
    captured_at: float  # wall-clock seconds (time.time()) when the frame left GStreamer
    image: np.ndarray  # HxWx3 uint8 BGR; may be a strided view of the GStreamer row padding

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def _empty(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


@dataclass(frozen=True, slots=True)
class Detections:
    """All boxes of one frame as parallel arrays: one row per object, pixel xyxy coordinates."""

    xyxy: np.ndarray = field(default_factory=lambda: _empty((0, 4), np.float32))
    confidence: np.ndarray = field(default_factory=lambda: _empty((0,), np.float32))
    class_id: np.ndarray = field(default_factory=lambda: _empty((0,), np.int32))
    track_id: np.ndarray = field(default_factory=lambda: _empty((0,), np.int64))  # -1 before tracking

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if not (len(self.confidence) == len(self.class_id) == len(self.track_id) == n):
            raise ValueError("Detections arrays must have the same length")

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: np.ndarray | slice) -> Detections:
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index], self.track_id[index])

    @classmethod
    def from_arrays(cls, xyxy: np.ndarray, confidence: np.ndarray, class_id: np.ndarray) -> Detections:
        n = len(xyxy)
        return cls(
            np.asarray(xyxy, np.float32).reshape(n, 4),
            np.asarray(confidence, np.float32).reshape(n),
            np.asarray(class_id, np.int32).reshape(n),
            np.full(n, -1, np.int64),
        )

    def with_tracks(self, track_id: np.ndarray) -> Detections:
        return Detections(self.xyxy, self.confidence, self.class_id, np.asarray(track_id, np.int64))
