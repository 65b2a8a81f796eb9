"""The measured workloads of benchmarks/run.py, each run in its own process so that none shares an
interpreter, threads or memory with another:

    python benchmarks/workloads.py limit  --url URL --model M --imgsz S --batches 1,4 --seconds T --out F
    python benchmarks/workloads.py peer   --streams FILE --model M --imgsz S --seconds T --warmup W --out F
    python benchmarks/workloads.py decode --url URL --fps F --seconds T --out F

Each writes one JSON object to ``--out``. CPU figures come from the process's own rusage over the measured
window only (warm-up excluded), so they include every thread the workload started.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
import weakref
from pathlib import Path

import numpy as np

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_VERBOSE", "false")
# The peer reads RTSP through OpenCV's FFmpeg backend; TCP, as argusd uses, so both see the same transport.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(values: list[float], points: tuple[int, ...] = (50, 95, 99)) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {f"p{p}": None for p in points}
    return {f"p{p}": ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] for p in points}


def pulled_frames(url: str, fps: float, on_frame, width: int | None = None, height: int | None = None):
    """A camera through argusd's own source, its frames pulled as argusd's inference thread pulls them, each
    handed to ``on_frame``; returns (source, stop) where stop() ends the pulling and the camera."""
    from daemon.config.models import CameraConfig
    from daemon.sources.camera import CameraSource

    source = CameraSource(CameraConfig(id="sample", url=url, fps=fps, width=width, height=height))
    stopped = threading.Event()

    def pull() -> None:
        while not stopped.is_set():
            frame = source.pull_frame(0.05)
            if frame is not None:
                on_frame(frame)
            else:
                time.sleep(0.005)  # between pipelines a pull answers at once

    puller = threading.Thread(target=pull, daemon=True)
    source.start()
    puller.start()

    def stop() -> None:
        stopped.set()
        puller.join(2)
        source.stop()

    return source, stop


def grab_frames(url: str, count: int, timeout: float = 30.0) -> list:
    """``count`` decoded frames of a camera, through argusd's own source (same decode, same colour
    conversion, same size as the daemon analyses)."""
    frames: list = []
    done = threading.Event()

    def keep(frame) -> None:
        if len(frames) < count:
            frames.append(frame.image.copy())
        if len(frames) >= count:
            done.set()

    _, stop = pulled_frames(url, 30, keep)
    try:
        if not done.wait(timeout):
            raise SystemExit(f"only {len(frames)} frame(s) from {url} within {timeout:.0f} s")
    finally:
        stop()
    return frames[:count]


def predict_options(args: argparse.Namespace) -> dict:
    """The same predict() arguments argusd's detector plugin passes."""
    return {"imgsz": args.imgsz, "conf": args.conf, "iou": 0.7, "device": args.device, "verbose": False,
            "half": args.half}


def run_limit(args: argparse.Namespace) -> dict:
    """The bare model on decoded frames held in memory: no decoding, no daemon, nothing else."""
    from ultralytics import YOLO

    model = YOLO(args.model, task="detect")
    if args.model.endswith(".pt"):  # ultralytics pinned torch to one thread (OMP_NUM_THREADS=1): the limit uses all
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    options = predict_options(args)
    # Loaded and warmed up before any GStreamer pipeline runs, as in argusd.
    model.predict([np.zeros((args.imgsz, args.imgsz, 3), np.uint8)], **options)
    frames = grab_frames(args.url, max(32, max(int(b) for b in args.batches.split(","))))
    by_batch: dict[str, float] = {}
    cpu_by_batch: dict[str, float] = {}
    for batch in sorted({int(b) for b in args.batches.split(",")}):
        for _ in range(3):  # warm-up: graph compilation, allocator, caches
            model.predict(frames[:batch], **options)
        analysed, index = 0, 0
        started_cpu, started = cpu_seconds(), time.perf_counter()
        while time.perf_counter() - started < args.seconds:
            chunk = [frames[(index + k) % len(frames)] for k in range(batch)]
            model.predict(chunk, **options)
            analysed += batch
            index += batch
        elapsed = time.perf_counter() - started
        by_batch[str(batch)] = analysed / elapsed
        cpu_by_batch[str(batch)] = 100 * (cpu_seconds() - started_cpu) / elapsed
    best = max(by_batch, key=by_batch.get)
    return {"fps_by_batch": by_batch, "fps": by_batch[best], "best_batch": int(best),
            "cpu_percent_by_batch": cpu_by_batch, "frame_shape": list(frames[0].shape)}


class _Stamps:
    """When each frame left the peer's capture threads: keyed by the array's id, verified by a weak
    reference (so a recycled id is never mistaken for the frame, and no frame is kept alive here)."""

    def __init__(self) -> None:
        self._stamps: dict[int, tuple[float, weakref.ref]] = {}
        self._lock = threading.Lock()

    def mark(self, image) -> None:
        with self._lock:
            self._stamps[id(image)] = (time.time(), weakref.ref(image))
            if len(self._stamps) > 4096:
                self._stamps = {k: v for k, v in self._stamps.items() if v[1]() is not None}

    def age(self, image, now: float) -> float | None:
        with self._lock:
            entry = self._stamps.pop(id(image), None)
        if entry is None or entry[1]() is not image:
            return None
        return now - entry[0]


