"""Any format ultralytics loads runs through the detector plugin: a random-weight yolo11n built from its
YAML (offline; same compute as the trained model), and its ONNX and OpenVINO exports made by
`argusd export`. This proves format coverage and agreement between runtimes, not accuracy."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support.assets import ASSETS, argusd_command, free_port, require_asset
from tests.support.configs import daemon_config, detector_config, write_config
from tests.support.daemon import running_daemon
from tests.support.models import random_yolo11n as random_yolo11n_at
from tests.support.polling import wait_for
from daemon.config.models import DetectorConfig
from plugins.interfaces import PluginError
from plugins.registry import load_detector
from daemon.core.types import Detections


@pytest.fixture(scope="module")
def random_yolo11n(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_yolo11n_at(tmp_path_factory.mktemp("models") / "yolo11n-random.pt")


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    bus = cv2.imread(str(require_asset(ASSETS / "bus.jpg")))
    street = cv2.resize(bus, (640, 360))
    return [bus, street, street[:, ::-1].copy()]  # two shapes in one batch


@pytest.fixture(scope="module")
def exported(random_yolo11n: Path) -> dict[str, Path]:
    """`argusd export` of the random model to each format."""
    outputs = {}
    for fmt in ("onnx", "openvino"):
        result = subprocess.run(argusd_command("export", str(random_yolo11n), "--format", fmt, "--imgsz", "320"),
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        outputs[fmt] = Path(result.stdout.strip().splitlines()[-1])
        assert outputs[fmt].exists()
    return outputs


def detect(model: Path, frames: list[np.ndarray]) -> list[Detections]:
    """The detections of ``model``; a .pt on PyTorch, the reference the exports are compared with."""
    runtime = "torch" if model.suffix == ".pt" else "auto"
    detector = load_detector(DetectorConfig(model=str(model), imgsz=320, conf=0.25, device="cpu", runtime=runtime))
    assert len(detector.names) == 80 and detector.device == "cpu"
    found = detector.detect(frames)
    assert len(found) == len(frames)
    return found


def test_pt_onnx_and_openvino_agree(random_yolo11n: Path, exported: dict[str, Path], frames: list[np.ndarray]) -> None:
    reference = detect(random_yolo11n, frames)
    assert sum(len(d) for d in reference) > 0
    for fmt, model in exported.items():
        found = detect(model, frames)
        for image, expected, got in zip(frames, reference, found, strict=True):
            assert abs(len(got) - len(expected)) <= max(2, len(expected) // 10), fmt
            assert np.all(got.xyxy >= -1) and np.all(got.xyxy[:, [0, 2]] <= image.shape[1] + 1), "pixel coordinates"
            top = min(len(got), len(expected), 5)
            np.testing.assert_allclose(np.sort(got.confidence)[-top:], np.sort(expected.confidence)[-top:],
                                       atol=0.02, err_msg=fmt)


def test_export_refuses_what_it_cannot_do(tmp_path: Path, random_yolo11n: Path) -> None:
    missing = subprocess.run(argusd_command("export", str(tmp_path / "none.pt")), capture_output=True, text=True,
                             timeout=120)
    assert missing.returncode == 78 and "model file not found" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_unknown_class_filter_is_a_clear_error(random_yolo11n: Path) -> None:
    with pytest.raises(PluginError, match=r"detector.classes: unicorn not in the model's classes"):
        load_detector(DetectorConfig(model=str(random_yolo11n), imgsz=320, classes=["0", "unicorn"]))


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_the_daemon_runs_an_exported_model(fmt: str, exported: dict[str, Path], tmp_path: Path,
                                           stream_key: str) -> None:
    port = free_port()
    config = daemon_config([{"id": "pattern", "url": "test://smpte", "fps": 5}],
                           detector=detector_config(exported[fmt]), redis={"stream": stream_key}, port=port)
    analysed = 0.0
    with running_daemon(write_config(tmp_path / "argusd.yaml", config)) as daemon:
        def five_analysed_or_exited() -> bool:
            nonlocal analysed
            if daemon.poll() is not None:
                return True
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    for line in response.read().decode().splitlines():
                        if line.startswith('argusd_frames_analysed_total{camera="pattern"}'):
                            analysed = float(line.split()[-1])
            except OSError:
                pass
            return analysed >= 5

        wait_for(five_analysed_or_exited, 60, "five analysed frames", interval=0.5, details=daemon.tail)
        runtime = {"onnx": "onnxruntime", "openvino": "openvino"}[fmt]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/cameras", timeout=5) as response:
            assert json.load(response)["detector"] == {"runtime": runtime, "device": "cpu"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            [info] = [line for line in response.read().decode().splitlines() if line.startswith("argusd_model_info")]
        assert f'runtime="{runtime}"' in info, info
        returncode = daemon.stop(60)
    output = daemon.output()
    assert returncode == 0, output
    assert analysed >= 5, output
    assert f" with {runtime}, " in output, "the detector's start line names the runtime"
