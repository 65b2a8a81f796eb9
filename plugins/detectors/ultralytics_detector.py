"""Detector plugin for every model format ultralytics loads: .pt, .onnx, OpenVINO, TensorRT, Triton URL."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from daemon.config.models import DetectorConfig
from daemon.core.redact import redact_url
from daemon.core.types import Detections
from daemon.inference.devices import resolve_device
from plugins.detectors.openvino_streams import compile_streams
from plugins.detectors.runtimes import (
    RuntimeUnavailableError,
    choose_model,
    default_threads,
    export_options,
    format_runtime,
    runtime_version,
)
from plugins.interfaces import PluginError

log = logging.getLogger(__name__)

# ultralytics would otherwise probe the network and pip-install missing requirements at run time.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_VERBOSE", "false")


def check_model_source(model: str) -> str:
    """Refuse anything ultralytics would try to download; return the local path or the Triton URL."""
    if urlsplit(model).scheme in ("http", "https", "grpc"):
        return model  # a Triton Inference Server endpoint
    path = Path(model).expanduser()
    if not path.exists():
        raise PluginError(
            f"model file not found: {path.resolve()} — argusd never downloads weights; copy the model "
            f"(.pt, .onnx, OpenVINO directory or .engine) to that path or set detector.model to where it is"
        )
    return str(path)


MAX_ERROR_CHARS = 300


def load_error(source: str, error: BaseException) -> str:
    """One line for a model that does not load: the field, the (redacted) source, ultralytics' reason on
    one line without its decorations, and what would load."""
    reason = " ".join(str(error).replace("ERROR ❌️", "").split()) or type(error).__name__
    reason = re.sub(r"\s*(Ultralytics supports: \(.*?\)|See https?://\S+ for help)\.?", "", reason)
    if len(reason) > MAX_ERROR_CHARS:
        reason = reason[:MAX_ERROR_CHARS] + " ..."
    return (f"detector.model: cannot load {redact_url(source)}: {reason} (expected a .pt, .onnx or .engine "
            "file, an OpenVINO model directory or a Triton URL)")


def load_model(path: str, source: str) -> Any:
    """ultralytics' model for ``path``; PluginError naming the configured ``source`` when it does not load."""
    from ultralytics import YOLO

    try:  # ultralytics opens the file lazily: the first look at .names is where a bad file fails
        model = YOLO(path, task="detect")
        model.names  # noqa: B018 (reading it is the point: it opens the file)
    except Exception as error:  # ultralytics raises many types for unreadable or foreign files
        raise PluginError(load_error(source, error)) from None
    return model


