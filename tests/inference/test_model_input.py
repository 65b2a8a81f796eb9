"""A frame larger than the model's input is handed to the detector already shrunk, made from its I420 planes
at the small size; the boxes, scaled back, are those the detector finds on the full frame."""

from __future__ import annotations

import cv2
import numpy as np

from daemon.config.models import DetectorConfig
from daemon.core.types import Frame
from plugins.registry import load_detector
from tests.support.assets import ASSETS, DETECTOR, require_asset
from tests.support.frames import padded_i420

BUS = ASSETS / "bus.jpg"  # 810x1080, four people


def picture() -> np.ndarray:
    image = cv2.imread(str(require_asset(BUS)))
    return image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]


def test_the_shrunk_image_is_the_full_conversion_resized() -> None:
    image = picture()
    frame = Frame("cam", 0, -1, 0.0, yuv=padded_i420(image))
    small, x, y = frame.image_within(320)
    assert small.shape[0] == 320 and small.shape[0] % 2 == 0 and small.shape[1] % 2 == 0, small.shape
    assert (x, y) == (image.shape[1] / small.shape[1], image.shape[0] / small.shape[0])
    full = Frame("cam", 0, -1, 0.0, yuv=padded_i420(image)).image
    expected = cv2.resize(full, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_LINEAR)
    assert np.abs(small.astype(np.int16) - expected.astype(np.int16)).mean() < 2.0
    assert frame.image_within(4096)[0].shape == image.shape  # never enlarged
    converted = Frame("cam", 0, -1, 0.0, image)
    assert converted.image_within(320)[0].shape == small.shape


def iou(a: np.ndarray, b: np.ndarray) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_detections_on_the_shrunk_image_scaled_back_match_those_on_the_full_frame() -> None:
    detector = load_detector(DetectorConfig(model=str(require_asset(DETECTOR)), imgsz=320, device="cpu"))
    assert detector.input_size == 320
    image = picture()
    on_full = detector.detect([image])[0]
    small, x, y = Frame("cam", 0, -1, 0.0, yuv=padded_i420(image)).image_within(detector.input_size)
    on_small = detector.detect([small])[0].scaled(x, y)
    assert len(on_full) >= 3 and len(on_small) == len(on_full), (on_full, on_small)
    for box in on_full.xyxy:
        assert max(iou(box, other) for other in on_small.xyxy) > 0.9
