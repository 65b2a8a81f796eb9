"""Daemon configurations for tests, built one way: a dict from daemon_config(), written as YAML by
write_config() (or rendered by config_yaml() for a file that is not a plain file, such as a FIFO)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support.assets import DETECTOR, free_port, require_asset


def detector_config(model: Path | str | None = None, *, imgsz: int = 320, device: str | None = "cpu",
                    **options: object) -> dict:
    """The detector section: ``model`` (default: the fetched test detector) at ``imgsz`` on ``device``
    (None leaves the daemon's own default), plus any other detector keys."""
    section: dict[str, object] = {"model": str(model if model is not None else require_asset(DETECTOR)),
                                  "imgsz": imgsz}
    if device is not None:
        section["device"] = device
    section.update(options)
    return section


def daemon_config(cameras: list[dict], *, detector: dict | None = None, redis: dict | None = None,
                  port: int | None = None, http: dict | None = None, **sections: object) -> dict:
    """A whole argusd config: ``cameras``; ``detector`` (default: detector_config()); ``redis`` when given;
    http listening on 127.0.0.1:``port`` (default: a free port) plus the keys in ``http``; then any other
    top-level sections (tracker, spool, snapshots, captions, classifiers, ...) as given."""
    config: dict[str, object] = {"cameras": cameras,
                                 "detector": detector if detector is not None else detector_config()}
    if redis is not None:
        config["redis"] = redis
    config["http"] = {"listen": f"127.0.0.1:{port if port is not None else free_port()}", **(http or {})}
    config.update(sections)
    return config


def config_yaml(config: dict) -> str:
    return yaml.safe_dump(config)


def write_config(path: Path, config: dict) -> Path:
    """Write ``config`` to ``path`` as YAML; returns ``path``."""
    path.write_text(config_yaml(config))
    return path
