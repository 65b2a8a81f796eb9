"""A small, correct Redis Streams consumer for argusd events (consumer groups, claims, de-duplication).

    from daemon.client.consumer import EventConsumer
    consumer = EventConsumer(redis.Redis(), ["argusd:events"], group="alerts", consumer="alerts-1")
    while True:
        events = consumer.poll()
        for event in events:
            handle(event)           # make it idempotent on event.event_id where you can
        consumer.ack(events)        # only after handling: a crash before this means redelivery

What it does, in order, on each poll:
1. now and then, ``XAUTOCLAIM`` entries another consumer of the group took but did not acknowledge for
   ``claim_idle_ms`` (it died or hangs), so no event stays stuck;
2. on the first poll, re-read this consumer's own pending entries (it restarted before acknowledging);
3. ``XREADGROUP ... >`` for new entries, blocking up to ``block_ms``.
Entries whose ``event_id`` the group already handled (a publisher re-send after a lost reply, on servers
without ``XADD IDMP``) are acknowledged and skipped: ``ack`` records handled event ids in
``<stream>:seen:<group>:<event_id>`` keys that expire after ``dedup_ttl_s``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import cast

import redis
from redis.cluster import RedisCluster

# XREAD and XREADGROUP replies as redis-py parses them for RESP2, its default protocol and the form read here
# (its annotations also allow RESP3's mapping): [[stream, [(entry_id, fields), ...]], ...], [] when nothing came.
# XREADGROUP gives None fields for a pending entry since deleted from the stream.
XReadReply = list[tuple[bytes | str, list[tuple[bytes | str, dict]]]]
XReadGroupReply = list[tuple[bytes | str, list[tuple[bytes | str, dict | None]]]]


@dataclass(frozen=True, slots=True)
class StreamEvent:
    stream: str
    entry_id: str
    event_id: str
    type: str
    camera: str
    data: dict = field(repr=False)


def parse_entry(stream: str, entry_id: bytes | str, fields: dict) -> StreamEvent:
    def text(value: bytes | str | None) -> str:
        return value.decode() if isinstance(value, bytes) else (value or "")

    values = {text(k): text(v) for k, v in fields.items()}
    data = json.loads(values["data"]) if values.get("data") else {}
    return StreamEvent(stream, text(entry_id), values.get("event_id", data.get("event_id", "")),
                       values.get("type", data.get("type", "")), values.get("camera", data.get("camera", "")), data)


class EventConsumer:
    def __init__(self, client: redis.Redis, streams: list[str], group: str, consumer: str, *,
                 count: int = 100, block_ms: int = 1000, claim_idle_ms: int = 60_000,
                 claim_interval_s: float = 5.0, dedup_ttl_s: int = 86_400, start_id: str = "0") -> None:
        """``start_id`` is where a newly created group starts: "0" (the whole stream) or "$" (new only)."""
        self.client = client
        self.streams = streams
        self.group = group
        self.consumer = consumer
        self.count = count
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.claim_interval_s = claim_interval_s
        self.dedup_ttl_s = dedup_ttl_s
        self.duplicates = 0
        self.claimed = 0
        self._last_claim = 0.0
        self._own_pending_read = False
        # One XREADGROUP may name only streams of one slot on a Redis Cluster: read slot by slot there.
        self._slot_groups = streams_by_slot(client, streams)
        for stream in streams:
            try:
                client.xgroup_create(stream, group, id=start_id, mkstream=True)
            except redis.ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise

    def poll(self) -> list[StreamEvent]:
        """The next events for this consumer, duplicates of already handled ones removed."""
        entries = self._claim_stuck()
        if not self._own_pending_read:
            entries += self._read("0")
            self._own_pending_read = True
        if not entries:
            entries = self._read(">", block=True)
        return self._without_duplicates(entries)

    def ack(self, events: list[StreamEvent]) -> None:
        """Record the events as handled by the group and acknowledge them (one round trip)."""
        if not events:
            return
        pipe = self.client.pipeline(transaction=False)
        for event in events:
            if event.event_id:
                pipe.set(self._seen_key(event), 1, ex=self.dedup_ttl_s)
            pipe.xack(event.stream, self.group, event.entry_id)
        pipe.execute()

    # -- internals -----------------------------------------------------------------------------------

    def _read(self, start: str, block: bool = False) -> list[StreamEvent]:
        """Entries from each slot's streams; a blocking read shares ``block_ms`` among the slots and ends at
        the first that has entries (the slots take turns at going first, so none is starved)."""
        groups = self._slot_groups
        self._slot_groups = groups[1:] + groups[:1]
        wait = max(1, self.block_ms // len(groups)) if block else None
        events: list[StreamEvent] = []
        for streams in groups:
            reply = cast(XReadGroupReply,
                         self.client.xreadgroup(self.group, self.consumer, dict.fromkeys(streams, start),
                                                count=self.count, block=wait))
            for stream, entries in reply or []:
                name = stream.decode() if isinstance(stream, bytes) else stream
                events += [parse_entry(name, entry_id, fields) for entry_id, fields in entries if fields]
            if block and events:
                break
        return events

    def _claim_stuck(self) -> list[StreamEvent]:
        if time.monotonic() - self._last_claim < self.claim_interval_s:
            return []
        self._last_claim = time.monotonic()
        events = []
        for stream in self.streams:
            start = "0-0"
            while True:
                reply = self.client.xautoclaim(stream, self.group, self.consumer, self.claim_idle_ms,
                                               start_id=start, count=self.count)
                start, entries = reply[0], reply[1]
                claimed = [parse_entry(stream, entry_id, fields) for entry_id, fields in entries if fields]
                events += claimed
                self.claimed += len(claimed)
                if start in (b"0-0", "0-0") or len(events) >= self.count:
                    break
        return events

    def _without_duplicates(self, events: list[StreamEvent]) -> list[StreamEvent]:
        if not events:
            return events
        pipe = self.client.pipeline(transaction=False)
        for event in events:
            pipe.exists(self._seen_key(event))
        handled = pipe.execute()
        fresh, duplicates, batch_ids = [], [], set()
        for event, seen in zip(events, handled, strict=True):
            if seen or (event.event_id and event.event_id in batch_ids):
                duplicates.append(event)
            else:
                fresh.append(event)
                batch_ids.add(event.event_id)
        if duplicates:
            self.duplicates += len(duplicates)
            pipe = self.client.pipeline(transaction=False)
            for event in duplicates:
                pipe.xack(event.stream, self.group, event.entry_id)
            pipe.execute()
        return fresh

    def _seen_key(self, event: StreamEvent) -> str:
        return f"{event.stream}:seen:{self.group}:{event.event_id}"


def streams_by_slot(client: redis.Redis, streams: list[str]) -> list[list[str]]:
    """The streams in groups one XREADGROUP can name: all of them, or on a cluster those of one slot."""
    if not isinstance(client, RedisCluster):
        return [list(streams)]
    groups: dict[int, list[str]] = {}
    for stream in streams:
        groups.setdefault(client.keyslot(stream), []).append(stream)
    return list(groups.values())
