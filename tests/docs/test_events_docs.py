"""docs/events.md documents every schema field, config key and event metric that exists."""

from __future__ import annotations


import pytest
from tests.support.assets import REPO, event_schema

from daemon.config.models import RedisConfig, SnapshotConfig, SpoolConfig
from daemon.service.metrics import Metrics

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
