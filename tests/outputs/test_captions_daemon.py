"""Daemon-level: the real detector on real footage with the template captioner on new, rule and end events.
Every caption event validates against the schema and follows, in the stream, the event it describes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import redis
from tests.support.assets import BIKES, REPO, argusd_command, event_schema, require_asset
from tests.support.configs import daemon_config, detector_config, write_config
from tests.support.daemon import running_daemon

SCHEMA = event_schema()
CAPTIONED = ("new", "zone_enter", "line_cross", "end")


def test_every_caption_event_is_valid_and_references_an_earlier_event(
        tmp_path: Path, redis_url: str, stream_key: str) -> None:
    config = daemon_config(
        [{
            "id": "bikes", "url": require_asset(BIKES).as_uri(), "fps": 5,
            "zones": [{"name": "right", "polygon": [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]}],
            "lines": [{"name": "middle", "points": [[0.5, 0.0], [0.5, 1.0]], "a_to_b": "east", "b_to_a": "west"}],
            "captions": {"captioner": "words", "events": list(CAPTIONED)},
        }],
        detector=detector_config(labels={"Normal": "person", "Fall": "fallen person"}),
        tracker={"lost_timeout_s": 1.0},
        redis={"url": redis_url, "stream": stream_key},
        spool={"directory": str(tmp_path / "spool")},
        snapshots={"enabled": True, "directory": str(tmp_path / "snapshots")},
        captions={"captioners": {"words": {"plugin": "template"}}},
    )
    with running_daemon(write_config(tmp_path / "argusd.yaml", config), "--exit-when-done",
                        "--max-seconds", "150") as daemon:
        returncode = daemon.wait(200)
    assert returncode == 0, daemon.output()[-3000:]

    events = [json.loads(fields[b"data"]) for _, fields in redis.Redis.from_url(redis_url).xrange(stream_key)]
    position = {event["event_id"]: index for index, event in enumerate(events)}
    for event in events:
        jsonschema.validate(event, SCHEMA)
    captions = [e for e in events if e["type"] == "caption"]
    subjects = [e for e in events if e["type"] in CAPTIONED]
    assert {e["type"] for e in subjects} >= {"new", "end"}, [e["type"] for e in events]
    assert len(captions) == len(subjects)  # the template keeps up: nothing dropped
    for caption in captions:
        subject = events[position[caption["subject_event_id"]]]
        assert position[subject["event_id"]] < position[caption["event_id"]]
        assert (caption["object_id"], caption["subject_type"]) == (subject["object_id"], subject["type"])
        assert caption["text"].startswith(("A person", "A fallen person")) and caption["text"].endswith(".")
        assert Path(caption["snapshot"]["path"]).is_file()
    ends = [e for e in events if e["type"] == "end"]
    carried = [e["caption"] for e in ends if "caption" in e]
    assert carried, "no end carried an earlier caption"
    for caption in carried:
        assert caption["event_id"] in position and caption["subject_event_id"] in position
    assert "stopped:" in daemon.output()

    tail = subprocess.run(argusd_command("events", "tail", "--url", redis_url, "--stream", stream_key,
                                         "--from-start", "--count", str(len(events))),
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    lines = [line for line in tail.stdout.splitlines() if "  caption  " in line]
    assert len(lines) == len(captions), tail.stdout + tail.stderr
    assert json.dumps(captions[0]["text"]) in lines[0] and " conf " not in lines[0]
