"""The console's live event feed: the daemon's published events (new, end, rule events, captions) as
they are handed to the publisher, kept in a bounded ring for the SSE endpoint /events/stream."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from daemon.core.wakeup import LoopWakeup
from daemon.outputs.publisher import Publishable

FEED_LENGTH = 500  # recent events kept; a viewer that falls further behind skips the rest (counted)


@dataclass(frozen=True, slots=True)
class FeedItem:
    seq: int  # increases by one per event
    event: dict  # the event as published (Serialised.to_dict())


class EventFeed:
    def __init__(self, on_skipped: Callable[[int], None], length: int = FEED_LENGTH) -> None:
        self._items: collections.deque[FeedItem] = collections.deque(maxlen=length)
        self._lock = threading.Lock()
        self._seq = 0
        self._on_skipped = on_skipped
        self.wakeup = LoopWakeup()

    def publish(self, events: Sequence[Publishable]) -> None:
        """Called with every batch handed to the publisher (inference and caption threads): O(events)."""
        if not events:
            return
        with self._lock:
            for event in events:
                self._seq += 1
                self._items.append(FeedItem(self._seq, event.to_dict()))
        self.wakeup.notify()

    @property
    def last_seq(self) -> int:
        return self._seq

    def after(self, seq: int) -> list[FeedItem]:
        """The kept events newer than ``seq``; events that already left the ring are counted as skipped."""
        with self._lock:
            items = [item for item in self._items if item.seq > seq]
        expected = (items[0].seq if items else self._seq + 1) - seq - 1
        if expected > 0:
            self._on_skipped(expected)
        return items

    def snapshot_of(self, event_id: str) -> dict | None:
        """Where a kept event's snapshot is (the event's ``snapshot`` field), so only those can be served."""
        with self._lock:
            for item in reversed(self._items):
                if item.event.get("event_id") == event_id:
                    return item.event.get("snapshot")
        return None
