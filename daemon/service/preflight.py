"""What `argusd check-config` checks beyond the file itself: what start-up would refuse (every plugin
installed; the detector loads and has each camera's classes; the classifiers and the cameras' captioners
load). ``offline`` (for CI, where the models are not present) checks only that the plugins are installed."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial

from daemon.config.models import Config
from daemon.inference.classes import check_camera_classes, merge_groups
from plugins.interfaces import PluginError
from plugins.registry import (
    CAPTIONER_GROUP,
    CLASSIFIER_GROUP,
    DETECTOR_GROUP,
    check_installed,
    load_captioner,
    load_classifier,
    load_detector,
)

# A message that already starts with the field it is about: `detector.model: ...`, `cameras[door].classes: ...`.
FIELD_PREFIX = re.compile(r"[a-z_]+(\[[^\]\s]*\]|\.[a-z_]+)*: ")

Check = tuple[str, Callable[[], object]]  # the field a problem is reported under, and what may raise it


def startup_problems(config: Config, offline: bool) -> list[str]:
    """One line per problem, each starting with the field it is about."""
    installed: list[Check] = [
        ("detector", partial(check_installed, DETECTOR_GROUP, config.detector.plugin)),
        *((f"classifiers[{c.name}]", partial(check_installed, CLASSIFIER_GROUP, c.plugin))
          for c in config.classifiers),
        *((f"captions.captioners.{name}", partial(check_installed, CAPTIONER_GROUP, c.plugin))
          for name, c in config.captions.captioners.items()),
    ]
    problems = _problems(installed)
    if offline or problems:  # a plugin that is not installed cannot be loaded either
        return problems
    used = sorted({c.captions.captioner for c in config.cameras if c.enabled and c.captions is not None})
    loads: list[Check] = [
        ("detector", partial(_check_detector, config)),
        *((f"classifiers[{c.name}]", partial(load_classifier, c)) for c in config.classifiers),
        *((f"captions.captioners.{name}", partial(load_captioner, config.captions.captioners[name]))
          for name in used),
    ]
    return _problems(loads)


def _check_detector(config: Config) -> None:
    detector = load_detector(config.detector)
    check_camera_classes(detector, config.cameras)
    merge_groups(detector, config.tracker.merge_classes)


def _problems(checks: list[Check]) -> list[str]:
    problems = []
    for field, check in checks:
        try:
            check()
        except (PluginError, OSError) as error:
            message = " ".join(str(error).split())  # one line, whatever the plugin raised
            problems.append(message if FIELD_PREFIX.match(message) else f"{field}: {message}")
    return problems
