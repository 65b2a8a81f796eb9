"""Crop classifiers: the colour plugin, an ultralytics classify model, and the once-per-object schedule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.detections import make_detections

from daemon.inference.classify import ClassificationInput, CropClassifiers
from daemon.config.models import ClassifierConfig
from daemon.analytics.lifecycle import ObjectLifecycle
from plugins.interfaces import PluginError
from plugins.registry import load_classifier

BGR = {"red": (30, 30, 200), "green": (40, 170, 40), "blue": (200, 80, 20), "yellow": (40, 220, 230),
       "white": (245, 245, 245), "black": (15, 15, 15), "grey": (128, 128, 128), "brown": (30, 60, 110)}


def shirt(colour: str, height: int = 120, width: int = 50) -> np.ndarray:
    """A person-shaped crop: the torso in ``colour``, dark trousers, a different head and background."""
    crop = np.full((height, width, 3), (90, 140, 60), np.uint8)
    crop[int(height * 0.05) : int(height * 0.18)] = (120, 160, 210)
    crop[int(height * 0.18) : int(height * 0.6), 5:-5] = BGR[colour]
    crop[int(height * 0.6) :, 8:-8] = (60, 40, 20)
    return crop


def test_colour_names_the_torso() -> None:
    classifier = load_classifier(ClassifierConfig(name="colour", plugin="colour"))
    assert classifier.name == "colour"
    assert classifier.classify([shirt(c) for c in BGR]) == list(BGR)


def test_colour_is_unsure_about_a_patchwork() -> None:
    classifier = load_classifier(ClassifierConfig(name="colour", plugin="colour", min_confidence=0.5))
    patchwork = shirt("red")
    patchwork[30:60, :, :] = BGR["blue"]
    patchwork[45:72, :25] = BGR["yellow"]
    assert classifier.classify([patchwork]) == [None]


def test_ultralytics_classify_model_runs_through_the_plugin(tmp_path: Path) -> None:
    from ultralytics import YOLO

    model = tmp_path / "yolo11n-cls-random.pt"
    YOLO("yolo11n-cls.yaml").save(str(model))
    classifier = load_classifier(ClassifierConfig(name="kind", plugin="ultralytics", model=str(model),
                                                  device="cpu", min_confidence=0.0, imgsz=64))
    labels = classifier.classify([shirt("red"), shirt("blue", 200, 90)])
    assert len(labels) == 2 and all(label in classifier.names.values() for label in labels)
    unsure = load_classifier(ClassifierConfig(name="kind", plugin="ultralytics", model=str(model), device="cpu",
                                              min_confidence=1.0, imgsz=64))
    assert unsure.classify([shirt("red")]) == [None]


def test_ultralytics_classifier_needs_a_model() -> None:
    with pytest.raises(PluginError, match="classifiers.kind: the ultralytics classifier needs `model`"):
        load_classifier(ClassifierConfig(name="kind", plugin="ultralytics"))


def test_unknown_plugin_names_the_available_ones() -> None:
    with pytest.raises(PluginError, match=r"no plugin 'shape' in argusd.classifiers \(available: colour, ultralytics\)"):
        load_classifier(ClassifierConfig(name="shape", plugin="shape"))


def test_each_object_is_classified_when_confirmed_then_only_every_interval() -> None:
    config = ClassifierConfig(name="colour", plugin="colour", interval_s=1.0, classes=["person"])
    classifiers = CropClassifiers([(config, load_classifier(config))])
    lifecycle = ObjectLifecycle("cam", {0: "person", 1: "car"}, confirm_frames=3, lost_timeout_s=5.0,
                                update_interval_s=0.0)
    image = np.zeros((200, 200, 3), np.uint8)
    image[40:160, 20:70] = shirt("red")
    image[40:160, 120:170] = shirt("blue")
    tracked = make_detections([[20, 40, 70, 160], [120, 40, 170, 160]], [0.9, 0.9], [0, 1], [1, 2])
    per_frame, events = [], []
    for index in range(12):
        now = index * 0.25
        per_frame.append(classifiers.run([ClassificationInput(image, tracked, lifecycle, now)]))
        events += lifecycle.update(tracked, index, now, 200, 200)
    assert per_frame == [0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0], "the car is never classified (class filter)"
    new_person = next(e for e in events if e.type == "new" and e.label == "person")
    assert new_person.attributes == {"colour": "red"}, "the new event already carries the attribute"
    assert not [e for e in events if e.type == "update"], "re-classifying to the same value is no change"