def _timed_capture(stamps: _Stamps):
    """cv2.VideoCapture whose retrieve() notes when each decoded frame was handed over. Only the
    benchmark harness patches this into ultralytics' LoadStreams; the peer's code path is unchanged."""
    import cv2

    class TimedCapture(cv2.VideoCapture):
        def retrieve(self, *args, **kwargs):
            ok, image = super().retrieve(*args, **kwargs)
            if ok and image is not None:
                stamps.mark(image)
            return ok, image

        def read(self, *args, **kwargs):
            ok = self.grab()
            return self.retrieve() if ok else (False, None)

    return TimedCapture


def run_peer(args: argparse.Namespace) -> dict:
    """ultralytics' own streaming: ``model.predict(source=<streams file>, stream=True)``, unmodified except
    that the harness timestamps each frame when OpenCV hands it to LoadStreams (frame age)."""
    import ultralytics.data.loaders as loaders
    from ultralytics import YOLO

    stamps = _Stamps()
    loaders.cv2.VideoCapture = _timed_capture(stamps)  # LoadStreams looks it up on the cv2 module
    model = YOLO(args.model, task="detect")
    options = predict_options(args)
    first_result = None
    window_start = None
    per_stream: dict[str, int] = {}
    ages: list[float] = []
    unmatched = 0
    cpu_start = 0.0
    for result in model.predict(source=args.streams, stream=True, **options):
        now = time.time()
        if window_start is None:  # the window opens ``warmup`` s after the first result, as for argusd
            first_result = first_result or now
            if now - first_result < args.warmup:
                continue
            window_start, cpu_start = now, cpu_seconds()
        if now - window_start >= args.seconds:
            break
        age = stamps.age(result.orig_img, now)
        if age is None:
            unmatched += 1
        else:
            ages.append(age)
        per_stream[result.path] = per_stream.get(result.path, 0) + 1
    elapsed = time.time() - window_start if window_start else 0.0
    analysed = sum(per_stream.values())
    return {
        "fps": analysed / elapsed if elapsed else 0.0,
        "frames": analysed,
        "seconds": elapsed,
        "per_camera_fps": {k: v / elapsed for k, v in sorted(per_stream.items())} if elapsed else {},
        "frame_age_s": percentiles(ages) | {"mean": sum(ages) / len(ages) if ages else None, "n": len(ages)},
        "unmatched_frames": unmatched,
        "cpu_percent": 100 * (cpu_seconds() - cpu_start) / elapsed if elapsed else None,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_decode(args: argparse.Namespace) -> dict:
    """One camera through argusd's own CameraSource, every frame pulled and discarded: what receiving,
    decoding, rate limiting, scaling and handing over one stream costs, as a share of one core."""
    received = [0]

    def discard(frame) -> None:
        received[0] += 1

    _, stop = pulled_frames(args.url, args.fps, discard, args.width, args.height)
    time.sleep(args.warmup)
    cpu_start, frames_start, started = cpu_seconds(), received[0], time.perf_counter()
    time.sleep(args.seconds)
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_start
    frames = received[0] - frames_start
    stop()
    return {"fps_setting": args.fps, "frames_per_s": frames / elapsed, "cpu_percent_of_one_core": 100 * cpu / elapsed,
            "width": args.width, "height": args.height}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="workload", required=True)
    for name in ("limit", "peer"):
        p = sub.add_parser(name)
        p.add_argument("--model", required=True)
        p.add_argument("--imgsz", type=int, required=True)
        p.add_argument("--device", default="cpu")
        p.add_argument("--half", action="store_true")
        p.add_argument("--conf", type=float, default=0.25)
    limit = sub.choices["limit"]
    limit.add_argument("--url", required=True)
    limit.add_argument("--batches", default="1", help="comma-separated batch sizes; each is timed")
    peer = sub.choices["peer"]
    peer.add_argument("--streams", required=True)
    peer.add_argument("--warmup", type=float, default=5.0)
    decode = sub.add_parser("decode")
    decode.add_argument("--url", required=True)
    decode.add_argument("--fps", type=float, default=30.0)
    decode.add_argument("--width", type=int, default=None)
    decode.add_argument("--height", type=int, default=None)
    decode.add_argument("--warmup", type=float, default=3.0)
    for p in sub.choices.values():
        p.add_argument("--seconds", type=float, default=10.0)
        p.add_argument("--out", required=True)
    args = parser.parse_args()
    result = {"limit": run_limit, "peer": run_peer, "decode": run_decode}[args.workload](args)
    Path(args.out).write_text(json.dumps(result, indent=2))
    # The peer's capture threads (OpenCV/FFmpeg) are still reading when its generator is abandoned, and
    # tearing them down in interpreter finalisation can crash; the figures are written, so leave now.
    os._exit(0)


if __name__ == "__main__":
    main()
