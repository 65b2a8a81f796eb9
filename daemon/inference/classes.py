"""Which of the detector's classes a camera reports: `cameras[].classes` matched against the event label
(after `detector.labels` renames) or the model's own class name, case-insensitively."""

from __future__ import annotations

import numpy as np

from daemon.config.models import CameraConfig
from plugins.interfaces import Detector, PluginError


def class_aliases(detector: Detector) -> list[set[str]]:
    """By class id: the lower-case names a camera's `classes` may use for it."""
    names, model_names = detector.names, detector.model_names
    return [{names[i].lower(), model_names.get(i, names[i]).lower()} if i in names else set()
            for i in range(max(names) + 1)]


def check_camera_classes(detector: Detector, cameras: list[CameraConfig]) -> None:
    """PluginError naming the camera when its `classes` lists a class the detector does not have."""
    known = set().union(*class_aliases(detector))
    for camera in cameras:
        unknown = [name for name in camera.classes or [] if name.lower() not in known]
        if unknown:
            raise PluginError(f"cameras[{camera.id}].classes: {', '.join(unknown)} not among the detector's "
                              f"classes ({', '.join(detector.names.values())})")


def class_mask(detector: Detector, wanted: list[str] | None) -> np.ndarray | None:
    """By class id: whether the camera reports it; None when it reports every class."""
    if not wanted:
        return None
    keep = {name.lower() for name in wanted}
    return np.array([bool(aliases & keep) for aliases in class_aliases(detector)], dtype=bool)


def merge_groups(detector: Detector, merge_classes: bool | list[list[str]]) -> np.ndarray | None:
    """By class id: the group whose overlapping boxes are one object (`tracker.merge_classes`); None when
    boxes of different classes are never merged. A class in no listed group is a group of its own."""
    if merge_classes is False:
        return None
    aliases = class_aliases(detector)
    if merge_classes is True:
        return np.zeros(len(aliases), dtype=np.int64)
    groups = np.arange(len(merge_classes), len(merge_classes) + len(aliases), dtype=np.int64)
    for index, group in enumerate(merge_classes):
        keep = {name.lower() for name in group}
        unknown = keep - set().union(*aliases)
        if unknown:
            raise PluginError(f"tracker.merge_classes: {', '.join(sorted(unknown))} not among the detector's "
                              f"classes ({', '.join(detector.names.values())})")
        groups[[i for i, names in enumerate(aliases) if names & keep]] = index
    return groups
