"""Publishing throughput: events/s through RedisPublisher (pipelined XADD MAXLEN ~) to a local Redis.

    .venv/bin/python benchmarks/publish_throughput.py [--events 100000] [--url redis://127.0.0.1:6379/0]

Uses a unique stream key and deletes it afterwards. Also measures the replay rate from the spool
(events spooled while Redis was "down", then delivered). Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.config.models import RedisConfig, SpoolConfig  # noqa: E402
from daemon.core.events import Event, iso_utc  # noqa: E402
from daemon.service.metrics import Metrics  # noqa: E402
from daemon.outputs.publisher import RedisPublisher  # noqa: E402


def make_events(count: int) -> list[Event]:
    now = time.time()
    return [Event(event_id=f"bench-{i}", object_id=f"obj-{i // 2}", type="new" if i % 2 == 0 else "end",
                  camera=f"cam{i % 8}", ts=iso_utc(now), label="person", class_id=0, confidence=0.87,
                  bbox=[0.1234, 0.2345, 0.3456, 0.4567], track_id=i // 2, frame_seq=i, captured_at=now,
                  started_at=iso_utc(now), duration_s=1.5, best_confidence=0.91)
            for i in range(count)]


def drain(publisher: RedisPublisher, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while publisher.pending and time.monotonic() < deadline:
        time.sleep(0.002)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the planned outage below would log a warning
    key = f"argusd:bench:{uuid.uuid4().hex}"
    client = redis.Redis.from_url(args.url)
    events = make_events(args.events)
    try:
        with tempfile.TemporaryDirectory() as spool_dir:
            config = RedisConfig(url=args.url, stream=key, maxlen=args.events * 2, queue_size=args.events)
            publisher = RedisPublisher(config, Metrics(), SpoolConfig(directory=spool_dir))
            publisher.start()
            started = time.perf_counter()
            for i in range(0, len(events), 100):  # the inference thread hands over events in small lists
                publisher.submit(events[i:i + 100])
            drain(publisher)
            live = time.perf_counter() - started
            publisher.stop()
            stored = client.xlen(key)
            print(f"live publish: {args.events} events in {live:.2f} s = {args.events / live:,.0f} events/s "
                  f"({stored} in the stream)")

            client.delete(key)
            down = RedisPublisher(config.model_copy(update={"url": "redis://127.0.0.1:1/0"}), Metrics(),
                                  SpoolConfig(directory=spool_dir, fsync="batch"))
            down.start()
            started = time.perf_counter()
            for i in range(0, len(events), 100):
                down.submit(events[i:i + 100])
            while down.spool.pending < len(events):
                time.sleep(0.002)
            spooling = time.perf_counter() - started
            down.stop(flush_timeout=0)
            replay = RedisPublisher(config, Metrics(), SpoolConfig(directory=spool_dir))
            started = time.perf_counter()
            replay.start()
            drain(replay)
            replaying = time.perf_counter() - started
            replay.stop()
            print(f"spooling while Redis is down: {args.events / spooling:,.0f} events/s (fsync per batch)")
            print(f"replay from the spool: {args.events / replaying:,.0f} events/s "
                  f"({client.xlen(key)} in the stream)")
    finally:
        client.delete(key)


if __name__ == "__main__":
    main()
