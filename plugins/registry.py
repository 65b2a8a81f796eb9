"""Finding plugins: entry point groups, loading by configured name, interface checks."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from daemon.config.models import CaptionerConfig, ClassifierConfig, DetectorConfig
from plugins.interfaces import Captioner, Classifier, Detector, PluginError

DETECTOR_GROUP = "argusd.detectors"
CLASSIFIER_GROUP = "argusd.classifiers"
CAPTIONER_GROUP = "argusd.captioners"


def _entry_point(group: str, name: str) -> EntryPoint:
    found = {ep.name: ep for ep in entry_points(group=group)}
    if name not in found:
        available = ", ".join(sorted(found)) or "none installed"
        raise PluginError(f"no plugin {name!r} in {group} (available: {available})")
    return found[name]


def _load_entry_point(group: str, name: str) -> type:
    return _entry_point(group, name).load()


def check_installed(group: str, name: str) -> None:
    """PluginError when no plugin ``name`` is installed in ``group``; imports and loads nothing."""
    _entry_point(group, name)


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
