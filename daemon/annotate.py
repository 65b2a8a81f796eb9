"""Drawing detections on a frame for snapshots, latest.jpg and the live preview."""

from __future__ import annotations

import cv2
import numpy as np

from .types import Detections

_PALETTE = np.array(
    [(56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
     (23, 204, 146), (134, 219, 61), (211, 188, 0), (209, 99, 0), (255, 56, 132), (255, 149, 200)],
    dtype=np.uint8,
)


def colour_for(key: int) -> tuple[int, int, int]:
    b, g, r = _PALETTE[key % len(_PALETTE)]
    return int(b), int(g), int(r)


def annotate(image: np.ndarray, detections: Detections, names: dict[int, str], caption: str | None = None) -> np.ndarray:
    """A copy of ``image`` (BGR) with boxes, class labels, confidences and track ids drawn on it."""
    canvas = np.ascontiguousarray(image).copy()
    thickness = max(1, round(min(canvas.shape[:2]) / 300))
    for row in range(len(detections)):
        x1, y1, x2, y2 = (int(v) for v in detections.xyxy[row])
        track_id = int(detections.track_id[row])
        class_id = int(detections.class_id[row])
        colour = colour_for(track_id if track_id >= 0 else class_id)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
        label = f"{names.get(class_id, class_id)} {detections.confidence[row]:.2f}"
        if track_id >= 0:
            label = f"#{track_id} {label}"
        _text(canvas, label, (x1, max(y1, 14)), colour)
    if caption:
        _text(canvas, caption, (4, canvas.shape[0] - 6), (40, 40, 40))
    return canvas


def _text(canvas: np.ndarray, text: str, origin: tuple[int, int], background: tuple[int, int, int]) -> None:
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.45
    (width, height), baseline = cv2.getTextSize(text, font, scale, 1)
    x, y = origin
    cv2.rectangle(canvas, (x, y - height - baseline), (x + width + 2, y), background, cv2.FILLED)
    cv2.putText(canvas, text, (x + 1, y - baseline + 1), font, scale, (255, 255, 255), 1, cv2.LINE_AA)


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()
