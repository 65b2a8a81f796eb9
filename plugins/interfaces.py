"""Plugin interfaces and their discovery through entry points."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

import numpy as np

from daemon.config.models import CaptionerConfig, ClassifierConfig, DetectorConfig
from daemon.analytics.lifecycle import Event
from daemon.core.types import Detections

DETECTOR_GROUP = "argusd.detectors"
CLASSIFIER_GROUP = "argusd.classifiers"
CAPTIONER_GROUP = "argusd.captioners"


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


class CaptionError(Exception):
    """A caption could not be made (server down, bad reply, model error); the message says why, without
    credentials. The caption stage logs it and counts the request as failed."""


@dataclass(frozen=True, slots=True)
class Crossing:
    line: str
    direction: str  # a_to_b | b_to_a
    direction_name: str | None  # the operator's name for that direction, e.g. "in"


@dataclass(frozen=True, slots=True)
class ObjectStory:
    """What the object did up to the described event, gathered from its earlier events."""

    crossings: tuple[Crossing, ...] = ()  # in order
    zone_stays: tuple[tuple[str, float], ...] = ()  # (zone, seconds inside) per stay, in order; open ones so far
    loitered: tuple[str, ...] = ()  # zones whose loiter rule fired
    in_view: dict[str, int] = field(default_factory=dict)  # label -> objects on the best frame (itself included)


@dataclass(frozen=True, slots=True)
class CaptionRequest:
    event: Event  # the event to describe
    story: ObjectStory
    image: np.ndarray | None  # BGR crop or frame (CaptionerConfig.image) when the captioner needs one


@runtime_checkable
class Captioner(Protocol):
    """Describes events in words. Called from caption worker threads (``workers`` of them at once), never
    from the inference thread, so it may be slow; it must be thread-safe when ``workers`` > 1."""

    needs_image: bool  # False: the stage never crops or holds frames for it

    def caption(self, requests: Sequence[CaptionRequest]) -> list[str]:
        """One text per request, in order (at most ``batch_size`` requests). Raises CaptionError."""
        ...

    def close(self) -> None:
        """Release connections, models and memory; called once at shutdown."""
        ...


def _load_entry_point(group: str, name: str) -> type:
    found = {ep.name: ep for ep in entry_points(group=group)}
    if name not in found:
        available = ", ".join(sorted(found)) or "none installed"
        raise PluginError(f"no plugin {name!r} in {group} (available: {available})")
    return found[name].load()


def _load_plugin(group: str, config: DetectorConfig | ClassifierConfig | CaptionerConfig, interface: type) -> object:
    plugin = _load_entry_point(group, config.plugin)(config)
    if not isinstance(plugin, interface):
        raise PluginError(f"plugin {config.plugin!r} does not implement the {interface.__name__} interface")
    return plugin


def load_detector(config: DetectorConfig) -> Detector:
    return _load_plugin(DETECTOR_GROUP, config, Detector)  # type: ignore[return-value]


def load_classifier(config: ClassifierConfig) -> Classifier:
    return _load_plugin(CLASSIFIER_GROUP, config, Classifier)  # type: ignore[return-value]


def load_captioner(config: CaptionerConfig) -> Captioner:
    return _load_plugin(CAPTIONER_GROUP, config, Captioner)  # type: ignore[return-value]
