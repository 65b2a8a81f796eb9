"""Soak: a whole daemon (4 RTSP cameras of real 720p footage, the real detector, snapshots on) through 200 cycles of every camera
reconnecting; its memory, descriptors and threads stay flat. (Issue: 1,556 to 1,780 MiB in 7 minutes, in
steps each time all four cameras reconnected: glibc malloc arenas of the short-lived streaming threads.)"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from daemon.testing.process_stats import ProcessStats
from tests.support.assets import BIKES, free_port, require_asset
from tests.support.configs import daemon_config, detector_config, write_config
from tests.support.daemon import running_daemon
from tests.support.polling import wait_for
from tests.support.rtsp import RtspServer

CAMERAS = 4
WARMUP_CYCLES = 60  # the detector, tracker and snapshot encoder reach their working size first
CYCLES = 200
MAX_GROWTH_MIB = 32


def cameras_of(url: str) -> list[dict]:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return json.load(reply)["cameras"]


def streaming_and_reconnects(url: str) -> tuple[int, int]:
    cameras = cameras_of(url)
    return sum(c["state"] == "streaming" for c in cameras), sum(c["reconnects"] for c in cameras)


def test_memory_descriptors_and_threads_stay_flat_over_200_reconnect_cycles(tmp_path: Path, redis_url: str,
                                                                            stream_key: str) -> None:
    paths = [f"/cam{i}" for i in range(CAMERAS)]
    # Real footage at 720p: the decoders' buffers are what the reconnecting threads' arenas kept.
    server = RtspServer(*sum((["--path", p] for p in paths[1:]), []), "--source", str(require_asset(BIKES)),
                        "--width", "1280", "--height", "720", "--fps", "15", "--key-interval", "3", path=paths[0])
    server.start()
    try:
        # Full-size frames reach Python (no `width`): their copies are allocated on the streaming threads.
        cameras = [{"id": f"cam{i}", "url": f"rtsp://127.0.0.1:{server.port}{p}", "fps": 15,
                    "backoff_initial_s": 0.05, "backoff_max_s": 0.1} for i, p in enumerate(paths)]
        port = free_port()
        config = write_config(tmp_path / "argusd.yaml", daemon_config(
            cameras, detector=detector_config(imgsz=320), redis={"url": redis_url, "stream": stream_key},
            port=port, snapshots={"enabled": True, "directory": str(tmp_path / "snapshots")}))
        with running_daemon(config, address=f"127.0.0.1:{port}") as daemon:
            status = daemon.url("/cameras")
            wait_for(lambda: daemon.check_running() and streaming_and_reconnects(status)[0] == CAMERAS, 120,
                     "every camera streaming", details=daemon.tail, ignoring=(OSError,))

            def cycle(number: int) -> None:
                reconnects = streaming_and_reconnects(status)[1]
                server.drop_clients()
                wait_for(lambda: streaming_and_reconnects(status)[1] >= reconnects + CAMERAS, 20,
                         f"cycle {number}: every camera to reconnect", details=daemon.tail)
                received = {c["id"]: c["frames_received"] for c in cameras_of(status)}
                wait_for(lambda: all(c["state"] == "streaming" and c["frames_received"] >= received[c["id"]] + 5
                                     for c in cameras_of(status)), 20,
                         f"cycle {number}: five frames from every camera again", details=daemon.tail, interval=0.02)

            for number in range(WARMUP_CYCLES):
                cycle(number)
            before = ProcessStats.of(daemon.process.pid)
            started = time.monotonic()
            for number in range(CYCLES):
                cycle(WARMUP_CYCLES + number)
                if number % 50 == 49:
                    print(f"soak: after {number + 1} cycles: {ProcessStats.of(daemon.process.pid)}")
            after = ProcessStats.of(daemon.process.pid)
            print(f"soak: {CYCLES} cycles in {time.monotonic() - started:.0f} s: {before} -> {after}")
    finally:
        server.close()
    assert after.rss_mib - before.rss_mib < MAX_GROWTH_MIB, (before, after)
    assert abs(after.fds - before.fds) <= 4 * CAMERAS, (before, after)  # a camera mid-reconnect holds a few
    assert abs(after.threads - before.threads) <= 4 * CAMERAS, (before, after)

