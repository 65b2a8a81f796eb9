"""Fault: a flood of slow HTTP clients. Connections are bounded and timed out, threads stay bounded, and
/healthz still answers within a second (issue: 1,150 slow connections once made 1,023 threads and a silent
/healthz under a 1,024-descriptor limit)."""

from __future__ import annotations

import resource
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml

from tests.support.assets import DETECTOR, argusd_command, free_port, require_asset

SLOW_CLIENTS = 1100


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def test_slow_clients_are_bounded_and_healthz_still_answers(tmp_path: Path, stream_key: str) -> None:
    port = free_port()
    config = tmp_path / "argusd.yaml"
    config.write_text(yaml.safe_dump({
        "cameras": [{"id": "a", "url": "test://ball", "fps": 2}],
        "detector": {"model": str(require_asset(DETECTOR)), "imgsz": 320, "device": "cpu"},
        "redis": {"stream": stream_key},
        "http": {"listen": f"127.0.0.1:{port}"},
    }))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))  # this test's own clients
    log_path = tmp_path / "argusd.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(argusd_command("run", "--config", str(config)), stdout=log,
                                   stderr=subprocess.STDOUT, preexec_fn=limit_descriptors)
    clients: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 60
        while "camera a: streaming" not in log_path.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        threads_before = threads_of(process.pid)
        for index in range(SLOW_CLIENTS):
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            if index % 2:
                client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # a request that never ends
            clients.append(client)
        worst = 0.0
        for _ in range(5):
            started = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
                assert reply.status == 200
            worst = max(worst, time.monotonic() - started)
        assert worst < 1.0, f"/healthz took {worst:.2f} s among {SLOW_CLIENTS} slow clients"
        assert threads_of(process.pid) <= threads_before + 4, (threads_before, threads_of(process.pid))
        time.sleep(6)  # past the request timeout: the slow clients are closed by the server
        closed = 0
        for client in clients:
            client.settimeout(0.01)
            try:
                closed += client.recv(1) == b""
            except (TimeoutError, BlockingIOError):
                pass
            except OSError:
                closed += 1
        assert closed == SLOW_CLIENTS, f"only {closed} of {SLOW_CLIENTS} slow clients were closed"
        assert process.poll() is None, log_path.read_text()[-2000:]
    finally:
        for client in clients:
            client.close()
        process.terminate()
        process.wait(30)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    text = log_path.read_text()
    assert len(text) < 200_000 and "CRITICAL" not in text and "Traceback" not in text, text[-3000:]
