"""Drawing detections on a frame for snapshots, latest.jpg and the live preview."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from daemon.config.models import LineConfig, ZoneConfig
from daemon.core.types import Detections

_PALETTE = np.array(
    [(56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
     (23, 204, 146), (134, 219, 61), (211, 188, 0), (209, 99, 0), (255, 56, 132), (255, 149, 200)],
    dtype=np.uint8,
)


def colour_for(key: int) -> tuple[int, int, int]:
    b, g, r = _PALETTE[key % len(_PALETTE)]
    return int(b), int(g), int(r)


ZONE_COLOUR = (0, 200, 255)  # BGR amber: rules stand apart from the per-track box colours
LINE_COLOUR = (255, 0, 255)
_FONT, _FONT_SCALE = cv2.FONT_HERSHEY_SIMPLEX, 0.45


def annotate(image: np.ndarray, detections: Detections, names: dict[int, str], caption: str | None = None,
             zones: Sequence[ZoneConfig] = (), lines: Sequence[LineConfig] = ()) -> np.ndarray:
    """A copy of ``image`` (BGR) with the camera's zones and lines, then boxes, class labels,
    confidences and track ids drawn on it."""
    canvas = np.ascontiguousarray(image).copy()
    thickness = max(1, round(min(canvas.shape[:2]) / 300))
    _draw_rules(canvas, zones, lines, thickness)
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
        _caption(canvas, caption)
    return canvas


def _draw_rules(canvas: np.ndarray, zones: Sequence[ZoneConfig], lines: Sequence[LineConfig], thickness: int) -> None:
    """Zones as translucent polygons, lines with their A and B sides marked; coordinates are normalised."""
    scale = np.array([canvas.shape[1], canvas.shape[0]], np.float64)
    if zones:
        overlay = canvas.copy()
        for zone in zones:
            polygon = np.round(np.array(zone.polygon, np.float64) * scale).astype(np.int32)
            cv2.fillPoly(overlay, [polygon], ZONE_COLOUR)
        cv2.addWeighted(overlay, 0.2, canvas, 0.8, 0, dst=canvas)
        for zone in zones:
            polygon = np.round(np.array(zone.polygon, np.float64) * scale).astype(np.int32)
            cv2.polylines(canvas, [polygon], True, ZONE_COLOUR, thickness, cv2.LINE_AA)
            x, y = polygon.min(axis=0)
            _text(canvas, zone.name, (int(x), int(y) + 14), ZONE_COLOUR)
    for line in lines:
        p1, p2 = (np.array(point, np.float64) * scale for point in line.points)
        cv2.line(canvas, _pixel(p1), _pixel(p2), LINE_COLOUR, thickness + 1, cv2.LINE_AA)
        # Side A is where (p2-p1) x (p-p1) > 0 (see LineConfig): mark both sides near the middle.
        direction = p2 - p1
        normal = np.array([-direction[1], direction[0]]) / max(np.hypot(*direction), 1e-9)
        middle = (p1 + p2) / 2
        for side, sign in (("A", 1), ("B", -1)):
            x, y = _pixel(middle + sign * 14 * normal)
            cv2.putText(canvas, side, (x - 4, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, LINE_COLOUR, 1, cv2.LINE_AA)
        label = line.name
        if line.a_to_b or line.b_to_a:
            label += f" (A>B {line.a_to_b or '-'}, B>A {line.b_to_a or '-'})"
        x, y = _pixel(p1)
        _text(canvas, label, (x + 2, max(y - 4, 14)), LINE_COLOUR)


def _pixel(point: np.ndarray) -> tuple[int, int]:
    return int(np.rint(point[0])), int(np.rint(point[1]))


def _caption(canvas: np.ndarray, caption: str) -> None:
    """Caption lines (split at newlines, long ones wrapped at words to the image width) at the bottom."""
    max_width = canvas.shape[1] - 10
    lines: list[str] = []
    for paragraph in caption.splitlines():
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if line and cv2.getTextSize(candidate, _FONT, _FONT_SCALE, 1)[0][0] > max_width:
                lines.append(line)
                candidate = word
            line = candidate
        lines.append(line)
    (_, height), baseline = cv2.getTextSize("Ag", _FONT, _FONT_SCALE, 1)
    step = height + baseline + 2
    bottom = canvas.shape[0] - 6
    for index, line in enumerate(lines):
        _text(canvas, line, (4, bottom - (len(lines) - 1 - index) * step), (40, 40, 40))


def _text(canvas: np.ndarray, text: str, origin: tuple[int, int], background: tuple[int, int, int]) -> None:
    font, scale = _FONT, _FONT_SCALE
    (width, height), baseline = cv2.getTextSize(text, font, scale, 1)
    x, y = origin
    cv2.rectangle(canvas, (x, y - height - baseline), (x + width + 2, y), background, cv2.FILLED)
    cv2.putText(canvas, text, (x + 1, y - baseline + 1), font, scale, (255, 255, 255), 1, cv2.LINE_AA)


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()
