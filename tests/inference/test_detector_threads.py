"""detector.threads caps the CPU runtime's threads for every format the plugin loads (.pt, ONNX, OpenVINO)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from daemon.config.models import DetectorConfig
from plugins.detectors.ultralytics_detector import UltralyticsDetector, export_model
from tests.support.models import random_yolo11n


@pytest.fixture(scope="module")
def yolo11n(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_yolo11n(tmp_path_factory.mktemp("models") / "yolo11n.pt")


def runtime_threads(detector: UltralyticsDetector) -> int:
    backend = detector.model.predictor.model.backend
    if hasattr(backend, "session"):
        return backend.session.get_session_options().intra_op_num_threads
    if hasattr(backend, "ov_compiled_model"):
        return int(backend.ov_compiled_model.get_property("INFERENCE_NUM_THREADS"))
    return torch.get_num_threads()


@pytest.mark.parametrize("fmt", ["pt", "onnx", "openvino"])
def test_threads_caps_the_runtime_and_detection_still_runs(yolo11n: Path, fmt: str) -> None:
    model = yolo11n if fmt == "pt" else export_model(str(yolo11n), fmt, 320)
    previous = torch.get_num_threads()
    try:
        detector = UltralyticsDetector(DetectorConfig(model=str(model), device="cpu", imgsz=320, threads=1,
                                                      runtime="torch" if fmt == "pt" else "auto"))
        assert runtime_threads(detector) == 1
        assert torch.get_num_threads() == 1
        found = detector.detect([np.zeros((360, 640, 3), np.uint8)] * 2)
        assert len(found) == 2
    finally:
        torch.set_num_threads(previous)
