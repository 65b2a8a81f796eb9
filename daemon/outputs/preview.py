"""The latest analysed frame of each camera, for /cameras/{id}/latest.jpg and the live MJPEG preview.

The inference thread only stores references (no drawing, no encoding on the hot path); the first HTTP
viewer of a frame draws and encodes it, and every other viewer of that frame reuses the same JPEG.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from daemon.analytics.rules import CameraRules
from daemon.core.events import iso_utc
from daemon.core.types import Detections, Frame
from daemon.outputs.annotate import annotate, encode_jpeg


@dataclass(slots=True)
class _Latest:
    frame: Frame
    detections: Detections
    seq: int  # store-wide counter: increases with every update, also across a camera's removal and return
    rules: CameraRules | None  # the camera's zones and lines, drawn under the boxes
    jpeg: bytes | None = None


class PreviewStore:
    def __init__(self, jpeg_quality: int = 80) -> None:
        self.jpeg_quality = jpeg_quality
        self.names: dict[int, str] = {}  # class id -> label, set once the detector is loaded
        self._latest: dict[str, _Latest] = {}
        self._cond = threading.Condition()
        self._encode_lock = threading.Lock()
        self._closed = False
        self._seq = 0

    def update(self, frame: Frame, detections: Detections, rules: CameraRules | None = None) -> None:
        """Called by the inference thread for every analysed frame: O(1), references only."""
        with self._cond:
            self._seq += 1
            self._latest[frame.camera_id] = _Latest(frame, detections, self._seq, rules)
            self._cond.notify_all()

    def forget(self, camera_id: str) -> None:
        with self._cond:
            self._latest.pop(camera_id, None)
            self._cond.notify_all()

    def close(self) -> None:
        """Wake every waiting viewer so preview streams end with the daemon."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def latest_jpeg(self, camera_id: str) -> tuple[int, bytes] | None:
        """(sequence number, annotated JPEG) of the camera's latest analysed frame; None before the first."""
        with self._cond:
            entry = self._latest.get(camera_id)
        return None if entry is None else (entry.seq, self._encoded(entry))

    def next_jpeg(self, camera_id: str, after_seq: int, timeout: float) -> tuple[int, bytes] | None:
        """Wait up to ``timeout`` for a frame newer than ``after_seq``; None on timeout or close."""
        def newer() -> bool:
            entry = self._latest.get(camera_id)
            return self._closed or (entry is not None and entry.seq > after_seq)

        with self._cond:
            if not self._cond.wait_for(newer, timeout) or self._closed:
                return None
            entry = self._latest.get(camera_id)
        return None if entry is None else (entry.seq, self._encoded(entry))

    def _encoded(self, entry: _Latest) -> bytes:
        with self._encode_lock:
            if entry.jpeg is None:
                frame = entry.frame
                caption = f"{frame.camera_id}  {iso_utc(frame.captured_at)}  {len(entry.detections)} object(s)"
                zones, lines = (entry.rules.zones, entry.rules.lines) if entry.rules else ((), ())
                image = annotate(frame.image, entry.detections, self.names, caption, zones, lines)
                entry.jpeg = encode_jpeg(image, self.jpeg_quality)
            return entry.jpeg
