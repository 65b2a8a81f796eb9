"""`argusd check-config`: field-level errors, a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.support.assets import DETECTOR, argusd_command, require_asset
from daemon.config.loading import load_config
from daemon.config.models import ConfigError

VALID = """
cameras:
  - id: door
    url: rtsp://user:secret@127.0.0.1:8554/door
    fps: 5
detector:
  model: /var/lib/argusd/models/detector.pt
"""


def check(tmp_path: Path, text: str, offline: bool = True) -> subprocess.CompletedProcess:
    """`argusd check-config` on ``text``, by default --offline: most tests are about the file alone, and
    its model does not exist."""
    path = tmp_path / "argusd.yaml"
    path.write_text(textwrap.dedent(text))
    return subprocess.run(argusd_command("check-config", str(path), *(["--offline"] if offline else [])),
                          capture_output=True, text=True, timeout=120)


def test_valid_config_passes(tmp_path: Path) -> None:
    result = check(tmp_path, VALID)
    assert result.returncode == 0, result.stderr
    assert "OK (1 camera(s)" in result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VALID + "detectr: {}\n", "detectr: unknown key"),
        (VALID.replace("rtsp://", "ftp://"), "cameras[door].url: scheme must be one of"),
        (VALID.replace("fps: 5", "fps: -2"), "cameras[door].fps: Input should be greater than 0"),
        (VALID.replace("fps: 5", "fps: fast"), "cameras[door].fps: Input should be a valid number"),
        (VALID.replace("  model: /var/lib/argusd/models/detector.pt", "  device: cpu"), "detector.model: Field required"),
        (VALID.replace("detector:", "  - id: door\n    url: test://\ndetector:"), "duplicate camera id 'door'"),
        (VALID + "http:\n  listen: localhost\n", "http.listen: must be host:port"),
        (VALID + "redis:\n  url: http://127.0.0.1\n", "redis.url: must start with redis://"),
        (VALID.replace("id: door", "id: 'front door'"), "cameras[front door].id: must be 1-64 characters"),
        (VALID + "detector:\n  imgsz: 100\n", "at line 8, column 1: duplicate key 'detector'"),
        (VALID.replace("device: cpu", "x") + "  imgsz: 100\n", "detector.imgsz: Input should be a multiple of 32"),
        (VALID.replace("fps: 5", "realtime: false"), "cameras[door]: realtime: false is for file:// sources only"),
        (VALID.replace("rtsp://user:secret@127.0.0.1:8554/door\n    fps: 5",
                       "file:///srv/clip.mp4\n    realtime: false\n    loop: true"),
         "cameras[door]: realtime: false and loop: true do not go together"),
        (VALID.replace("rtsp://user:secret@127.0.0.1:8554/door\n    fps: 5",
                       "file:///srv/clip.mp4\n    start_time: 2024-05-01T08:30:00+02:00"),
         "cameras[door]: start_time needs realtime: false"),
        (VALID.replace("rtsp://user:secret@127.0.0.1:8554/door\n    fps: 5",
                       "file:///srv/clip.mp4\n    realtime: false\n    start_time: '2024-05-01 08:30'"),
         "cameras[door].start_time: Input should have timezone info"),
        ("cameras: [\n", "not valid YAML at line"),
        ("- just\n- a list\n", "the top level must be a mapping"),
        (VALID.replace("cameras:\n  - id: door\n    url: rtsp://user:secret@127.0.0.1:8554/door\n    fps: 5\n", "cameras: []\n"),
         "cameras: List should have at least 1 item"),
    ],
)
def test_bad_config_is_rejected_with_the_field_named(tmp_path: Path, text: str, expected: str) -> None:
    result = check(tmp_path, text)
    assert result.returncode == 78
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


ZONE = "    zones:\n      - name: {name}\n        polygon: {polygon}\n"
LINE = "    lines:\n      - name: gate\n        points: {points}\n"
SECOND_DOOR = "  - id: door\n    url: test://\ndetector:"


@pytest.mark.parametrize(("text", "expected"), [
    (VALID.replace("detector:", ZONE.format(name="dock", polygon="[[0, 0], [1, 1], [1, 0], [0, 1]]") + "detector:"),
     ["cameras[door].zones[dock].polygon: edges 0-1 and 2-3 cross: list the corners in order around the zone"]),
    (VALID.replace("detector:", ZONE.format(name="dock", polygon="[[0, 0], [0.5, 0.5], [1, 1]]") + "detector:"),
     ["cameras[door].zones[dock].polygon: encloses no area (less than 1e-06 of the frame)"]),
    (VALID.replace("detector:", ZONE.format(name="'  '", polygon="[[0, 0], [1, 0], [1, 1]]") + "detector:"),
     ["cameras[door].zones[0].name: must not be empty or only whitespace"]),
    (VALID.replace("detector:", LINE.format(points="[[0.5, 0.5], [0.5, 0.5000001]]") + "detector:"),
     ["cameras[door].lines[gate].points: the two points must be at least 0.001 apart (normalised)"]),
    (VALID.replace("fps: 5", "fsp: 5"), ["cameras[door].fsp: unknown key; did you mean 'fps'?"]),
    (VALID + "log:\n  jsn: true\n", ["log.jsn: unknown key; did you mean 'json'?"]),
    (VALID + "captions:\n  captioners:\n    mine: {plugn: template}\n",
     ["captions.captioners.mine.plugn: unknown key; did you mean 'plugin'?"]),
    (VALID + "snapshots:\n  enabled: true\n  colour: red\n", ["snapshots.colour: unknown key"]),
    # a duplicate id is reported alongside another field's error
    (VALID.replace("fps: 5", "fps: -2").replace("detector:", SECOND_DOOR),
     ["cameras[door].fps: Input should be greater than 0", "cameras: duplicate camera id 'door'"]),
    # every cross-field problem of a camera, one line each
    (VALID.replace("fps: 5", "fps: 2\n    watchdog_s: 0.1\n    backoff_max_s: 0.1\n    realtime: false"),
     ["cameras[door]: watchdog_s (0.1) must exceed the frame interval 1/fps (0.5 s)",
      "cameras[door]: backoff_max_s must be at least backoff_initial_s",
      "cameras[door]: realtime: false is for file:// sources only; a live camera cannot wait"]),
])
def test_each_error_is_its_own_line_naming_the_camera_by_id(tmp_path: Path, text: str, expected: list[str]) -> None:
    result = check(tmp_path, text)
    header, *lines = result.stderr.strip().splitlines()
    assert result.returncode == 78 and header.endswith(f"{len(expected)} error(s) in configuration"), result.stderr
    assert [line.strip() for line in lines] == expected


def _with_model(text: str, model: Path | str) -> str:
    return text.replace("/var/lib/argusd/models/detector.pt", str(model))


def test_check_config_loads_the_model_and_checks_what_start_up_would_refuse(tmp_path: Path) -> None:
    text = _with_model(VALID, require_asset(DETECTOR)).replace("fps: 5", "fps: 5\n    classes: [car]\n"
                                                                "    captions: {captioner: vlm}")
    text += "captions:\n  captioners:\n    vlm: {plugin: transformers, model: /nonexistent}\n"
    result = check(tmp_path, text, offline=False)
    header, *lines = result.stderr.strip().splitlines()
    assert result.returncode == 78 and header.endswith("2 error(s) at start-up"), result.stderr
    assert lines[0] == "  cameras[door].classes: car not among the detector's classes (Normal, Fall)"
    assert lines[1].startswith("  captions.captioners.vlm: captioner plugin transformers: model must be a local")


def test_check_config_passes_a_config_that_starts(tmp_path: Path) -> None:
    result = check(tmp_path, _with_model(VALID, require_asset(DETECTOR)), offline=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("; models loaded)")


def test_a_missing_model_fails_the_check_and_passes_offline(tmp_path: Path) -> None:
    missing = check(tmp_path, VALID, offline=False)
    assert missing.returncode == 78
    assert missing.stderr.strip().splitlines()[1].startswith(
        "  detector: model file not found: /var/lib/argusd/models/detector.pt"), missing.stderr
    offline = check(tmp_path, VALID)
    assert offline.returncode == 0 and "models not loaded (--offline)" in offline.stdout, offline.stderr


def test_offline_still_checks_that_the_plugins_are_installed(tmp_path: Path) -> None:
    result = check(tmp_path, VALID + "classifiers:\n  - {name: colour, plugin: hue}\n")
    assert result.returncode == 78
    assert result.stderr.strip().splitlines()[1:] == [
        "  classifiers[colour]: no plugin 'hue' in argusd.classifiers (available: colour, ultralytics)"]


def test_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(argusd_command("check-config", str(tmp_path / "nope.yaml")),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 78
    assert result.stderr.strip().endswith("cannot read config file: No such file or directory")
    assert len(result.stderr.strip().splitlines()) == 1


def test_environment_overrides_the_redis_url(tmp_path: Path) -> None:
    path = tmp_path / "argusd.yaml"
    path.write_text(VALID)
    config = load_config(path, environ={"ARGUSD_REDIS_URL": "redis://:pw@127.0.0.1:6390/2"})
    assert config.redis.url == "redis://:pw@127.0.0.1:6390/2"
    assert load_config(path, environ={}).redis.url == "redis://127.0.0.1:6379/0"


def test_a_bad_redis_url_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "argusd.yaml"
    path.write_text(VALID)
    result = subprocess.run(argusd_command("check-config", str(path)), capture_output=True, text=True, timeout=60,
                            env={**os.environ, "ARGUSD_REDIS_URL": "http://127.0.0.1:6379"})
    assert result.returncode == 78
    assert result.stderr.strip().splitlines()[1:] == [
        "  ARGUSD_REDIS_URL: must start with redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://"], result.stderr


def test_version() -> None:
    result = subprocess.run(argusd_command("--version"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.startswith("argusd ")


def test_a_mapping_as_a_key_is_one_line_not_a_crash(tmp_path) -> None:
    path = tmp_path / "argusd.yaml"
    path.write_text("? [a, b]\n: 1\ncameras: []\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line 1.*a key must be a plain value, not list"):
        load_config(path)
