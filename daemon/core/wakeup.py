"""A thread-safe "something changed" from the daemon's threads to coroutines on the HTTP server's loop."""

from __future__ import annotations

import asyncio
import contextlib


class LoopWakeup:
    """notify() from any thread wakes every coroutine in wait() on the attached loop.

    Before attach() (no server running) notify() costs nothing; after it, one call_soon_threadsafe, so the
    inference thread never waits on the HTTP server."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called on ``loop`` itself, before any wait()."""
        self._changed = asyncio.Event()
        self._loop = loop

    def detach(self) -> None:
        self._loop = None

    def notify(self) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
                loop.call_soon_threadsafe(self._wake)

    async def wait(self, timeout: float) -> bool:
        """True when notified within ``timeout`` seconds."""
        if self._changed is None:
            raise RuntimeError("LoopWakeup.wait() before attach()")
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _wake(self) -> None:
        if self._changed is not None:
            changed, self._changed = self._changed, asyncio.Event()  # later waiters wait for the next change
            changed.set()
