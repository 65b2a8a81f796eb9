"""Dominant colour of an object's crop, from HSV pixel votes. No weights: always available."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from daemon.config.models import ClassifierConfig

# Hue bins on OpenCV's 0..179 scale, upper bounds exclusive; red wraps around.
_HUES = (("red", 8), ("orange", 20), ("yellow", 33), ("green", 78), ("blue", 128), ("purple", 148),
         ("pink", 170), ("red", 180))
NAMES = ("black", "white", "grey", "brown", *dict.fromkeys(name for name, _ in _HUES))


def colour_votes(hsv: np.ndarray) -> np.ndarray:
    """Index into NAMES for every pixel of an (N, 3) HSV array."""
    h, s, v = hsv[:, 0].astype(np.int16), hsv[:, 1].astype(np.int16), hsv[:, 2].astype(np.int16)
    hue_names = [name for name, _ in _HUES]
    bounds = np.array([upper for _, upper in _HUES])
    index = np.array([NAMES.index(name) for name in hue_names])[np.searchsorted(bounds, h, side="right")]
    brown = (h < 20) & (v < 150) & (s >= 60)
    index = np.where(brown, NAMES.index("brown"), index)
    index = np.where(s < 45, np.where(v > 190, NAMES.index("white"), NAMES.index("grey")), index)
    return np.where(v < 50, NAMES.index("black"), index)


class ColourClassifier:
    """Names the most common colour in the middle of the crop (for people: the torso, rows 20-60%)."""

    def __init__(self, config: ClassifierConfig) -> None:
        self.name = config.name
        self.min_share = config.min_confidence

    def classify(self, crops: Sequence[np.ndarray]) -> list[str | None]:
        return [self._dominant(crop) for crop in crops]

    def _dominant(self, crop: np.ndarray) -> str | None:
        height, width = crop.shape[:2]
        centre = crop[int(height * 0.2) : max(int(height * 0.6), 1), int(width * 0.25) : max(int(width * 0.75), 1)]
        if centre.size == 0:
            return None
        small = cv2.resize(centre, (16, 16), interpolation=cv2.INTER_AREA)
        votes = np.bincount(colour_votes(cv2.cvtColor(small, cv2.COLOR_BGR2HSV).reshape(-1, 3)), minlength=len(NAMES))
        best = int(votes.argmax())
        return NAMES[best] if votes[best] / votes.sum() >= self.min_share else None
