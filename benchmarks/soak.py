"""Soak: a whole daemon on N loopback RTSP cameras whose server drops every client at a fixed interval, run
for a given time; prints, once a minute, the daemon's RSS, open descriptors, threads, camera reconnects and
events published that minute. A script that prints numbers, not a test.

    .venv/bin/python benchmarks/soak.py --minutes 60 [--cameras 4] [--drop-every 10] [--fps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import redis
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daemon.testing.process_stats import ProcessStats  # noqa: E402

PYTHON = str(REPO / ".venv" / "bin" / "python")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reconnects(http_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("argusd_camera_reconnects_total{")))


def wait_streaming(http_port: int, cameras: int, daemon: subprocess.Popen, timeout: float = 300) -> None:
    """Until every camera streams (model loaded, first frames in)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise SystemExit(f"soak: argusd exited with {daemon.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=5) as reply:
                if json.load(reply)["cameras_streaming"] == cameras:
                    return
        except OSError:  # not listening yet, or not ready (503)
            pass
        time.sleep(1)
    raise SystemExit("soak: the cameras did not all stream within 5 minutes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--report-every", type=float, default=60.0, help="seconds between report lines")
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--drop-every", type=float, default=10.0, help="seconds between dropping every client")
    parser.add_argument("--fps", type=float, default=5.0, help="analysis fps per camera")
    parser.add_argument("--model", default=str(REPO / ".cache" / "assets" / "fall-detector.pt"))
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--footage", default=str(REPO / ".cache" / "assets" / "bikes.mp4"),
                        help="video file the RTSP server loops (\"test\": a test pattern)")
    parser.add_argument("--size", default="1280x720", help="the served picture size")
    parser.add_argument("--server-fps", type=int, default=15)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="argusd-soak-"))
    rtsp_port, http_port = free_port(), free_port()
    paths = [f"/cam{i}" for i in range(args.cameras)]
    width, height = args.size.split("x")
    server = subprocess.Popen([PYTHON, "-m", "daemon.testing.rtsp_server", "--port", str(rtsp_port),
                               "--source", args.footage, "--width", width, "--height", height,
                               "--fps", str(args.server_fps), *sum((["--path", p] for p in paths), [])],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    for _ in paths:
        server.stdout.readline()  # "ready rtsp://..."
    stream = f"argusd:soak:{os.getpid()}"
    config = workdir / "argusd.yaml"
    config.write_text(yaml.safe_dump({
        "cameras": [{"id": f"cam{i}", "url": f"rtsp://127.0.0.1:{rtsp_port}{p}", "fps": args.fps}
                    for i, p in enumerate(paths)],
        "detector": {"model": args.model, "imgsz": args.imgsz, "device": "cpu"},
        "redis": {"url": args.redis, "stream": stream},
        "snapshots": {"enabled": True, "directory": str(workdir / "snapshots")},
        "spool": {"directory": str(workdir / "spool")},
        "http": {"listen": f"127.0.0.1:{http_port}"},
    }))
    daemon = subprocess.Popen([PYTHON, "-m", "daemon.service.cli", "run", "--config", str(config)], cwd=REPO,
                              stdout=(workdir / "argusd.log").open("w"), stderr=subprocess.STDOUT)
    client = redis.Redis.from_url(args.redis)
    print(f"soak: {args.cameras} camera(s), clients dropped every {args.drop_every:g} s, {args.minutes:g} min; "
          f"log {workdir / 'argusd.log'}", flush=True)
    print("report  rss_mib  fds  threads  reconnects  events (since the last line)", flush=True)
    try:
        wait_streaming(http_port, args.cameras, daemon)
        time.sleep(5)  # past the first frames' allocations
        started = time.monotonic()
        next_drop, next_report, minute, events_before = started + args.drop_every, started, 0, client.xlen(stream)
        while time.monotonic() - started < args.minutes * 60:
            now = time.monotonic()
            if now >= next_drop:
                server.send_signal(signal.SIGUSR1)
                next_drop += args.drop_every
            if now >= next_report:
                stats = ProcessStats.of(daemon.pid)
                events = client.xlen(stream)
                print(f"{minute:6d}  {stats.rss_mib:7.1f}  {stats.fds:3d}  {stats.threads:7d}  "
                      f"{reconnects(http_port):10d}  {events - events_before:10d}", flush=True)
                minute, events_before, next_report = minute + 1, events, next_report + args.report_every
            if daemon.poll() is not None:
                print(f"soak: argusd exited with {daemon.returncode}", flush=True)
                return 1
            time.sleep(0.2)
    finally:
        daemon.terminate()
        daemon.wait(60)
        server.terminate()
        server.wait(10)
        client.delete(stream)
    return 0


if __name__ == "__main__":
    sys.exit(main())
