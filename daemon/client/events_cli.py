"""`argusd events tail` and `argusd events consume`: follow the event stream, or consume it correctly."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import cast

import redis
from pydantic import ValidationError
from redis.typing import KeyT, StreamIdT

from daemon.client.consumer import EventConsumer, StreamEvent, XReadReply, parse_entry, streams_by_slot
from daemon.config.loading import load_config
from daemon.config.models import EXIT_CONFIG, ConfigError, RedisConfig
from daemon.core.redact import redact_url
from daemon.outputs.publisher import redis_client, stream_for

EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE
EXIT_USAGE = 2  # what argparse exits with for a bad option


class UsageError(Exception):
    """A mistake on the command line: one line, exit 2."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    events = commands.add_parser("events", help="read the event stream (tail, consume)")
    actions = events.add_subparsers(dest="events_command", required=True, metavar="ACTION")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", help="take the Redis URL and stream from this daemon config")
    common.add_argument("--url", help="Redis URL (default: ARGUSD_REDIS_URL, the config's, or redis://127.0.0.1:6379/0)")
    common.add_argument("--stream", action="append",
                        help="stream key, repeatable (default: the config's stream, or argusd:events)")
    common.add_argument("--camera", action="append", help="with a per-camera {camera} stream: which camera(s)")
    common.add_argument("--json", action="store_true", help="print each event as one JSON line")
    common.add_argument("--count", type=int, default=None,
                        help="exit after this many events (0: print none and exit at once)")
    common.add_argument("--max-seconds", type=float, default=None, help="exit after this many seconds")

    tail = actions.add_parser("tail", parents=[common], help="follow the stream (no consumer group, no acks)")
    tail.add_argument("--from-start", action="store_true", help="print the stream's existing events first")

    consume = actions.add_parser(
        "consume", parents=[common],
        help="read as a member of a consumer group: acknowledge, claim stuck entries, skip duplicates")
    consume.add_argument("--group", "-g", required=True, help="consumer group (created if missing)")
    consume.add_argument("--consumer", "-C", required=True, help="this consumer's name, stable across restarts")
    consume.add_argument("--claim-idle-ms", type=int, default=60_000,
                         help="claim entries other consumers left unacknowledged this long (XAUTOCLAIM)")
    consume.add_argument("--start", choices=("all", "new"), default="all",
                         help="where a newly created group starts: the whole stream or new events only")


