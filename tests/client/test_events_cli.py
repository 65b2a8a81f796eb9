"""`argusd events tail` and `argusd events consume` against a private redis-server."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
import redis

from daemon.config.models import RedisConfig, SpoolConfig
from daemon.outputs.publisher import RedisPublisher
from daemon.service.metrics import Metrics
from tests.support.assets import REPO, argusd_command
from tests.support.events import event, synthetic_events
from tests.support.polling import wait_for
from tests.support.redis import RedisServer

STREAM = "argusd:test:events"


def publish(url: str, tmp_path, events) -> None:
    publisher = RedisPublisher(RedisConfig(url=url, stream=STREAM), Metrics(),
                               SpoolConfig(directory=str(tmp_path / "spool")))
    publisher.start()
    publisher.submit(events)
    wait_for(lambda: publisher.pending == 0, 10, "publishing")
    publisher.stop()


def events_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(argusd_command("events", *args), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_tail_follows_new_events_as_json_lines(redis_server: RedisServer, tmp_path) -> None:
    publish(redis_server.url, tmp_path, synthetic_events(2))  # already there: tail must not print these
    tail = events_cli("tail", "--url", redis_server.url, "--stream", STREAM, "--json", "--count", "3",
                      "--max-seconds", "30")
    time.sleep(1.5)  # let it start following
    fresh = synthetic_events(3, camera="door")
    publish(redis_server.url, tmp_path, fresh)
    out, err = tail.communicate(timeout=40)
    assert tail.returncode == 0, err
    assert [json.loads(line)["event_id"] for line in out.splitlines()] == [e.event_id for e in fresh]


def test_tail_pretty_from_start(redis_server: RedisServer, tmp_path) -> None:
    events = synthetic_events(2, camera="yard")
    publish(redis_server.url, tmp_path, events)
    out, err = events_cli("tail", "--url", redis_server.url, "--stream", STREAM, "--from-start",
                          "--count", "2").communicate(timeout=30)
    lines = out.splitlines()
    assert len(lines) == 2, err
    assert "yard" in lines[0] and "new" in lines[0] and "person" in lines[0] and events[0].event_id in lines[0]


def test_consume_acknowledges_what_it_printed(redis_server: RedisServer, tmp_path) -> None:
    events = synthetic_events(5)
    publish(redis_server.url, tmp_path, events)
    first = events_cli("consume", "--url", redis_server.url, "--stream", STREAM, "-g", "audit", "-C", "a1",
                       "--json", "--count", "3")
    out, err = first.communicate(timeout=30)
    assert first.returncode == 0, err
    assert [json.loads(line)["event_id"] for line in out.splitlines()] == [e.event_id for e in events[:3]]
    client = redis.Redis.from_url(redis_server.url)
    assert client.xpending(STREAM, "audit")["pending"] == 0  # the third was acknowledged before exiting

    rest, err = events_cli("consume", "--url", redis_server.url, "--stream", STREAM, "-g", "audit", "-C", "a1",
                           "--json", "--max-seconds", "3").communicate(timeout=30)
    assert [json.loads(line)["event_id"] for line in rest.splitlines()] == [e.event_id for e in events[3:]]


def test_unreachable_redis_is_one_clear_line(tmp_path) -> None:
    process = events_cli("tail", "--url", "redis://user:secret@127.0.0.1:1/0")
    out, err = process.communicate(timeout=30)
    assert process.returncode == 69
    assert "unreachable" in err and "secret" not in err and "Traceback" not in err


@pytest.mark.parametrize(("args", "environment", "status", "line"), [
    (("--url", "http://127.0.0.1:6379"), {}, 2,
     "argusd events: --url: must start with redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://"),
    (("--stream", "argusd:{camera}:events"), {}, 2,
     "argusd events: stream argusd:{camera}:events is per camera: name the camera(s) with --camera"),
    (("--stream", "argusd:{cam}"), {}, 2,
     "argusd events: --stream argusd:{cam}: the only placeholder allowed is {camera}"),
    ((), {"ARGUSD_REDIS_URL": "http://127.0.0.1:6379"}, 78,
     "ARGUSD_REDIS_URL: must start with redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://"),
])
def test_a_bad_option_or_variable_is_one_line_naming_it(args: tuple[str, ...], environment: dict[str, str],
                                                        status: int, line: str) -> None:
    result = subprocess.run(argusd_command("events", "tail", *args), cwd=REPO, capture_output=True, text=True,
                            timeout=60, env={**os.environ, **environment})
    assert (result.returncode, result.stderr.strip()) == (status, line), result.stderr


def test_tail_shows_which_rule_and_which_way(redis_server: RedisServer, tmp_path) -> None:
    crossing = event("line_cross", step=1, rule="gate", direction="a_to_b", direction_name="in")
    entering = event("zone_enter", step=2, rule="dock")
    publish(redis_server.url, tmp_path, [crossing, entering])
    out, err = events_cli("tail", "--url", redis_server.url, "--stream", STREAM, "--from-start",
                          "--count", "2").communicate(timeout=30)
    crossed, entered = out.splitlines()
    assert "line_cross" in crossed and "person #1" in crossed and "gate a_to_b (in)" in crossed, out + err
    assert "zone_enter" in entered and "  dock  " in entered, out + err


def test_count_0_prints_no_event(redis_server: RedisServer, tmp_path) -> None:
    publish(redis_server.url, tmp_path, synthetic_events(2))
    tail = subprocess.run(argusd_command("events", "tail", "--url", redis_server.url, "--stream", STREAM,
                                         "--from-start", "--count", "0"), cwd=REPO, capture_output=True, text=True,
                          timeout=30)
    assert (tail.returncode, tail.stdout) == (0, ""), tail.stderr