class UltralyticsDetector:
    """Batched detection through ultralytics' predictor, which letterboxes to the smallest stride-aligned
    rectangle for dynamic-shape models and runs NMS on the model's device."""

    def __init__(self, config: DetectorConfig) -> None:
        source = check_model_source(config.model)
        self.config = config
        self.device = resolve_device(config.device, "detector.device")
        self.half = config.half if config.half is not None else self.device.startswith("cuda")
        # A .pt that does not load is a detector.model error, found before any conversion tries it.
        checked = load_model(source, source) if format_runtime(source) is None else None
        choice = choose_model(config, source, self.device, self.half)
        self.runtime = choice.runtime
        self.model = checked if checked is not None and choice.path == source else load_model(choice.path, source)
        self.model_names: dict[int, str] = {int(k): str(v) for k, v in self.model.names.items()}
        self.class_filter = self._class_ids(config.classes)
        unknown = sorted(set(config.labels) - set(self.model_names.values()))
        if unknown:
            raise PluginError(f"detector.labels: {', '.join(unknown)} not in the model's classes ({self._known()})")
        self.names = {index: config.labels.get(name, name) for index, name in self.model_names.items()}
        self.input_size = config.imgsz  # its letterbox would shrink a larger image to this anyway
        self._warm_up()  # also builds ultralytics' predictor and its runtime session
        self.threads = None if self.device.startswith("cuda") else config.threads or default_threads(self.runtime)
        if self.threads is not None:
            self._limit_cpu_threads(choice.path, self.threads)
        log.info(
            "detector: %s on %s with %s%s%s, imgsz %d, classes %s",
            redact_url(source) if "://" in source else Path(source).name, self.device, self.runtime,
            " fp16" if self.half else "", f", {self.threads} thread(s)" if self.threads else "", config.imgsz,
            ",".join(self.model_names[i] for i in self.class_filter) if self.class_filter else "all",
        )

    def _class_ids(self, wanted: list[str] | None) -> list[int] | None:
        if not wanted:
            return None
        by_name = {name.lower(): index for index, name in self.model_names.items()}
        unknown = [name for name in wanted if name.lower() not in by_name]
        if unknown:
            raise PluginError(f"detector.classes: {', '.join(unknown)} not in the model's classes ({self._known()})")
        return sorted(by_name[name.lower()] for name in wanted)

    def _known(self) -> str:
        names = list(self.model_names.values())
        return ", ".join(names[:20]) + (f", ... {len(names)} in all" if len(names) > 20 else "")

    def _limit_cpu_threads(self, source: str, threads: int) -> None:
        """Set the runtime's intra-op threads. Left alone, ultralytics gives torch one thread (it sets
        OMP_NUM_THREADS=1 at import) and the other runtimes take one per core, which the cameras' decoding
        threads need too. ultralytics does not expose the setting, so its session is rebuilt here."""
        import torch

        torch.set_num_threads(threads)  # .pt models, and ultralytics' pre/post-processing for every format
        # ultralytics' AutoBackend, untyped; None (no runtime session to rebuild) makes both steps below no-ops
        backend: Any = getattr(self.model.predictor.model, "backend", None)
        session = getattr(backend, "session", None)
        if session is not None and session.get_providers() == ["CPUExecutionProvider"]:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            backend.session = onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        compile_model = getattr(backend, "compile_model", None)
        if isinstance(compile_model, partial):  # OpenVINO: recompile with a thread cap, and keep it for recompiles
            core = compile_model.func.__self__  # type: ignore[attr-defined]  # a bound openvino.Core method
            config = {**compile_model.keywords.get("config", {}), "INFERENCE_NUM_THREADS": threads}
            backend.compile_model = partial(compile_model, config=config)
            path = Path(source)
            model = core.read_model(str(next(path.glob("*.xml")) if path.is_dir() else path))
            # on a CPU, a batch runs as one image per core on independent streams (openvino_streams.py)
            backend.ov_compiled_model = (compile_streams(core, model, threads) if self.device == "cpu"
                                         else backend.compile_model(model))
        self._warm_up()

    def _warm_up(self) -> None:
        self.detect([np.zeros((self.config.imgsz, self.config.imgsz, 3), np.uint8)])

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        # ultralytics pads a batch of mixed shapes to a square; grouping by shape keeps the smaller
        # stride-aligned rectangle (about 40% less compute for 16:9 frames).
        output: list[Detections | None] = [None] * len(images)
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(images):
            groups.setdefault(image.shape, []).append(index)
        for indices in groups.values():
            for index, found in zip(indices, self._predict([images[i] for i in indices]), strict=True):
                output[index] = found
        return output  # type: ignore[return-value]

    def _predict(self, images: list[np.ndarray]) -> list[Detections]:
        results = self.model.predict(
            images,
            imgsz=self.config.imgsz,
            conf=self.config.conf,
            iou=self.config.iou,
            classes=self.class_filter,
            device=self.device,
            quantize=16 if self.half else None,
            verbose=False,
        )
        return [
            Detections.from_arrays(r.boxes.xyxy.cpu().numpy(), r.boxes.conf.cpu().numpy(), r.boxes.cls.cpu().numpy())
            for r in results
        ]


EXPORT_RUNTIMES = {"onnx": "onnxruntime", "openvino": "openvino"}  # `argusd export --format` -> runtime


def export_model(model: str, fmt: str, imgsz: int, half: bool = False) -> Path:
    """Export a .pt to ONNX or OpenVINO beside it, as the daemon's own conversion does (dynamic input shape,
    so rectangular letterboxing keeps working). Runs offline; raises PluginError with the cause."""
    source = Path(check_model_source(model))
    if source.suffix != ".pt":
        raise PluginError(f"export takes a .pt model, not {source.name}")
    if fmt not in EXPORT_RUNTIMES:
        raise PluginError(f"unknown export format {fmt!r}; choose {', '.join(EXPORT_RUNTIMES)}")
    runtime = EXPORT_RUNTIMES[fmt]
    try:
        runtime_version(runtime)
    except RuntimeUnavailableError as cause:
        raise PluginError(f"exporting to {fmt}: {cause}") from None
    from ultralytics import YOLO

    return Path(YOLO(str(source)).export(**export_options(runtime, imgsz, half, "dynamic", "cpu")))
