"""detector.runtime: auto converts a .pt once per weights into detector.cache_dir and reuses it; a runtime that
cannot be used is skipped with one warning, or, when named, refuses to start with one line (exit 78). Real
files and real runtimes throughout: a random-weight yolo11n at imgsz 64, so a conversion takes seconds."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from daemon.config.models import DetectorConfig
from plugins.detectors.ultralytics_detector import UltralyticsDetector
from plugins.interfaces import PluginError
from tests.support.assets import REPO, argusd_command
from tests.support.configs import daemon_config, detector_config, write_config
from tests.support.models import random_yolo11n

IMGSZ = 64


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_yolo11n(tmp_path_factory.mktemp("weights") / "yolo11n.pt")


def entries(cache: Path) -> list[Path]:
    """The cache's entries; a conversion in progress (or one left by a killed daemon) is a hidden folder."""
    return sorted(p for p in cache.iterdir() if not p.name.startswith("."))


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def detector_in_subprocess(config: DetectorConfig, preamble: str = "") -> subprocess.CompletedProcess:
    """Build the detector in a fresh interpreter after ``preamble``; it prints its runtime."""
    script = (f"{preamble}\nimport logging, sys\nlogging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
              "from daemon.config.models import DetectorConfig\n"
              "from plugins.detectors.ultralytics_detector import UltralyticsDetector\n"
              f"print(UltralyticsDetector(DetectorConfig.model_validate_json({config.model_dump_json()!r})).runtime)")
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=240)


def test_the_cache_defaults_to_the_state_directory(weights: Path) -> None:
    assert DetectorConfig(model=str(weights)).cache_path == f"{os.environ['STATE_DIRECTORY']}/models"