def run(args: argparse.Namespace) -> int:
    try:
        config, streams = _target(args)
    except UsageError as error:
        print(f"argusd events: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG
    limits = _Limits(args.count, args.max_seconds)
    if limits.reached(False):  # --count 0: every event wanted has been printed
        return 0
    client = redis_client(config.model_copy(update={"command_timeout_s": 10.0}))
    try:
        if args.events_command == "tail":
            for event in _tail(client, streams, args.from_start):
                if event is not None:
                    _print(event, args.json)
                if limits.reached(event is not None):
                    return 0
        consumer = EventConsumer(client, streams, args.group, args.consumer, claim_idle_ms=args.claim_idle_ms,
                                 start_id="0" if args.start == "all" else "$", count=min(100, args.count or 100))
        while not limits.reached(False):
            for event in consumer.poll():
                _print(event, args.json)
                consumer.ack([event])  # after handling (here: printing), never before
                if limits.reached(True):
                    return 0
    except KeyboardInterrupt:
        return 0
    except (redis.ConnectionError, redis.TimeoutError, OSError) as error:
        print(f"argusd events: Redis at {redact_url(config.url)} unreachable: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except redis.ResponseError as error:
        print(f"argusd events: Redis refused: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return 0


class _Limits:
    def __init__(self, count: int | None, max_seconds: float | None) -> None:
        self.count = count
        self.deadline = time.monotonic() + max_seconds if max_seconds else None
        self.seen = 0

    def reached(self, one_more: bool) -> bool:
        self.seen += one_more
        return (self.count is not None and self.seen >= self.count) or (
            self.deadline is not None and time.monotonic() >= self.deadline)


def _print(event: StreamEvent, as_json: bool) -> None:
    print(json.dumps(event.data, separators=(",", ":")) if as_json else _pretty(event), flush=True)


def _target(args: argparse.Namespace) -> tuple[RedisConfig, list[str]]:
    """The Redis settings and stream keys to read. ConfigError for a bad config file or ARGUSD_REDIS_URL,
    UsageError for a bad option."""
    config = load_config(args.config).redis if args.config else RedisConfig()
    if args.url:
        config = _with_setting(config, "url", args.url, UsageError, "--url")
    elif not args.config and os.environ.get("ARGUSD_REDIS_URL"):  # with --config, load_config applied it
        config = _with_setting(config, "url", os.environ["ARGUSD_REDIS_URL"], ConfigError, "ARGUSD_REDIS_URL")
    streams = [_with_setting(config, "stream", stream, UsageError, f"--stream {stream}").stream
               for stream in args.stream or [config.stream]]
    per_camera = [stream for stream in streams if "{camera}" in stream]
    if per_camera and not args.camera:
        raise UsageError(f"stream {per_camera[0]} is per camera: name the camera(s) with --camera")
    shared = [stream for stream in streams if "{camera}" not in stream]
    return config, shared + [stream_for(stream, camera, config.is_cluster)
                             for stream in per_camera for camera in args.camera or []]


def _with_setting(config: RedisConfig, field: str, value: str, error_type: type[Exception],
                  source: str) -> RedisConfig:
    """``config`` with ``field`` set to ``value``, validated; an invalid value raises ``error_type``
    naming ``source`` (the option or variable it came from) and why, in one line."""
    try:
        return RedisConfig.model_validate({**config.model_dump(), field: value})
    except ValidationError as error:
        reason = error.errors()[0]["msg"].removeprefix("Value error, ")
        raise error_type(f"{source}: {reason}") from None


def _tail(client: redis.Redis, streams: list[str], from_start: bool):
    """Yield events as they arrive (None on each idle second, so time limits are checked)."""
    last: dict[KeyT, StreamIdT] = dict.fromkeys(streams, "0" if from_start else "$")
    if not from_start:  # resolve "$" once, so entries added between two XREADs are not skipped
        for stream in streams:
            info = client.xinfo_stream(stream) if client.exists(stream) else None
            last[stream] = info["last-generated-id"] if info else "0"
    groups = streams_by_slot(client, streams)  # one XREAD names the streams of one slot on a cluster
    while True:
        replies: XReadReply = []
        for group in groups:
            replies += cast(XReadReply, client.xread({stream: last[stream] for stream in group}, count=100,
                                                     block=max(1, 1000 // len(groups))) or [])
        if not replies:
            yield None
        for key, entries in replies:
            name = key.decode() if isinstance(key, bytes) else key
            for entry_id, fields in entries:
                last[name] = entry_id
                yield parse_entry(name, entry_id, fields)


def _pretty(event: StreamEvent) -> str:
    data = event.data
    parts = [data.get("ts", "?"), event.camera, f"{event.type:<4}"]
    if "label" in data:
        confidence = f" conf {data['best_confidence']:.2f}" if "best_confidence" in data else ""
        parts.append(f"{data['label']} #{data.get('track_id', '?')}{confidence}")
    if "rule" in data:  # a rule event: which zone or line, and for a line which way
        direction = data.get("direction")
        named = f" ({data['direction_name']})" if data.get("direction_name") else ""
        parts.append(f"{data['rule']} {direction}{named}" if direction else data["rule"])
    if "text" in data:  # a caption event
        parts.append(json.dumps(data["text"]))
    if "duration_s" in data and event.type == "end":
        parts.append(f"{data['duration_s']:.1f}s")
    if "snapshot" in data:
        parts.append(data["snapshot"].get("path") or data["snapshot"].get("key", ""))
    parts.append(f"id={event.event_id}")
    return "  ".join(str(part) for part in parts)
