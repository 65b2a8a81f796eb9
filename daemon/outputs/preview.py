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
from daemon.core.wakeup import LoopWakeup
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
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._closed = False
        self._seq = 0
        self.wakeup = LoopWakeup()  # preview streams on the HTTP server's loop wait on this

    def update(self, frame: Frame, detections: Detections, rules: CameraRules | None = None) -> None:
        """Called by the inference thread for every analysed frame: O(1), references only."""
        with self._lock:
            self._seq += 1
            self._latest[frame.camera_id] = _Latest(frame, detections, self._seq, rules)
        self.wakeup.notify()

    def forget(self, camera_id: str) -> None:
        with self._lock:
            self._latest.pop(camera_id, None)
        self.wakeup.notify()

    def close(self) -> None:
        """Wake every waiting viewer so preview streams end with the daemon."""
        with self._lock:
            self._closed = True
        self.wakeup.notify()

    @property
    def closed(self) -> bool:
        return self._closed

    def latest_jpeg(self, camera_id: str) -> tuple[int, bytes] | None:
        """(sequence number, annotated JPEG) of the camera's latest analysed frame; None before the first."""
        with self._lock:
            entry = self._latest.get(camera_id)
        return None if entry is None else (entry.seq, self._encoded(entry))

    def latest_seq(self, camera_id: str) -> int | None:
        """The sequence number of the camera's latest analysed frame, without encoding it."""
        with self._lock:
            entry = self._latest.get(camera_id)
        return None if entry is None else entry.seq

    def _encoded(self, entry: _Latest) -> bytes:
        with self._encode_lock:
            if entry.jpeg is None:
                frame = entry.frame
                caption = f"{frame.camera_id}  {iso_utc(frame.captured_at)}  {len(entry.detections)} object(s)"
                zones, lines = (entry.rules.zones, entry.rules.lines) if entry.rules else ((), ())
                image = annotate(frame.image, entry.detections, self.names, caption, zones, lines)
                entry.jpeg = encode_jpeg(image, self.jpeg_quality)
            return entry.jpeg
