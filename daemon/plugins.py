"""Plugin interfaces and their discovery through entry points."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

import numpy as np

from .config import ClassifierConfig, DetectorConfig
from .types import Detections

DETECTOR_GROUP = "argusd.detectors"
CLASSIFIER_GROUP = "argusd.classifiers"


class PluginError(Exception):
    """A plugin cannot be found or cannot start; the message says what the user should do."""


@runtime_checkable
class Detector(Protocol):
    """Finds objects in a batch of BGR frames. Called from the single inference thread only."""

    names: dict[int, str]  # class id -> class name
    device: str  # the device actually in use, e.g. "cpu" or "cuda:0"

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """One Detections per image, pixel coordinates of that image."""
        ...


@runtime_checkable
class Classifier(Protocol):
    """Names one attribute of object crops (e.g. colour). Called from the single inference thread only."""

    name: str  # the attribute key its results are stored under

    def classify(self, crops: Sequence[np.ndarray]) -> list[str | None]:
        """One result per BGR crop; None where the classifier is not confident."""
        ...


def _load_entry_point(group: str, name: str) -> type:
    found = {ep.name: ep for ep in entry_points(group=group)}
    if name not in found:
        available = ", ".join(sorted(found)) or "none installed"
        raise PluginError(f"no plugin {name!r} in {group} (available: {available})")
    return found[name].load()


def _load_plugin(group: str, config: DetectorConfig | ClassifierConfig, interface: type) -> object:
    plugin = _load_entry_point(group, config.plugin)(config)
    if not isinstance(plugin, interface):
        raise PluginError(f"plugin {config.plugin!r} does not implement the {interface.__name__} interface")
    return plugin


def load_detector(config: DetectorConfig) -> Detector:
    return _load_plugin(DETECTOR_GROUP, config, Detector)  # type: ignore[return-value]


def load_classifier(config: ClassifierConfig) -> Classifier:
    return _load_plugin(CLASSIFIER_GROUP, config, Classifier)  # type: ignore[return-value]
