"""detector.threads caps the CPU runtime's threads for every format the plugin loads (.pt, ONNX, OpenVINO); unset, the
threads are chosen per runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from daemon.config.models import DetectorConfig
from plugins.detectors.runtimes import default_threads
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


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime", "openvino"])
def test_unset_threads_are_chosen_for_the_runtime_not_inherited(yolo11n: Path, runtime: str) -> None:
    """ultralytics leaves torch one thread (OMP_NUM_THREADS=1 at import); argusd sets each runtime's own."""
    previous = torch.get_num_threads()
    try:
        detector = UltralyticsDetector(DetectorConfig(model=str(yolo11n), device="cpu", imgsz=64, runtime=runtime))
        assert detector.runtime == runtime
        assert runtime_threads(detector) == detector.threads == default_threads(runtime)
    finally:
        torch.set_num_threads(previous)
