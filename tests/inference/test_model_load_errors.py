"""Fault: a detector.model that is not a model (random bytes named .onnx or .pt, an empty directory, a video file).
`argusd run`, as a subprocess, exits 78 (systemd does not restart-loop) with one error line naming
detector.model, never a traceback (issue item 8: `model.names` was read outside the `try`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.assets import BIKES, argusd_command, require_asset
from tests.support.configs import daemon_config, detector_config, write_config


def random_onnx(tmp_path: Path) -> Path:
    path = tmp_path / "detector.onnx"
    path.write_bytes(os.urandom(64 * 1024))
    return path


def random_pt(tmp_path: Path) -> Path:
    """Found before runtime: auto would try converting it: no conversion warnings, the one error line."""
    path = tmp_path / "detector.pt"
    path.write_bytes(os.urandom(64 * 1024))
    return path


def empty_directory(tmp_path: Path) -> Path:
    path = tmp_path / "detector_openvino_model"
    path.mkdir()
    return path


def video_file(tmp_path: Path) -> Path:
    path = tmp_path / "detector.mp4"
    shutil.copy(require_asset(BIKES), path)
    return path


@pytest.mark.parametrize("make_model", [random_onnx, random_pt, empty_directory, video_file])
def test_a_model_that_does_not_load_is_one_line_and_exit_78(tmp_path: Path, make_model) -> None:
    model = make_model(tmp_path)
    config = write_config(tmp_path / "argusd.yaml",
                          daemon_config([{"id": "a", "url": "test://ball"}], detector=detector_config(model)))
    result = subprocess.run(argusd_command("run", "--config", str(config), "--max-seconds", "30"),
                            capture_output=True, text=True, timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode == 78, output
    assert "Traceback" not in output and " WARNING " not in output, output
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line or "Error" in line]
    assert len(errors) == 1, output
    assert f"detector.model: cannot load {model}" in errors[0], output
