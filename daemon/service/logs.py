"""Logging: readable lines by default, JSON lines by option; secrets are redacted in both, and a message
that repeats (same logger, level, template and text arguments) is rate-limited with a count of what was
suppressed."""

from __future__ import annotations

import collections
import json
import logging
import os
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


# syslog priorities (RFC 5424) of the logging levels, for the "<N>" line prefix journald reads.
SYSLOG_PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def stderr_is_journal() -> bool:
    """True when stderr is connected to journald: systemd sets JOURNAL_STREAM to its device:inode."""
    try:
        status = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):  # closed, or replaced by an object without a descriptor
        return False
    return os.environ.get("JOURNAL_STREAM") == f"{status.st_dev}:{status.st_ino}"


class _JournalPrefixes(logging.Formatter):
    """Starts every line of a record with its syslog priority, "<3>" for an error: journald strips the
    prefix and files the line under that priority. Without it each line of a multi-line record (a block
    of config errors, a traceback) is filed at the unit's default priority, and `journalctl -p err` misses it."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{SYSLOG_PRIORITIES.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in self.inner.format(record).splitlines())


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
    formatter: logging.Formatter = (_JsonFormatter() if json_lines else
                                    _RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.setFormatter(_JournalPrefixes(formatter) if stderr_is_journal() else formatter)
    handler.addFilter(RepeatLimiter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("ultralytics", "urllib3", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
