"""Crop classification on the inference thread: batched per classifier across the whole frame batch,
once per object when it is confirmed and again only every ``interval_s``, never on every frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from daemon.analytics.lifecycle import ObjectLifecycle
from daemon.config.models import ClassifierConfig
from daemon.core.images import crop
from daemon.core.types import Detections
from plugins.interfaces import Classifier

MIN_CROP_PIXELS = 8  # narrower or shorter crops carry no usable attribute


@dataclass(frozen=True, slots=True)
class ClassificationInput:
    image: np.ndarray
    tracked: Detections
    lifecycle: ObjectLifecycle
    captured_at: float


class CropClassifiers:
    def __init__(self, classifiers: list[tuple[ClassifierConfig, Classifier]]) -> None:
        self.classifiers = classifiers

    def __bool__(self) -> bool:
        return bool(self.classifiers)

    def run(self, inputs: list[ClassificationInput]) -> int:
        """Classify the crops that are due; returns how many crops were classified."""
        classified = 0
        for config, classifier in self.classifiers:
            wanted = set(config.classes) if config.classes else None
            crops: list[np.ndarray] = []
            targets: list[tuple[ObjectLifecycle, int, float]] = []
            for item in inputs:
                names = item.lifecycle.names
                for row, track_id in enumerate(item.tracked.track_id.tolist()):
                    if wanted is not None and names.get(int(item.tracked.class_id[row])) not in wanted:
                        continue
                    if not item.lifecycle.classification_due(track_id, config.name, item.captured_at,
                                                             config.interval_s):
                        continue
                    piece = crop(item.image, item.tracked.xyxy[row], min_pixels=MIN_CROP_PIXELS)
                    if piece is not None:
                        crops.append(piece)
                        targets.append((item.lifecycle, track_id, item.captured_at))
            if not crops:
                continue
            for (lifecycle, track_id, at), value in zip(targets, classifier.classify(crops), strict=True):
                lifecycle.record_classification(track_id, config.name, value, at)
            classified += len(crops)
        return classified
