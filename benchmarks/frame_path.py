"""The Python cost of getting frames from GStreamer to the inference thread, per frame and per second.

    .venv/bin/python benchmarks/frame_path.py [--cameras 4] [--seconds 15] [--analysed-fps 25]

N cameras of the project's test RTSP server (bikes.mp4 at 1280x720, 30 fps, H.264) run through argusd's own
`CameraSource` and `FreshestFrameBatcher`; a consumer takes a batch, "analyses" it by converting each frame
to BGR and sleeping as a model would, ``--analysed-fps`` frames per second in all. It prints the calls into
the frame path (the code between GStreamer and the batch), the time spent in them, and the process's CPU.

The same script runs on a checkout from before frames were pulled (the commit before f6ffba5), where each
decoded frame reached Python through appsink's `new-sample` callback: it measures whichever it finds.
Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from run import RtspCameras  # noqa: E402

from daemon.config.models import CameraConfig  # noqa: E402
from daemon.inference.batcher import FreshestFrameBatcher  # noqa: E402
from daemon.sources import pipeline  # noqa: E402
from daemon.sources.camera import CameraSource  # noqa: E402


class Timed:
    """Counts the calls of one method and the wall time spent inside it (``wrap`` replaces the method)."""

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0
        self.lock = threading.Lock()

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any) -> Any:  # a plain function, so it binds as a method
            started = time.perf_counter()
            try:
                return function(*args)
            finally:
                elapsed = time.perf_counter() - started
                with self.lock:
                    self.calls += 1
                    self.seconds += elapsed

        return timed


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--analysed-fps", type=float, default=25.0, help="frames/s the consumer analyses")
    options = parser.parse_args()
    pulled = hasattr(CameraSource, "pull_frame")
    timed: dict[str, Timed] = {}
    name = "pull" if pulled else "_on_sample"  # pull: per call of the batcher; _on_sample: per decoded frame
    timed[f"GstPipelineRun.{name}"] = Timed()
    setattr(pipeline.GstPipelineRun, name, timed[f"GstPipelineRun.{name}"].wrap(getattr(pipeline.GstPipelineRun, name)))
    batch_size = options.cameras
    batcher: Any = FreshestFrameBatcher(batch_size, 0.01) if pulled else \
        FreshestFrameBatcher(batch_size, 0.01, lambda _camera: None)
    servers = RtspCameras(options.cameras, 1280, 720, 30, 2000)
    sources = []
    for index, url in enumerate(servers.urls):
        config = CameraConfig(id=f"cam{index + 1}", url=url, fps=30)
        source = CameraSource(config) if pulled else CameraSource(config, batcher.put)
        batcher.register(config.id, source.pull_frame) if pulled else batcher.register(config.id)
        sources.append(source)
        source.start()
    analysed = 0
    stop = threading.Event()

    def consume() -> None:
        nonlocal analysed
        while not stop.is_set():
            batch = batcher.next_batch(0.25)
            for frame in batch:
                frame.image  # noqa: B018  # the BGR conversion a model's input needs
            analysed += len(batch)
            time.sleep(len(batch) / options.analysed_fps)  # the model's share of the time

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    time.sleep(4)  # every camera connected and streaming
    calls0 = {name: (t.calls, t.seconds) for name, t in timed.items()}
    analysed0, cpu0, started = analysed, cpu_seconds(), time.monotonic()
    time.sleep(options.seconds)
    elapsed = time.monotonic() - started
    cpu = cpu_seconds() - cpu0
    frames = analysed - analysed0
    stop.set()
    consumer.join(2)
    for source in sources:
        source.stop()
    servers.stop()
    print(f"{'pulled by inference' if pulled else 'pushed by new-sample'}: {options.cameras} x 720p30 cameras, "
          f"{frames / elapsed:.1f} frames/s analysed, process CPU {100 * cpu / elapsed:.0f}% "
          f"(load average {os.getloadavg()[0]:.1f})")
    print("| function | calls/s | µs per call | ms per second | calls per analysed frame |")
    print("|---|---|---|---|---|")
    for name, t in timed.items():
        calls, seconds = t.calls - calls0[name][0], t.seconds - calls0[name][1]
        print(f"| `{name}` | {calls / elapsed:.0f} | {1e6 * seconds / max(calls, 1):.0f} | "
              f"{1000 * seconds / elapsed:.1f} | {calls / max(frames, 1):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
