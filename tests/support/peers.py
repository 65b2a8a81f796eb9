"""A test peer (a camera or a sender from daemon/testing/) in a subprocess: started on a loopback port, then
killable, pausable (SIGSTOP) and restartable on the same port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from tests.support.assets import REPO, free_port


class PeerProcess:
    """``python -m MODULE --port PORT *args``, ready once it prints its first line on stdout."""

    def __init__(self, module: str, *args: str, port: int | None = None) -> None:
        self.module = module
        self.port = port or free_port()
        self.args = args
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 15.0) -> PeerProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, "--port", str(self.port), *self.args],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        ready = threading.Event()
        threading.Thread(target=lambda: (self.process.stdout.readline(), ready.set()), daemon=True).start()
        if not ready.wait(timeout) or self.process.poll() is not None:
            error = self.process.stderr.read() if self.process.poll() is not None else ""
            self.kill()
            raise RuntimeError(f"{self.module} did not start {error}")
        return self

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            for stream in (self.process.stdout, self.process.stderr):
                stream.close()
            self.process = None

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def close(self) -> None:
        """Kill the peer if it runs, paused or not."""
        if self.process is not None:
            self.resume()  # a SIGSTOPped process must run again to die of SIGKILL promptly
            self.kill()
