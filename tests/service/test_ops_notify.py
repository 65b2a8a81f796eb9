"""systemd notify protocol: the datagrams themselves, and a running daemon whose main loop is blocked
stopping its WATCHDOG=1 pings (read from a fake NOTIFY_SOCKET bound by the test)."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.assets import DETECTOR, free_port
from tests.support.configs import config_yaml, daemon_config
from tests.support.daemon import running_daemon
from tests.support.polling import wait_for
from daemon.service.notify import SystemdNotifier


class NotifySocket:
    """A unix datagram socket standing in for systemd's; records (arrival time, message) in order."""

    def __init__(self, address: str) -> None:
        self.address = address  # "@name" (abstract) or a path, as in $NOTIFY_SOCKET
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(b"\0" + address[1:].encode() if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append((time.monotonic(), data.decode()))

    def snapshot(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self.messages)

    def wait_for(self, prefix: str, after: int = 0, timeout: float = 30.0) -> int:
        """Index of the first message from ``after`` on that starts with ``prefix``."""

        def first_match() -> list[int]:
            return [index for index, (_, message) in enumerate(self.snapshot()[after:], after)
                    if message.startswith(prefix)][:1]

        (index,) = wait_for(first_match, timeout, f"a {prefix!r} message",
                            details=lambda: f"got {[m for _, m in self.snapshot()]}")
        return index

    def count(self, message: str, start: int = 0, since: float = 0.0) -> int:
        return sum(1 for at, text in self.snapshot()[start:] if text == message and at >= since)

    def close(self) -> None:
        self._closed = True
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    server = NotifySocket(f"@argusd-test-{uuid.uuid4().hex}")
    yield server
    server.close()


def test_notifier_speaks_the_protocol_on_abstract_and_path_sockets(notify_socket: NotifySocket,
                                                                   tmp_path: Path) -> None:
    notifier = SystemdNotifier(notify_socket.address, watchdog_usec=2_000_000)
    notifier.ready("1/1 camera(s) streaming")
    notifier.status("1/1 camera(s) streaming")  # unchanged: not sent again
    notifier.reloading()
    notifier.stopping()
    assert notifier.watchdog_ping(now=100.0) and not notifier.watchdog_ping(now=100.9)
    assert notifier.watchdog_ping(now=101.0)  # half of the 2 s WatchdogSec
    notify_socket.wait_for("WATCHDOG=1", after=4)
    messages = [message for _, message in notify_socket.snapshot()]
    assert messages[0] == "READY=1\nSTATUS=1/1 camera(s) streaming"
    assert messages[1].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert messages[2:] == ["STOPPING=1", "WATCHDOG=1", "WATCHDOG=1"]
    notifier.close()

    path = tmp_path / "notify"
    on_path = NotifySocket(str(path))
    try:
        SystemdNotifier(str(path)).ready()
        on_path.wait_for("READY=1")
    finally:
        on_path.close()


def test_environment_is_read_once_and_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "@somewhere")
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    notifier = SystemdNotifier.from_environment()
    assert notifier.enabled and notifier.watchdog_interval_s == 15.0
    assert "NOTIFY_SOCKET" not in os.environ and "WATCHDOG_USEC" not in os.environ  # children cannot notify
    other_pid = SystemdNotifier.from_environment({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000000",
                                                 "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other_pid.enabled and other_pid.watchdog_interval_s is None  # the watchdog is meant for another
    assert not SystemdNotifier.from_environment({}).enabled


def _write_fifo(path: Path, text: str) -> threading.Thread:
    """Open the FIFO for writing (blocks until the daemon opens it to read) and write ``text`` in a thread."""
    thread = threading.Thread(target=lambda: path.write_text(text), daemon=True)
    thread.start()
    return thread


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_blocked_main_loop_stops_watchdog_pings(notify_socket: NotifySocket, tmp_path: Path) -> None:
    """The config file is a FIFO: SIGHUP makes the main loop open it to reload, and it stays blocked in
    open() until the test writes the new config (a config on a hung network mount does the same)."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    stream = f"argusd:test:{uuid.uuid4().hex}"

    def config(camera_url: str) -> str:
        return config_yaml(daemon_config([{"id": "cam", "url": camera_url, "fps": 2, "width": 160, "height": 120}],
                                         redis={"stream": stream}, port=port))

    fifo = tmp_path / "argusd.yaml"
    os.mkfifo(fifo)
    _write_fifo(fifo, config((tmp_path / "missing.mp4").as_uri()))  # never streams: not ready
    env = {**os.environ, "NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "1000000"}
    try:
        # stop_timeout=0: a daemon left blocked on the FIFO by a failure is killed at once
        with running_daemon(fifo, env=env, stop_timeout=0) as daemon:
            ready = notify_socket.wait_for("READY=1", timeout=90)
            assert "STATUS=0/1 camera(s) streaming" in notify_socket.snapshot()[ready][1]
            assert _http_status(f"http://{address}/readyz") == 503  # up, but no camera streams

            # Healthy: a ping every 0.5 s (half the 1 s watchdog).
            start = time.monotonic()
            time.sleep(3)
            assert notify_socket.count("WATCHDOG=1", since=start) >= 4

            daemon.send_signal(signal.SIGHUP)
            reloading = notify_socket.wait_for("RELOADING=1", after=ready + 1)
            time.sleep(3)  # six missed pings
            assert notify_socket.count("WATCHDOG=1", start=reloading) == 0
            assert _http_status(f"http://{address}/healthz") == 200  # HTTP alone would not have noticed

            _write_fifo(fifo, config("test://ball")).join(10)  # unblocks the reload
            notify_socket.wait_for("READY=1", after=reloading + 1, timeout=30)
            resumed = time.monotonic()
            time.sleep(2)
            assert notify_socket.count("WATCHDOG=1", since=resumed) >= 2
            wait_for(lambda: _http_status(f"http://{address}/readyz") == 200, 30,
                     "the reloaded test:// camera to make the daemon ready", interval=0.25)
            body = json.loads(urllib.request.urlopen(f"http://{address}/readyz", timeout=5).read())
            assert body["checks"]["camera_streaming"] is True

            daemon.send_signal(signal.SIGTERM)
            notify_socket.wait_for("STOPPING=1", after=reloading + 1, timeout=30)
            assert daemon.wait(60) == 0
    finally:
        redis.Redis().delete(stream)
    assert "Traceback" not in daemon.output()


def test_watchdog_is_withheld_while_the_inference_thread_is_stuck(notify_socket: NotifySocket) -> None:
    from daemon.service.daemon import INFERENCE_STALL_S, Daemon
    from daemon.config.loading import parse_config

    config = parse_config({"cameras": [{"id": "cam", "url": "test://"}], "detector": {"model": str(DETECTOR)}})
    daemon = Daemon(config, notifier=SystemdNotifier(notify_socket.address, watchdog_usec=2_000_000))
    daemon._feed_watchdog(time.monotonic() - INFERENCE_STALL_S - 1)  # noqa: SLF001 (a stuck detector)
    time.sleep(0.3)
    assert notify_socket.count("WATCHDOG=1") == 0
    daemon._feed_watchdog(time.monotonic())  # noqa: SLF001 (it came round again)
    notify_socket.wait_for("WATCHDOG=1")
    notify_socket.wait_for("STATUS=0/0 camera(s) streaming")
