"""Motion gating: a cheap per-camera check that decides whether a frame needs the detector.

The gate compares a small, blurred grey copy of each frame with the copy of the frame ``LAG_S`` earlier,
and counts the pixels that differ by more than ``pixel_threshold``. A frame goes to the detector while
their share reaches ``min_area``, for ``still_s`` after the last such frame, while the lifecycle still
confirms a new object (confirmation needs consecutive detections), and in a still scene at least every
``keepalive_s``.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

from daemon.config.models import MotionConfig
from daemon.core.types import Frame

GREY_WIDTH = 96  # least pixels; averaging a 720p picture down this far already removes most sensor and codec noise
BLUR = (3, 3)  # what the averaging leaves (block edges, single noisy pixels) must not count as change
# Frames are compared with the one this much earlier, whatever the camera's fps: long enough for a person
# walking slowly to move visibly in the small copy, short enough that one who stopped or left (whose old
# position differs from the picture now) stops counting as motion half a second later.
LAG_S = 0.5


class MotionGate:
    """One camera's gate; called by the inference thread for every frame of the camera, in order."""

    def __init__(self, config: MotionConfig) -> None:
        self.config = config
        self._recent: deque[tuple[float, np.ndarray]] = deque()  # (captured_at, small grey copy), oldest first
        self._moved_at = 0.0  # captured_at of the last frame with motion
        self._detected_at = 0.0  # ... of the last frame sent to the detector

    def wants_detection(self, frame: Frame, confirming: bool = False) -> bool:
        """Whether ``frame`` goes to the detector; ``confirming``: the camera has a track not confirmed yet."""
        grey = cv2.GaussianBlur(frame.small_grey(GREY_WIDTH), BLUR, 0)
        at = frame.captured_at
        recent = self._recent
        # A camera's first frame, or the first of a new connection (the scene may have changed meanwhile),
        # counts as motion, so that the objects already in the scene are found and confirmed.
        if frame.seq == 0 or not recent or recent[0][1].shape != grey.shape:
            recent.clear()
            self._moved_at = at
        else:
            while len(recent) > 1 and at - recent[1][0] >= LAG_S:
                recent.popleft()  # the oldest is the newest copy at least LAG_S old, once frames span LAG_S
            if changed_fraction(grey, recent[0][1], self.config.pixel_threshold) >= self.config.min_area:
                self._moved_at = at
        recent.append((at, grey))
        wanted = (confirming or at - self._moved_at <= self.config.still_s
                  or at - self._detected_at >= self.config.keepalive_s)
        if wanted:
            self._detected_at = at
        return wanted


def changed_fraction(grey: np.ndarray, earlier: np.ndarray, pixel_threshold: float) -> float:
    """Share of the pixels of ``grey`` that differ from ``earlier`` by more than ``pixel_threshold``."""
    difference = grey.astype(np.int16) - earlier.astype(np.int16)
    # A change of the whole picture's brightness (auto exposure, a light switched on) is not motion.
    difference -= np.int16(np.median(difference))
    return np.count_nonzero(np.abs(difference) > pixel_threshold) / difference.size
