"""Crop classifier plugin for ultralytics classify models (.pt, ONNX, OpenVINO, ...)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from daemon.config.models import ClassifierConfig
from daemon.inference.devices import resolve_device
from plugins.detectors.ultralytics_detector import check_model_source
from plugins.interfaces import PluginError


class UltralyticsClassifier:
    """Top-1 class of each crop, or None below ``min_confidence``. Crops are classified in one batch."""

    def __init__(self, config: ClassifierConfig) -> None:
        if not config.model:
            raise PluginError(f"classifiers.{config.name}: the ultralytics classifier needs `model`")
        source = check_model_source(config.model)
        from ultralytics import YOLO

        self.name = config.name
        self.config = config
        self.device = resolve_device(config.device, f"classifiers.{config.name}.device")
        try:
            self.model = YOLO(source, task="classify")
        except Exception as error:  # ultralytics raises many types for unreadable or foreign files
            raise PluginError(f"classifiers.{config.name}: cannot load model {source}: {error}") from None
        self.names = {int(k): str(v) for k, v in dict(self.model.names).items()}
        self.classify([np.zeros((config.imgsz, config.imgsz, 3), np.uint8)])  # warm-up

    def classify(self, crops: Sequence[np.ndarray]) -> list[str | None]:
        results = self.model.predict(list(crops), imgsz=self.config.imgsz, device=self.device, verbose=False,
                                     quantize=16 if self.device.startswith("cuda") else None)
        labels: list[str | None] = []
        for result in results:
            top = int(result.probs.top1)
            confident = float(result.probs.top1conf) >= self.config.min_confidence
            labels.append(self.names[top] if confident else None)
        return labels
