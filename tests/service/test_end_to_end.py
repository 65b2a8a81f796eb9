"""The daemon on real footage, with the real pretrained detector, publishing to real Redis."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
from pathlib import Path

import jsonschema
import redis

from tests.support.assets import BIKES, DETECTOR, argusd_command, event_schema, free_port, require_asset
from tests.support.configs import daemon_config, detector_config, write_config
from tests.support.daemon import running_daemon
from tests.support.polling import wait_for

SCHEMA = event_schema()


def write_bikes_config(tmp_path: Path, redis_url: str, stream: str, port: int, **camera: object) -> Path:
    return write_config(tmp_path / "argusd.yaml", daemon_config(
        [{"id": "bikes", "url": f"file://{require_asset(BIKES)}", "fps": 10, **camera}],
        detector=detector_config(imgsz=480, device=None, labels={"Normal": "person"}),
        tracker={"confirm_frames": 3, "lost_timeout_s": 1.0},
        redis={"url": redis_url, "stream": stream},
        port=port,
    ))


def read_events(redis_url: str, stream: str) -> list[tuple[str, dict]]:
    entries = redis.Redis.from_url(redis_url, decode_responses=True).xrange(stream)
    return [(entry_id, json.loads(fields["data"]) | {"_fields": fields}) for entry_id, fields in entries]


def scrape(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.read().decode()


def test_daemon_publishes_people_lifecycle_events(tmp_path: Path, redis_url: str, stream_key: str) -> None:
    port = free_port()
    config = write_bikes_config(tmp_path, redis_url, stream_key, port)
    metrics = ""
    with running_daemon(config, "--exit-when-done") as daemon:
        def scraped_until_it_exits() -> bool:
            nonlocal metrics
            if daemon.poll() is not None:
                return True
            try:
                metrics = scrape(port, "/metrics")
                assert json.loads(scrape(port, "/healthz"))["status"] == "ok"
            except OSError:
                pass
            return False

        wait_for(scraped_until_it_exits, 120, "argusd to finish the clip and exit", interval=0.5,
                 details=daemon.tail)
        returncode = daemon.wait(60)
    output = daemon.output()
    assert returncode == 0, output
    assert 'argusd_frames_analysed_total{camera="bikes"}' in metrics
    assert 'argusd_frames_decoded_total{camera="bikes"}' in metrics
    assert "argusd_inference_seconds_bucket" in metrics

    events = read_events(redis_url, stream_key)
    assert events, output
    ids = [entry_id for entry_id, _ in events]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-")))) and len(set(ids)) == len(ids)
    event_ids = [event["event_id"] for _, event in events]
    assert len(set(event_ids)) == len(event_ids), "no duplicate event_id"
    for _, event in events:
        fields = event.pop("_fields")
        jsonschema.validate(event, SCHEMA)
        assert fields["event_id"] == event["event_id"] and fields["type"] == event["type"]
        assert event["camera"] == "bikes"
    people = [event for _, event in events if event["label"] == "person"]
    new = {e["object_id"] for e in people if e["type"] == "new"}
    end = {e["object_id"] for e in people if e["type"] == "end"}
    assert len(new) >= 2, "the clip shows several people"
    assert new == end, "every person that appeared also ended"


def test_missing_model_is_one_clear_line(tmp_path: Path, redis_url: str, stream_key: str) -> None:
    config = write_bikes_config(tmp_path, redis_url, stream_key, free_port())
    text = config.read_text().replace(str(DETECTOR), "/nonexistent/models/yolo11n.pt")
    config.write_text(text)
    result = subprocess.run(argusd_command("run", "--config", str(config)), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 78
    assert "model file not found: /nonexistent/models/yolo11n.pt" in result.stderr
    assert "never downloads" in result.stderr
    assert "Traceback" not in result.stderr


def test_sigterm_stops_cleanly_and_flushes(tmp_path: Path, redis_url: str, stream_key: str) -> None:
    config = write_bikes_config(tmp_path, redis_url, stream_key, free_port(), loop=True)
    with running_daemon(config) as daemon:
        def a_new_event() -> bool:
            found = any(e["type"] == "new" for _, e in read_events(redis_url, stream_key))
            if not found:
                daemon.check_running()
            return found

        wait_for(a_new_event, 90, "a new event", interval=0.5)
        returncode = daemon.stop(60)
    output = daemon.output()
    assert returncode == 0, output
    assert "stopped:" in output
    events = [e for _, e in read_events(redis_url, stream_key)]
    assert {e["object_id"] for e in events if e["type"] == "new"} == {
        e["object_id"] for e in events if e["type"] == "end"
    }, "objects still tracked at shutdown get their end event"


def test_listen_address_in_use_is_one_clear_line(tmp_path: Path, redis_url: str, stream_key: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_bikes_config(tmp_path, redis_url, stream_key, port)
        result = subprocess.run(argusd_command("run", "--config", str(config)), capture_output=True, text=True,
                                timeout=120)
    assert result.returncode == 78
    assert f"http.listen 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr
