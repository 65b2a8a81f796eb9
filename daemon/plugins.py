"""Plugin interfaces and their discovery through entry points."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

import numpy as np

from .config import DetectorConfig
from .types import Detections

DETECTOR_GROUP = "argusd.detectors"


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


def _load_entry_point(group: str, name: str) -> type:
    found = {ep.name: ep for ep in entry_points(group=group)}
    if name not in found:
        available = ", ".join(sorted(found)) or "none installed"
        raise PluginError(f"no plugin {name!r} in {group} (available: {available})")
    return found[name].load()


def load_detector(config: DetectorConfig) -> Detector:
    factory = _load_entry_point(DETECTOR_GROUP, config.plugin)
    detector = factory(config)
    if not isinstance(detector, Detector):
        raise PluginError(f"plugin {config.plugin!r} does not implement the Detector interface")
    return detector
