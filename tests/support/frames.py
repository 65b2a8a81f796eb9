"""Frames as a decoder hands them over: I420 planes with padded rows, built from a BGR picture."""

from __future__ import annotations

import cv2
import numpy as np

from daemon.core.types import YuvImage

STRIDE_PADDING = 64  # bytes GStreamer-like planes carry beyond each row


def padded_i420(image: np.ndarray) -> YuvImage:
    """``image`` as I420 planes with padded rows and gaps between the planes, as a decoder may lay them out."""
    height, width = image.shape[:2]
    packed = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).ravel()
    chroma = (height // 2, width // 2)
    planes = [packed[: width * height].reshape(height, width),
              packed[width * height: width * height * 5 // 4].reshape(chroma),
              packed[width * height * 5 // 4:].reshape(chroma)]
    data, strides, offsets = b"", [], []
    for plane in planes:
        rows, cols = plane.shape
        padded = np.zeros((rows, cols + STRIDE_PADDING), np.uint8)
        padded[:, :cols] = plane
        offsets.append(len(data))
        strides.append(cols + STRIDE_PADDING)
        data += padded.tobytes() + bytes(STRIDE_PADDING)  # a gap before the next plane
    return YuvImage(data, width, height, (strides[0], strides[1], strides[2]), (offsets[0], offsets[1], offsets[2]))
