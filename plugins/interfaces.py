"""The interfaces every plugin implements (runtime-checked Protocols), and the errors they raise.

Implementations live beside this module (plugins/detectors, plugins/classifiers, plugins/captioners) or in any
installed package, registered under the entry point groups in plugins/registry.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from daemon.core.events import Event, ObjectStory
from daemon.core.types import Detections


class PluginError(Exception):
    """A plugin cannot be found or cannot start; the message says what the user should do."""


@runtime_checkable
class Detector(Protocol):
    """Finds objects in a batch of BGR images. Called from the single inference thread only."""

    names: dict[int, str]  # class id -> the label events carry (after `detector.labels` renames)
    model_names: dict[int, str]  # class id -> the model's own class name
    device: str  # the device actually in use, e.g. "cpu" or "cuda:0"
    # The longest image side the model analyses at (its letterbox size), or None: larger frames are handed
    # over already shrunk to it (made from the decoder's planes at that size, far cheaper than full-size BGR),
    # and the boxes are scaled back to the frame.
    input_size: int | None
    runtime: str  # what runs the model, e.g. "openvino", "onnxruntime", "torch", "tensorrt"

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
