"""Jittered exponential backoff, for every retry loop (cameras reconnecting, the publisher and Redis)."""

from __future__ import annotations

import random

JITTER = 0.2  # each wait is the delay ±20%, so cameras behind one switch do not retry in step


class Backoff:
    def __init__(self, initial_s: float, max_s: float) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self._delay = initial_s

    def next_wait(self) -> float:
        """The wait before the next attempt; the delay after it doubles, up to ``max_s``."""
        wait = self._delay * random.uniform(1 - JITTER, 1 + JITTER)
        self._delay = min(self._delay * 2, self.max_s)
        return wait

    def reset(self) -> None:
        """The resource is healthy again: the next failure backs off from the start."""
        self._delay = self.initial_s
