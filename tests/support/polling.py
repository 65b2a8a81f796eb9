"""Waiting in tests: one polling helper instead of a deadline loop in each file."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str, *, interval: float = 0.05,
             ignoring: tuple[type[BaseException], ...] = (), details: Callable[[], object] | None = None) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns something truthy, and return that.

    It is always called once more after ``timeout`` seconds have passed; if that call is not truthy either,
    the test fails with an AssertionError naming ``what`` (and ``details()``, evaluated then, when given).
    Exceptions of the ``ignoring`` types count as "not yet"; any other exception fails at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
        except ignoring:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            message = f"timed out after {timeout} s waiting for {what}"
            if details is not None:
                message += f"\n{details()}"
            raise AssertionError(message)
        time.sleep(interval)
