"""Logging: readable lines by default, JSON lines by option; secrets are redacted in both, and a message
that repeats (same logger, level, template and text arguments) is rate-limited with a count of what was
suppressed."""

from __future__ import annotations

import collections
import json
import logging
import sys
import threading
import time
from collections.abc import Callable

from daemon.core.redact import redact_text

REPEAT_BURST = 5  # identical messages let through per window before the rest are counted instead
REPEAT_WINDOW_S = 60.0
_MAX_TRACKED = 1024  # distinct repeating messages remembered (least recently seen forgotten first)


class RepeatLimiter(logging.Filter):
    """Lets ``burst`` records with the same key through per ``window_s``; later ones in the window are
    dropped and counted, and the first record after the window says how many were suppressed.

    The key is the logger, level, message template and its non-numeric arguments: numbers (timings,
    counts) vary between repeats of the same condition and are left out, while camera ids and error
    texts stay in, so one camera's failure never hides another's.
    """

    def __init__(self, burst: int = REPEAT_BURST, window_s: float = REPEAT_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.window_s = window_s
        self._clock = clock
        self._seen: collections.OrderedDict[tuple, list] = collections.OrderedDict()  # key -> [start, n, dropped]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        text_args = tuple(str(a) for a in args if not isinstance(a, int | float))
        key = (record.name, record.levelno, str(record.msg), text_args)
        now = self._clock()
        with self._lock:
            entry = self._seen.get(key)
            if entry is None or now - entry[0] >= self.window_s:
                suppressed = entry[2] if entry is not None else 0
                self._seen[key] = [now, 1, 0]
                self._seen.move_to_end(key)
                if len(self._seen) > _MAX_TRACKED:
                    self._seen.popitem(last=False)
                if suppressed:
                    record.msg = f"{record.msg} (repeated; {suppressed} similar message(s) suppressed in " \
                                 f"the last {self.window_s:.0f} s)"
                return True
            entry[1] += 1
            if entry[1] <= self.burst:
                return True
            entry[2] += 1
            return False


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
        }
        if record.exc_info:
            entry["exc"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(entry)


def setup_logging(level: str = "info", json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RepeatLimiter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("ultralytics", "urllib3", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
