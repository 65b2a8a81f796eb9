"""Caption impact: detection throughput with a captioner that takes 1 s per call vs without captions.

    .venv/bin/python benchmarks/caption_impact.py [--seconds 20] [--rounds 3] [--cameras 1] [--device auto]

Each round runs two real daemons side by side, one without captions and one with the `openai` captioner
against a loopback model server that answers after 1 s (every event type captioned, one worker, a queue
of 4, so requests pile up and are dropped), and measures both over the same window: on a shared machine
whose background load swings, running them at the same time (rather than one after the other) keeps that
load out of the comparison. Both analyse the looped real footage (.cache/assets/bikes.mp4) at 25 fps per
camera with zones and lines that produce many events; two daemons on the same cores make inference the
limit (use `--cameras N` on a GPU). Unique Redis streams (deleted afterwards), temporary spools. Not a
test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daemon.service.daemon import Daemon  # noqa: E402
from daemon.config.loading import parse_config  # noqa: E402
from daemon.testing.chat_server import ChatServer  # noqa: E402

BIKES = REPO / ".cache" / "assets" / "bikes.mp4"
DETECTOR = REPO / ".cache" / "assets" / "fall-detector.pt"
EVENT_TYPES = ["new", "update", "end", "zone_enter", "zone_exit", "loiter", "line_cross"]
STRIPS = [[[x / 4, 0.0], [(x + 1) / 4, 0.0], [(x + 1) / 4, 1.0], [x / 4, 1.0]] for x in range(4)]


def config(args: argparse.Namespace, stream: str, spool: str, base_url: str | None) -> dict:
    camera = {
        "url": BIKES.as_uri(), "fps": 25, "loop": True,
        "zones": [{"name": f"strip{i}", "polygon": polygon, "loiter_s": 1.0} for i, polygon in enumerate(STRIPS)],
        "lines": [{"name": f"line{i}", "points": [[i / 4, 0.0], [i / 4, 1.0]], "a_to_b": "east", "b_to_a": "west"}
                  for i in range(1, 4)],
    }
    if base_url is not None:
        camera["captions"] = {"captioner": "slow", "events": EVENT_TYPES}
    data = {
        "cameras": [{"id": f"bikes{i}", **camera} for i in range(args.cameras)],
        "detector": {"model": str(DETECTOR), "imgsz": args.imgsz, "device": args.device},
        "tracker": {"lost_timeout_s": 1.0, "update_interval_s": 0.5},
        "redis": {"stream": stream},
        "spool": {"directory": spool},
        "http": {"listen": "127.0.0.1:0"},
    }
    if base_url is not None:
        data["captions"] = {"captioners": {"slow": {
            "plugin": "openai", "base_url": base_url, "model": "slow-vlm", "workers": 1, "queue_size": 4,
            "retries": 0, "timeout_s": 10}}}
    return data


def analysed(daemon: Daemon) -> float:
    return sum(camera["frames_analysed"] for camera in daemon.camera_status())


def child(args: argparse.Namespace) -> None:
    """One daemon: wait for the shared measuring window, measure, print the figures as one JSON line."""
    stream = f"argusd:bench:{uuid.uuid4().hex}"
    with tempfile.TemporaryDirectory() as spool:
        daemon = Daemon(parse_config(config(args, stream, spool, args.base_url)))
        daemon.start()
        sample = daemon.metrics.registry.get_sample_value
        try:
            time.sleep(max(0.0, args.measure_at - time.time()))
            frames0, started = analysed(daemon), time.monotonic()
            time.sleep(args.seconds)
            frames, elapsed = analysed(daemon) - frames0, time.monotonic() - started
        finally:
            daemon.shutdown()
        redis.Redis().delete(stream)
    labels = {"captioner": "slow"}
    print(json.dumps({
        "fps": frames / elapsed,
        "requests": sample("argusd_caption_requests_total", labels) or 0,
        "completed": sample("argusd_captions_completed_total", labels) or 0,
        "dropped_queue_full": sample("argusd_captions_dropped_total", labels | {"reason": "queue_full"}) or 0,
        "dropped_shutdown": sample("argusd_captions_dropped_total", labels | {"reason": "shutdown"}) or 0,
        "failed": sample("argusd_captions_failed_total", labels) or 0,
    }))


def round_of(args: argparse.Namespace, base_url: str) -> tuple[dict, dict]:
    """Baseline and captioned daemons side by side, measured over the same window."""
    measure_at = time.time() + args.warmup
    common = [sys.executable, __file__, "--seconds", str(args.seconds), "--cameras", str(args.cameras),
              "--device", args.device, "--imgsz", str(args.imgsz), "--measure-at", str(measure_at)]
    processes = [subprocess.Popen([*common, "--child", *extra], stdout=subprocess.PIPE, text=True)
                 for extra in ([], ["--base-url", base_url])]
    outputs = [process.communicate(timeout=args.warmup + args.seconds + 120)[0] for process in processes]
    baseline, captioned = (json.loads(output.splitlines()[-1]) for output in outputs)
    return baseline, captioned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per round")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds from launch to measuring")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cameras", type=int, default=1, help="copies of the camera (25 fps each)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--measure-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.child:
        child(args)
        return
    ratios, dropped, requested = [], 0.0, 0.0
    with ChatServer(reply="A cyclist in dark clothes rides past.", delay_s=1.0) as server:
        for _ in range(args.rounds):
            baseline, captioned = round_of(args, server.base_url)
            ratios.append(captioned["fps"] / baseline["fps"])
            dropped += captioned["dropped_queue_full"]
            requested += captioned["requests"]
            print(f"without captions {baseline['fps']:.2f} frames/s, with a 1 s captioner {captioned['fps']:.2f} "
                  f"frames/s ({(ratios[-1] - 1) * 100:+.1f}%); caption requests {captioned['requests']:.0f}, "
                  f"completed {captioned['completed']:.0f}, dropped queue_full {captioned['dropped_queue_full']:.0f}"
                  f", shutdown {captioned['dropped_shutdown']:.0f}, failed {captioned['failed']:.0f}", flush=True)
    print(f"median change in analysed frames/s with captions: {(statistics.median(ratios) - 1) * 100:+.1f}% "
          f"(rounds: {', '.join(f'{(r - 1) * 100:+.1f}%' for r in ratios)}); caption requests dropped "
          f"(queue_full): {dropped:.0f} of {requested:.0f}")


if __name__ == "__main__":
    main()
