"""100 disconnect/reconnect cycles against a real RTSP server leave memory, fds and threads where they were."""

from __future__ import annotations

import os
import time

from tests.support.cameras import Recorder, camera
from tests.support.polling import wait_for
from tests.support.rtsp import RtspServer

from daemon.sources.camera import CameraSource
from daemon.sources.supervisor import CameraState

CYCLES = 100


def process_usage() -> tuple[float, int, int]:
    """Resident memory (MiB), open file descriptors, and threads (GStreamer's native ones included)."""
    with open("/proc/self/status") as status:
        rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return rss_kib / 1024, len(os.listdir("/proc/self/fd")), len(os.listdir("/proc/self/task"))


def disconnect_cycles(server: RtspServer, source: CameraSource, count: int) -> None:
    for cycle in range(count):
        frames, reconnects = source.frames_delivered, source.reconnects
        wait_for(lambda: source.frames_delivered > frames, 5, f"a frame in cycle {cycle}", details=source.status)
        server.drop_clients()  # the server closes the connection, as a rebooting camera does
        wait_for(lambda: source.reconnects > reconnects, 5, f"the reconnect of cycle {cycle}", details=source.status)


def test_100_disconnect_reconnect_cycles_do_not_leak(rtsp_server: RtspServer) -> None:
    recorder = Recorder()
    source = recorder.source(camera("cycled", rtsp_server.url, backoff_initial_s=0.05, backoff_max_s=0.05))
    source.start()
    try:
        disconnect_cycles(rtsp_server, source, 10)  # warm-up: GStreamer's plugin and thread-pool caches fill
        wait_for(lambda: source.state == CameraState.STREAMING, 5, "streaming after the warm-up")
        time.sleep(0.5)
        before = process_usage()
        started = time.monotonic()
        disconnect_cycles(rtsp_server, source, CYCLES)
        wait_for(lambda: source.state == CameraState.STREAMING, 5, "streaming after the cycles")
        time.sleep(0.5)
        after = process_usage()
        print(f"\n{CYCLES} cycles in {time.monotonic() - started:.1f} s: RSS {before[0]:.1f} -> {after[0]:.1f} MiB, "
              f"fds {before[1]} -> {after[1]}, threads {before[2]} -> {after[2]}")
        assert after[0] - before[0] < 16, "resident memory grew"
        assert after[1] <= before[1] + 2, "file descriptors leaked"
        assert after[2] <= before[2] + 2, "threads leaked"
        assert source.reconnects >= CYCLES + 10 and source.stalls == 0
    finally:
        source.stop()