def test_auto_on_cpu_converts_to_openvino_once(weights: Path, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    config = DetectorConfig(model=str(weights), imgsz=IMGSZ, device="cpu", cache_dir=str(tmp_path / "cache"))
    with caplog.at_level(logging.INFO):
        first = UltralyticsDetector(config)
    assert first.runtime == "openvino"
    [entry] = entries(tmp_path / "cache")
    assert entry.name.startswith("yolo11n-openvino-") and entry.name.endswith("_openvino_model")
    assert [m for m in messages(caplog, logging.INFO) if m.startswith("detector: converted yolo11n.pt for openvino in")]
    assert not list((tmp_path / "cache").glob(".converting-*")), "the private export folder is removed"
    before = [(p.name, p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(entry.iterdir())]

    caplog.clear()
    with caplog.at_level(logging.INFO):
        second = UltralyticsDetector(config)
    assert second.runtime == "openvino"
    assert not [m for m in messages(caplog, logging.INFO) if m.startswith("detector: convert")], \
        "a warm start converts nothing"
    assert [m for m in messages(caplog, logging.INFO) if " with openvino" in m], "the start line names the runtime"
    assert entries(tmp_path / "cache") == [entry]
    assert [(p.name, p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(entry.iterdir())] == before
    assert len(second.detect([np.zeros((72, 128, 3), np.uint8)] * 2)) == 2


def test_changed_weights_get_a_new_entry(tmp_path: Path) -> None:
    model, cache = tmp_path / "model.pt", tmp_path / "cache"
    config = DetectorConfig(model=str(model), imgsz=IMGSZ, device="cpu", runtime="onnxruntime", cache_dir=str(cache))
    random_yolo11n(model, seed=1)
    UltralyticsDetector(config)
    [old] = entries(cache)
    random_yolo11n(model, seed=2)  # new weights at the same path
    assert UltralyticsDetector(config).runtime == "onnxruntime"
    assert len(entries(cache)) == 2 and old in entries(cache)
    assert all(entry.suffix == ".onnx" for entry in entries(cache))


def test_a_runtime_that_does_not_import_is_skipped_with_one_warning(weights: Path, tmp_path: Path) -> None:
    config = DetectorConfig(model=str(weights), imgsz=IMGSZ, device="cpu", cache_dir=str(tmp_path / "cache"))
    result = detector_in_subprocess(config, preamble="import sys; sys.modules['openvino'] = None")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "onnxruntime"
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1, result.stderr
    assert "openvino unavailable (the Python package 'openvino' does not import" in warnings[0]
    assert warnings[0].endswith("trying onnxruntime")
    assert "Traceback" not in result.stderr


def test_a_failed_conversion_falls_back_to_the_next_runtime(weights: Path, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "cache"
    cache.write_text("a file where the cache directory should be")  # every conversion fails to write
    with caplog.at_level(logging.INFO):
        detector = UltralyticsDetector(DetectorConfig(model=str(weights), imgsz=IMGSZ, device="cpu",
                                                      cache_dir=str(cache)))
    assert detector.runtime == "torch"
    warnings = messages(caplog, logging.WARNING)
    assert [w.split(" ", 2)[1] for w in warnings] == ["openvino", "onnxruntime"], warnings
    assert all("conversion failed: " in w and "\n" not in w for w in warnings)
    assert all(r.exc_info is None for r in caplog.records), "no traceback"

    with pytest.raises(PluginError, match=r"^detector.runtime: openvino cannot be used: conversion failed: "):
        UltralyticsDetector(DetectorConfig(model=str(weights), imgsz=IMGSZ, device="cpu", runtime="openvino",
                                           cache_dir=str(cache)))


def test_a_runtime_that_contradicts_the_model_file_is_refused(tmp_path: Path) -> None:
    model = tmp_path / "detector.onnx"
    model.write_bytes(b"never read: the runtime is refused first")
    with pytest.raises(PluginError, match=r"^detector.runtime: openvino cannot run detector.onnx \(its format runs "
                                          r"on onnxruntime\); set runtime: auto"):
        UltralyticsDetector(DetectorConfig(model=str(model), device="cpu", runtime="openvino"))


def test_a_named_runtime_that_is_unavailable_is_one_line_and_exit_78(weights: Path, tmp_path: Path) -> None:
    with pytest.raises(PluginError, match=r"^detector.runtime: tensorrt cannot be used: it runs on cuda, not cpu$"):
        UltralyticsDetector(DetectorConfig(model=str(weights), imgsz=IMGSZ, device="cpu", runtime="tensorrt"))

    config = write_config(tmp_path / "argusd.yaml", daemon_config(
        [{"id": "a", "url": "test://ball"}], detector=detector_config(weights, imgsz=IMGSZ, runtime="tensorrt")))
    result = subprocess.run(argusd_command("run", "--config", str(config), "--max-seconds", "30"),
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 78, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "cannot start: detector.runtime: tensorrt cannot be used: it runs on cuda, not cpu" in errors[0]


def test_two_daemons_converting_at_once_share_one_entry(weights: Path, tmp_path: Path) -> None:
    cache, barrier = tmp_path / "cache", tmp_path / "barrier"
    barrier.mkdir()
    config = DetectorConfig(model=str(weights), imgsz=IMGSZ, device="cpu", cache_dir=str(cache))
    script = (f"from tests.inference.test_runtime_cache import build_and_detect; "
              f"build_and_detect({config.model_dump_json()!r}, {str(barrier)!r})")
    processes = [subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
        assert stdout.split() == ["openvino", "1"], stderr
        assert "converting yolo11n.pt for openvino" in stderr, "both converted: the conversions overlapped"
    assert sum("another process converted yolo11n.pt first" in stderr for _, stderr in outputs) == 1
    assert len(entries(cache)) == 1 and not list(cache.glob(".converting-*"))
    assert UltralyticsDetector(config).runtime == "openvino"  # the surviving entry is intact and loads


def build_and_detect(config_json: str, barrier: str) -> None:
    """One of test_two_daemons_converting_at_once_share_one_entry's daemons: once both have imported
    everything (each marks ``barrier``), both build the detector, so their conversions overlap."""
    import time

    logging.basicConfig(level=logging.INFO)
    Path(barrier, str(os.getpid())).touch()
    while len(os.listdir(barrier)) < 2:
        time.sleep(0.01)
    detector = UltralyticsDetector(DetectorConfig.model_validate_json(config_json))
    print(detector.runtime, len(detector.detect([np.zeros((IMGSZ, IMGSZ, 3), np.uint8)])))


def test_a_killed_conversion_and_long_unused_entries_are_deleted_by_the_next_conversion(
        weights: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import signal
    import time

    cache = tmp_path / "cache"
    config = DetectorConfig(model=str(weights), imgsz=IMGSZ, device="cpu", cache_dir=str(cache))
    UltralyticsDetector(config)
    [old] = entries(cache)
    forty_days_ago = time.time() - 40 * 86400
    os.utime(old, (forty_days_ago, forty_days_ago))
    UltralyticsDetector(config)  # a start that uses the entry marks it as used
    assert old.stat().st_mtime > forty_days_ago + 86400

    other = random_yolo11n(tmp_path / "other.pt", seed=1)
    killed = subprocess.Popen([sys.executable, "-c", (
        "from daemon.config.models import DetectorConfig\n"
        "from plugins.detectors.ultralytics_detector import UltralyticsDetector\n"
        f"UltralyticsDetector(DetectorConfig(model={str(other)!r}, imgsz={IMGSZ}, device='cpu', "
        f"cache_dir={str(cache)!r}))")], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(cache.glob(".converting-*/other.pt")) and time.monotonic() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait(10)
    [left] = cache.glob(".converting-*")
    os.utime(old, (forty_days_ago, forty_days_ago))

    with caplog.at_level(logging.INFO):
        UltralyticsDetector(DetectorConfig(model=str(other), imgsz=IMGSZ, device="cpu", cache_dir=str(cache)))
    assert not left.exists() and not old.exists()
    [kept] = entries(cache)
    assert kept.name.startswith("other-openvino-")
    deleted = [m for m in messages(caplog, logging.INFO) if "from the model cache" in m]
    assert sorted(deleted) == sorted([f"detector: deleted {left.name} from the model cache (left by a conversion "
                                      "that did not finish)",
                                      f"detector: deleted {old.name} from the model cache (unused for 40 days)"])
