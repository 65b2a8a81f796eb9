"""Prints a few events from a stream and a per-camera summary (used by scripts/demo.sh)."""

from __future__ import annotations

import argparse
import collections
import json

import redis


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stream", required=True)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--show", type=int, default=6)
    args = parser.parse_args()
    entries = redis.Redis.from_url(args.url, decode_responses=True).xrange(args.stream)
    events = [json.loads(fields["data"]) for _, fields in entries]
    print(f"\n{len(events)} event(s) in Redis stream {args.stream}; the first {min(args.show, len(events))}:")
    for event in events[: args.show]:
        keys = ("type", "camera", "ts", "label", "confidence", "track_id", "bbox", "attributes", "rule",
                "direction_name", "duration_s", "event_id")
        print("  " + json.dumps({k: event[k] for k in keys if k in event}))
    summary: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for event in events:
        summary[event["camera"]][f"{event['type']}:{event['label']}"] += 1
    print("\nper camera:")
    for camera, counts in sorted(summary.items()):
        print(f"  {camera:14s} " + ", ".join(f"{key}={n}" for key, n in sorted(counts.items())))
    print(f"\nread them yourself: redis-cli XRANGE {args.stream} - + COUNT 5")


if __name__ == "__main__":
    main()
