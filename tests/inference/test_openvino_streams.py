"""OpenVINO on a CPU runs a batch as single images on parallel streams: each image's detections are those it
gets alone, in the batch's order, and a single image keeps the latency model with every thread."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.config.models import DetectorConfig
from plugins.detectors.openvino_streams import ParallelRequests
from plugins.registry import load_detector
from tests.support.assets import ASSETS, DETECTOR, require_asset


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory):
    return load_detector(DetectorConfig(model=str(require_asset(DETECTOR)), imgsz=320, device="cpu",
                                        runtime="openvino", threads=2,
                                        cache_dir=str(tmp_path_factory.mktemp("models"))))


def pictures() -> list[np.ndarray]:
    """Four different real pictures of one shape: the two photos, each also mirrored."""
    photos = [cv2.resize(cv2.imread(str(require_asset(ASSETS / name))), (640, 480)) for name in ("bus.jpg",
                                                                                                 "zidane.jpg")]
    return [photos[0], photos[1], photos[0][:, ::-1].copy(), photos[1][:, ::-1].copy()]


def test_a_batch_runs_on_parallel_streams_and_matches_single_images(detector) -> None:
    compiled = detector.model.predictor.model.backend.ov_compiled_model
    assert isinstance(compiled, ParallelRequests) and compiled.streams == 2
    assert int(compiled.get_property("INFERENCE_NUM_THREADS")) == 2
    images = pictures()
    alone = [detector.detect([image])[0] for image in images]
    together = detector.detect(images)
    assert sum(len(found) for found in alone) >= 4  # people in both photos: the comparison compares something
    for single, batched in zip(alone, together, strict=True):
        assert len(single) == len(batched)
        np.testing.assert_allclose(batched.xyxy, single.xyxy, atol=0.5)
        np.testing.assert_allclose(batched.confidence, single.confidence, atol=1e-3)
    odd = detector.detect(images[:3])  # three images over two streams
    for single, batched in zip(alone[:3], odd, strict=True):
        np.testing.assert_allclose(batched.xyxy, single.xyxy, atol=0.5)
