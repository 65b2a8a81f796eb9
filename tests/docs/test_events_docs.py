"""docs/events.md documents every schema field, config key and event metric that exists."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest

from daemon.config.models import RedisConfig, SnapshotConfig, SpoolConfig
from daemon.core.events import SCHEMA_VERSION
from daemon.outputs.publisher import HEALTH_CHECK_S, RedisPublisher
from daemon.service.metrics import Metrics
from tests.support.assets import REPO, event_schema, free_port
from tests.support.events import synthetic_events
from tests.support.polling import wait_for
from tests.support.redis import RedisServer

DOC = (REPO / "docs" / "events.md").read_text()
SCHEMA = event_schema()


def test_every_schema_field_is_documented() -> None:
    fields = set(SCHEMA["properties"]) | set(SCHEMA["$defs"]["objectEvent"]["properties"])
    assert {f for f in fields if f"`{f}`" not in DOC} == set()


@pytest.mark.parametrize("section", [RedisConfig, SpoolConfig, SnapshotConfig])
def test_every_config_key_is_documented(section) -> None:
    assert {key for key in section.model_fields if f"`{key}`" not in DOC} == set()


def test_every_event_metric_is_documented() -> None:
    names = {metric.name for metric in Metrics().registry.collect()
             if any(word in metric.name for word in ("event", "spool", "publish", "redis", "snapshot"))}
    assert names
    assert {n for n in names if n not in DOC} == set()


def _event_examples() -> list[tuple[str, dict]]:
    """Every JSON block of README.md and docs/ that shows an event (it has an event_id)."""
    examples = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for block in re.findall(r"```json\n(.*?)```", path.read_text(), re.DOTALL):
            example = json.loads(block)
            if isinstance(example, dict) and "event_id" in example:
                examples.append((path.name, example))
    return examples


def test_event_examples_in_the_docs_are_valid_current_events() -> None:
    examples = _event_examples()
    assert {name for name, _ in examples} >= {"README.md", "events.md"}
    for name, example in examples:
        jsonschema.validate(example, SCHEMA)
        assert example["schema_version"] == SCHEMA_VERSION, name


def _decode_json_stream(text: str) -> list[dict]:
    """The JSON documents of `jq .` output, one after another."""
    decoder, documents, position, text = json.JSONDecoder(), [], 0, text.strip()
    while position < len(text):
        document, position = decoder.raw_decode(text, position)
        documents.append(document)
        position += len(text[position:]) - len(text[position:].lstrip())
    return documents


def test_the_spool_recipe_shows_the_spooled_events(tmp_path: Path) -> None:
    """The documented one-liner, run by bash on the segments a publisher wrote while Redis was away."""
    recipe = re.search(r"Files are human-readable: `([^`]+)`", DOC)
    assert recipe, "docs/events.md: the spool recipe moved"
    publisher = RedisPublisher(RedisConfig(url=f"redis://127.0.0.1:{free_port()}/0", connect_timeout_s=0.2,
                                           backoff_max_s=0.2), Metrics(), SpoolConfig(directory=str(tmp_path)))
    publisher.start()
    events = synthetic_events(5)
    publisher.submit(events)
    wait_for(lambda: publisher.spooled == len(events), 10, "the events in the spool")
    publisher.stop(flush_timeout=0)
    result = subprocess.run(["bash", "-o", "pipefail", "-c", recipe[1]], cwd=tmp_path, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert [event["event_id"] for event in _decode_json_stream(result.stdout)] == [e.event_id for e in events]


def test_an_idle_publisher_reports_redis_up_before_any_event_as_documented(redis_server: RedisServer) -> None:
    """docs/operations.md: argusd_redis_up follows the idle PING, not the first event."""
    metrics = Metrics()
    publisher = RedisPublisher(RedisConfig(url=redis_server.url), metrics, None)
    publisher.start()
    try:
        wait_for(lambda: metrics.registry.get_sample_value("argusd_redis_up") == 1, HEALTH_CHECK_S + 2,
                 "the idle PING to set argusd_redis_up")
        redis_server.stop()
        wait_for(lambda: metrics.registry.get_sample_value("argusd_redis_up") == 0, HEALTH_CHECK_S + 2,
                 "the idle PING to notice Redis is gone")
    finally:
        publisher.stop(flush_timeout=0)
    assert publisher.published == 0
