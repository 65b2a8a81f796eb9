"""Cost of motion gating per frame: MotionGate.wants_detection on a 1280x720 frame, as GStreamer hands it
over (I420 planes) and as a BGR image, next to the BGR conversion a detected frame needs anyway.

    .venv/bin/python benchmarks/motion_gate.py [--frames 2000]

Not a test: it prints microseconds per frame (median of the calls).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.config.models import MotionConfig
from daemon.core.types import Frame, YuvImage
from daemon.inference.motion import MotionGate

WIDTH, HEIGHT = 1280, 720


def median_us(frames: int, make: Callable[[int], Frame], work: Callable[[Frame], object]) -> float:
    times = []
    for seq in range(frames):
        frame = make(seq)
        started = time.perf_counter()
        work(frame)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8)
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).tobytes()
    chroma = WIDTH // 2 * HEIGHT // 2
    planes = YuvImage(i420, WIDTH, HEIGHT, (WIDTH, WIDTH // 2, WIDTH // 2),
                      (0, WIDTH * HEIGHT, WIDTH * HEIGHT + chroma))

    def from_planes(seq: int) -> Frame:
        return Frame("cam", seq, -1, seq / 5, yuv=planes)

    def from_bgr(seq: int) -> Frame:
        return Frame("cam", seq, -1, seq / 5, bgr)

    gate = MotionGate(MotionConfig(enabled=True))
    print(f"gate, I420 planes: {median_us(args.frames, from_planes, gate.wants_detection):7.0f} us/frame")
    gate = MotionGate(MotionConfig(enabled=True))
    print(f"gate, BGR image:   {median_us(args.frames, from_bgr, gate.wants_detection):7.0f} us/frame")
    print(f"I420 to BGR (what a detected frame costs first): "
          f"{median_us(args.frames // 10, from_planes, lambda frame: frame.image):7.0f} us/frame")


if __name__ == "__main__":
    main()
