"""The data that flows between stages: frames, detections (struct of arrays) and events."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class Frame:
    """One decoded frame from a camera. ``image`` is HxWx3 uint8 BGR.

    A camera source hands over the decoder's YUV planes (``yuv``) and the BGR image is made on first access
    of ``image``, on the thread that analyses the frame: a frame superseded by a newer one before inference
    took it is never colour-converted.
    """

    __slots__ = ("camera_id", "seq", "pts_ns", "captured_at", "host_time", "_image", "_yuv")

    def __init__(self, camera_id: str, seq: int, pts_ns: int, captured_at: float,
                 image: np.ndarray | None = None, yuv: YuvImage | None = None, host_time: float | None = None) -> None:
        if (image is None) == (yuv is None):
            raise ValueError("a Frame needs exactly one of image and yuv")
        self.camera_id = camera_id
        self.seq = seq  # 0-based count of frames delivered by this camera's current source
        self.pts_ns = pts_ns  # stream timestamp (GStreamer buffer PTS), -1 when the buffer has none
        # wall-clock seconds (time.time()) when the frame left GStreamer; for a file analysed offline, the
        # file's own timeline (its PTS) counted from the wall-clock time its first frame left GStreamer
        self.captured_at = captured_at
        # wall-clock seconds on this host when the frame left GStreamer, whatever clock captured_at is on (the
        # camera's own with `clock: camera`, a file's timeline offline): latency and staleness are measured on it
        self.host_time = captured_at if host_time is None else host_time
        self._image = image
        self._yuv = yuv

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            self._image = self._planes().to_bgr()
            self._yuv = None
        return self._image

    def small_grey(self, width: int) -> np.ndarray:
        """A grey copy at least ``width`` pixels wide: the picture shrunk by a whole factor, each block of
        pixels averaged. Made from the luma plane when the frame still has its YUV planes, so no BGR image
        is made."""
        import cv2

        if self._image is None:
            return _shrink(self._planes().luma(), width)
        # shrinking before converting: the colour conversion then touches only the small copy
        return cv2.cvtColor(_shrink(self._image, width), cv2.COLOR_BGR2GRAY)

    @property
    def width(self) -> int:
        return self._image.shape[1] if self._image is not None else self._planes().width

    @property
    def height(self) -> int:
        return self._image.shape[0] if self._image is not None else self._planes().height

    def image_within(self, longest_side: int | None) -> tuple[np.ndarray, float, float]:
        """A BGR image whose longer side is at most ``longest_side`` (an even size), and the factors (x, y)
        that map its pixels back to the frame's. Made from the YUV planes at the small size when the frame
        has not been converted yet: a 720p frame for a 320 model costs a fifth of its full conversion."""
        import cv2

        width, height = self.width, self.height
        if longest_side is None or max(width, height) <= longest_side:
            return self.image, 1.0, 1.0
        scale = longest_side / max(width, height)
        small_w, small_h = max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)
        if self._image is not None:  # the models' own letterbox resize: bilinear
            small = cv2.resize(self._image, (small_w, small_h), interpolation=cv2.INTER_LINEAR)
        else:
            small = self._planes().to_bgr_scaled(small_w, small_h)
        return small, width / small_w, height / small_h

    def _planes(self) -> YuvImage:
        # The constructor sets exactly one of the two, and the planes are dropped only once the image is set.
        if self._yuv is None:
            raise RuntimeError("a Frame without image has no YUV planes either")
        return self._yuv


def _shrink(picture: np.ndarray, width: int) -> np.ndarray:
    """``picture`` shrunk by the whole factor that leaves it at least ``width`` wide (the last rows and columns
    that do not fill a block dropped): OpenCV's INTER_AREA is ~7x faster by a whole factor than by a fraction."""
    import cv2

    factor = max(1, picture.shape[1] // width)
    rows, cols = picture.shape[0] // factor, picture.shape[1] // factor
    return cv2.resize(picture[: rows * factor, : cols * factor], (cols, rows), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True, slots=True)
class YuvImage:
    """An I420 picture as GStreamer lays it out: three planes at ``offsets`` with row ``strides``."""

    data: bytes
    width: int
    height: int
    strides: tuple[int, int, int]
    offsets: tuple[int, int, int]

    def luma(self) -> np.ndarray:
        """The Y plane, HxW uint8: a view into ``data`` (no copy) that is already a grey picture."""
        return self._plane(0, self.height, self.width)

    def _plane(self, index: int, rows: int, cols: int) -> np.ndarray:
        start, stride = self.offsets[index], self.strides[index]
        return np.frombuffer(self.data, np.uint8, count=stride * rows, offset=start).reshape(rows, stride)[:, :cols]

    def to_bgr_scaled(self, width: int, height: int) -> np.ndarray:
        """BGR at ``width`` x ``height`` (both even): each plane resized (bilinear), then converted once."""
        import cv2

        chroma_w, chroma_h = (self.width + 1) // 2, (self.height + 1) // 2
        planes = [cv2.resize(self.luma(), (width, height), interpolation=cv2.INTER_LINEAR)]
        planes += [cv2.resize(self._plane(index, chroma_h, chroma_w), (width // 2, height // 2),
                              interpolation=cv2.INTER_LINEAR) for index in (1, 2)]
        packed = np.concatenate([plane.ravel() for plane in planes]).reshape(height * 3 // 2, width)
        return cv2.cvtColor(packed, cv2.COLOR_YUV2BGR_I420)

    def to_bgr(self) -> np.ndarray:
        """BGR via OpenCV (BT.601, limited range, as FFmpeg and OpenCV decode); it releases the GIL."""
        import cv2

        width, height = self.width, self.height
        chroma_w, chroma_h = (width + 1) // 2, (height + 1) // 2
        buffer = np.frombuffer(self.data, np.uint8)
        if width % 2 == 0 and height % 2 == 0 and self.strides == (width, chroma_w, chroma_w) \
                and self.offsets == (0, width * height, width * height + chroma_w * chroma_h):
            return cv2.cvtColor(buffer[: width * height * 3 // 2].reshape(height * 3 // 2, width),
                                cv2.COLOR_YUV2BGR_I420)
        # Padded rows or an odd size: repack into a tight, even-sized I420 (the last row and column
        # repeated), convert, then crop back.
        luma = np.pad(self.luma(), ((0, 2 * chroma_h - height), (0, 2 * chroma_w - width)), mode="edge")
        packed = np.concatenate((luma.ravel(), self._plane(1, chroma_h, chroma_w).ravel(),
                                 self._plane(2, chroma_h, chroma_w).ravel()))
        bgr = cv2.cvtColor(packed.reshape(3 * chroma_h, 2 * chroma_w), cv2.COLOR_YUV2BGR_I420)
        return bgr[:height, :width]


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

    def scaled(self, x: float, y: float) -> Detections:
        """The boxes with x coordinates multiplied by ``x`` and y by ``y`` (from a resized image to the frame)."""
        if x == y == 1.0:
            return self
        factors = np.array([x, y, x, y], np.float32)
        return Detections(self.xyxy * factors, self.confidence, self.class_id, self.track_id)

    def with_tracks(self, track_id: np.ndarray) -> Detections:
        return Detections(self.xyxy, self.confidence, self.class_id, np.asarray(track_id, np.int64))
