"""The detector's frames/s per runtime and thread count while N cameras are decoded: the figures behind the
default of `detector.threads` (docs/performance.md).

    .venv/bin/python benchmarks/threads.py [--model .cache/assets/fall-detector.pt] [--imgsz 320]
        [--runtimes openvino,onnxruntime,torch] [--threads 1,2] [--cameras 4] [--seconds 8] [--rounds 2]

The test RTSP server serves N 1280x720 30 fps cameras (as benchmarks/run.py does) and a minimal GStreamer
client decodes them all meanwhile. Each (runtime, threads) runs in a fresh process: argusd's detector plugin,
built with that `detector.runtime` and `detector.threads`, detects batches of N decoded frames for the given
seconds. Rounds alternate the order, so a drift in the machine's load does not favour one setting.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.run import DecodingClient, RtspCameras, load_average, log  # noqa: E402


def measure(args: argparse.Namespace) -> None:
    """One (runtime, threads) in this process: frames/s of the detector plugin on decoded frames."""
    from benchmarks.workloads import grab_frames
    from daemon.config.models import DetectorConfig
    from plugins.detectors.ultralytics_detector import UltralyticsDetector

    detector = UltralyticsDetector(DetectorConfig(model=args.model, imgsz=args.imgsz, device="cpu",
                                                  runtime=args.runtime, threads=args.threads,
                                                  cache_dir=args.cache_dir))
    frames = grab_frames(args.url, args.batch)
    for _ in range(3):  # warm-up at the measured shape
        detector.detect(frames)
    analysed, started = 0, time.perf_counter()
    while time.perf_counter() - started < args.seconds:
        detector.detect(frames)
        analysed += len(frames)
    print(json.dumps({"runtime": detector.runtime, "threads": args.threads,
                      "fps": analysed / (time.perf_counter() - started)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(REPO / ".cache" / "assets" / "fall-detector.pt"))
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--runtimes", default="openvino,onnxruntime,torch")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--runtime", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        args.threads = int(args.threads)
        measure(args)
        os._exit(0)  # GStreamer's and the runtimes' threads need no orderly teardown
    settings = [(r, int(t)) for r in args.runtimes.split(",") for t in args.threads.split(",")]
    results: dict[str, list[float]] = {}
    cameras = RtspCameras(args.cameras, 1280, 720, 30, 2000)
    decoding = DecodingClient(cameras.urls)
    log(f"load average before: {load_average()}")
    try:
        with tempfile.TemporaryDirectory() as cache_dir:
            for round_index in range(args.rounds):
                for runtime, threads in settings if round_index % 2 == 0 else reversed(settings):
                    output = subprocess.run(
                        [sys.executable, __file__, "--measure", "--model", args.model, "--imgsz", str(args.imgsz),
                         "--runtime", runtime, "--threads", str(threads), "--url", cameras.urls[0],
                         "--batch", str(args.cameras), "--seconds", str(args.seconds), "--cache-dir", cache_dir],
                        cwd=REPO, capture_output=True, text=True, timeout=600, check=True).stdout
                    fps = json.loads(output.strip().splitlines()[-1])["fps"]
                    results.setdefault(f"{runtime} threads={threads}", []).append(fps)
                    log(f"{runtime} threads={threads}: {fps:.1f} frames/s (load average {load_average()})")
    finally:
        decoding.stop()
        cameras.stop()
    log(f"load average after: {load_average()}")
    for name, figures in results.items():
        print(f"{name}: {' / '.join(f'{f:.1f}' for f in figures)} frames/s")


if __name__ == "__main__":
    main()
