"""Small operations on BGR images shared by stages."""

from __future__ import annotations

import math

import numpy as np


def crop(image: np.ndarray, box: np.ndarray | list[float], margin: float = 0.0,
         min_pixels: int = 1) -> np.ndarray | None:
    """The pixels of pixel-xyxy ``box`` widened by ``margin`` (a fraction of the box's size on each side),
    clipped to the image; None when fewer than ``min_pixels`` remain in either direction. A view, no copy."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    margin_x, margin_y = (x2 - x1) * margin, (y2 - y1) * margin
    left, top = max(0, int(x1 - margin_x)), max(0, int(y1 - margin_y))
    right, bottom = min(width, math.ceil(x2 + margin_x)), min(height, math.ceil(y2 + margin_y))
    if right - left < min_pixels or bottom - top < min_pixels:
        return None
    return image[top:bottom, left:right]
