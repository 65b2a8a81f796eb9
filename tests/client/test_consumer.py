"""Consumer groups against a private redis-server while the publisher runs; claiming stuck entries."""

from __future__ import annotations

import threading
import time

import redis
from tests.support.events import synthetic_events
from tests.support.polling import wait_for
from tests.support.redis import RedisServer

from daemon.config.models import RedisConfig, SpoolConfig
from daemon.client.consumer import EventConsumer
from daemon.service.metrics import Metrics
from daemon.outputs.publisher import RedisPublisher

STREAM = "argusd:test:events"


def test_a_group_sees_every_event_once_and_claims_what_a_dead_consumer_left(
        redis_server: RedisServer, tmp_path) -> None:
    client = redis.Redis.from_url(redis_server.url)
    publisher = RedisPublisher(RedisConfig(url=redis_server.url, stream=STREAM), Metrics(),
                               SpoolConfig(directory=str(tmp_path / "spool")))
    publisher.start()
    reader = EventConsumer(client, [STREAM], "alerts", "alerts-1", block_ms=100, claim_idle_ms=60_000)
    produced: list[str] = []

    def produce() -> None:
        for _ in range(60):
            events = synthetic_events(5)
            produced.extend(e.event_id for e in events)
            publisher.submit(events)
            time.sleep(0.02)

    producer = threading.Thread(target=produce)
    producer.start()
    seen: list[str] = []

    def consumed_everything() -> bool:
        events = reader.poll()
        seen.extend(e.event_id for e in events)
        reader.ack(events)
        return not producer.is_alive() and len(seen) >= len(produced)

    wait_for(consumed_everything, 20, "every produced event", interval=0)
    producer.join()
    assert len(produced) == 300
    assert seen == produced  # every event, once, in order
    assert client.xpending(STREAM, "alerts")["pending"] == 0

    # A consumer takes entries and dies before acknowledging them.
    stuck = synthetic_events(20)
    publisher.submit(stuck)
    wait_for(lambda: publisher.pending == 0, 10, "publishing")
    doomed = EventConsumer(client, [STREAM], "alerts", "alerts-2", block_ms=100)
    taken = doomed.poll()
    assert [e.event_id for e in taken] == [e.event_id for e in stuck]
    del doomed
    assert client.xpending(STREAM, "alerts")["pending"] == 20

    rescuer = EventConsumer(client, [STREAM], "alerts", "alerts-3", block_ms=100, claim_idle_ms=300)
    time.sleep(0.4)
    claimed = rescuer.poll()
    rescuer.ack(claimed)
    assert sorted(e.event_id for e in claimed) == sorted(e.event_id for e in stuck)
    assert rescuer.claimed == 20
    assert client.xpending(STREAM, "alerts")["pending"] == 0
    publisher.stop()


def test_a_re_sent_event_is_acknowledged_and_skipped(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    event = synthetic_events(1)[0]
    fields = {"event_id": event.event_id, "type": event.type, "camera": event.camera, "data": event.to_json()}
    client.xadd(STREAM, fields)
    consumer = EventConsumer(client, [STREAM], "g", "c1", block_ms=100)
    first = consumer.poll()
    consumer.ack(first)
    client.xadd(STREAM, fields)  # the publisher re-sent it after losing Redis' reply
    assert consumer.poll() == []
    assert consumer.duplicates == 1
    assert client.xpending(STREAM, "g")["pending"] == 0
    assert first[0].data["label"] == "person"
