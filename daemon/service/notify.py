"""systemd's notify protocol (sd_notify), spoken directly: one datagram per state on $NOTIFY_SOCKET.

Outside systemd (no NOTIFY_SOCKET) every call is a no-op, so the daemon runs the same from a shell.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends READY=1, RELOADING=1, STOPPING=1, STATUS= and WATCHDOG=1 to the service manager.

    The watchdog interval is half of systemd's WatchdogSec (from $WATCHDOG_USEC), as sd_watchdog_enabled
    advises; ``watchdog_ping`` rate-limits itself, so the main loop can call it on every turn.
    """

    def __init__(self, socket_path: str | None, watchdog_usec: int | None = None) -> None:
        self._address = _socket_address(socket_path) if socket_path else None
        self._socket: socket.socket | None = None
        self.watchdog_interval_s = watchdog_usec / 2_000_000 if watchdog_usec else None
        self._last_ping = 0.0
        self._last_status: str | None = None
        self._failed_logged = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        """Read $NOTIFY_SOCKET and $WATCHDOG_USEC/$WATCHDOG_PID, then remove them from os.environ so no
        child process can impersonate the daemon (what sd_notify's ``unset_environment`` does)."""
        env = os.environ if environ is None else environ
        socket_path = env.get("NOTIFY_SOCKET") or None
        watchdog_usec: int | None = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog_usec = int(usec)
        if environ is None:
            for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
                os.environ.pop(name, None)
        return cls(socket_path, watchdog_usec)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self, status: str | None = None) -> None:
        self._send("READY=1", f"STATUS={status}" if status else None)

    def reloading(self) -> None:
        # MONOTONIC_USEC lets systemd >= 253 (Type=notify-reload) match the reload to this message.
        self._send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def status(self, text: str) -> None:
        """Send STATUS= (shown by `systemctl status`) only when the text changed."""
        if text != self._last_status:
            self._send(f"STATUS={text}")

    def watchdog_ping(self, now: float | None = None) -> bool:
        """Send WATCHDOG=1 if half the watchdog period passed since the last one; True when sent."""
        if self.watchdog_interval_s is None or self._address is None:
            return False
        now = time.monotonic() if now is None else now
        if now - self._last_ping < self.watchdog_interval_s:
            return False
        self._last_ping = now
        self._send("WATCHDOG=1")
        return True

    def _send(self, *fields: str | None) -> None:
        if self._address is None:
            return
        lines = [field for field in fields if field]
        for line in lines:
            if line.startswith("STATUS="):
                self._last_status = line.removeprefix("STATUS=")
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto("\n".join(lines).encode(), self._address)
        except OSError as error:
            # The manager went away or the socket is unreachable: keep running, say so once.
            if not self._failed_logged:
                log.warning("systemd notify: cannot send to %s: %s", self._address, error)
                self._failed_logged = True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _socket_address(path: str) -> str | bytes:
    """'@name' is the abstract namespace (a leading NUL byte); anything else is a filesystem path."""
    if path.startswith("@"):
        return b"\0" + path[1:].encode()
    return path

