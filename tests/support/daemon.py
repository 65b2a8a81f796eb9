"""``argusd run`` as a subprocess for the length of a ``with`` block: running_daemon() and its handle."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.assets import REPO, argusd_command

OUTPUT_TAIL = 4000  # characters of the daemon's output that failure messages quote


class RunningDaemon:
    """A daemon started by running_daemon(): its process, its output (a log file) and its HTTP address."""

    def __init__(self, process: subprocess.Popen, log_path: Path, address: str | None) -> None:
        self.process = process
        self.log_path = log_path
        self.address = address

    def url(self, path: str) -> str:
        if self.address is None:
            raise ValueError("running_daemon() was not told the daemon's address")
        return f"http://{self.address}{path}"

    def output(self) -> str:
        """Everything it wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def tail(self) -> str:
        return self.output()[-OUTPUT_TAIL:]

    def poll(self) -> int | None:
        return self.process.poll()

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def check_running(self) -> bool:
        """True while it runs; once it has exited, fails the test with its exit status and output."""
        if self.process.poll() is not None:
            raise AssertionError(f"argusd exited with {self.process.returncode}:\n{self.tail()}")
        return True

    def wait(self, timeout: float) -> int:
        """Its exit status once it exits by itself; fails the test if it still runs after ``timeout`` s."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"argusd still running after {timeout} s:\n{self.tail()}") from None

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (unless it has exited already) and its exit status; a daemon still running ``timeout`` s
        later is killed and fails the test."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"argusd did not stop within {timeout} s of SIGTERM:\n{self.tail()}") from None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush."""
        self.process.kill()
        self.process.wait(10)


@contextmanager
def running_daemon(config: Path, *args: str, log: Path | None = None, env: dict[str, str] | None = None,
                   address: str | None = None, stop_timeout: float = 30.0) -> Iterator[RunningDaemon]:
    """``argusd run --config CONFIG ARGS...`` from the repository root, its stdout and stderr appended to
    ``log`` (default: argusd.log beside the config), with ``env`` (default: the test's environment).

    Leaving the block, a daemon still running gets SIGTERM and ``stop_timeout`` seconds to exit before
    SIGKILL; a block that failed prints the daemon's output, which pytest shows with the failure."""
    log = log if log is not None else config.parent / "argusd.log"
    with log.open("ab") as log_file:
        process = subprocess.Popen(argusd_command("run", "--config", str(config), *args), cwd=REPO, env=env,
                                   stdout=log_file, stderr=subprocess.STDOUT)
    daemon = RunningDaemon(process, log, address)
    failed = True
    try:
        yield daemon
        failed = False
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if failed:
            print(f"--- argusd output ({log}, exit status {process.returncode}) ---\n{daemon.tail()}",
                  file=sys.stderr)
