"""Track fragmentation on real footage, the proxy for inflated counts where there is no ground truth: argusd
analyses bikes.mp4 and vtest.avi offline (the fall detector at 640, both classes labelled `person`) and this
prints, per clip and tracker, the objects per minute of footage, the mean track length (an object's
`duration_s` at its `end`) and the share of tracks shorter than 1 s.

    .venv/bin/python benchmarks/fragmentation.py [--source DIR] [--trackers bytetrack,botsort]

--source runs the daemon of another source tree with this venv (e.g. `git archive main | tar -x -C DIR`: the
numbers before this branch). Only config keys every version knows are set. Needs Redis at 127.0.0.1:6379
and the fetched assets (scripts/fetch-assets.sh). Not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import redis
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.assets import ASSETS, free_port

CLIPS = {"bikes.mp4": 5, "vtest.avi": 5}  # file -> analysis fps (camera fps): a CPU analyses 80 s of vtest in minutes


def analyse(source: Path, clips: list[Path], tracker: str, directory: Path) -> dict[str, list[dict]]:
    stream = f"argusd:bench:fragmentation:{directory.name}:{tracker}"
    config = {
        "cameras": [{"id": clip.stem, "url": f"file://{clip}", "fps": CLIPS[clip.name], "realtime": False}
                    for clip in clips],
        "detector": {"model": str(ASSETS / "fall-detector.pt"), "imgsz": 640,
                     "labels": {"Normal": "person", "Fall": "person"}},
        "tracker": {"kind": tracker, "confirm_frames": 3, "lost_timeout_s": 2.0},
        "redis": {"stream": stream},
        "http": {"listen": f"127.0.0.1:{free_port()}"},
    }
    path = directory / f"argusd-{tracker}.yaml"
    path.write_text(yaml.safe_dump(config))
    with (directory / f"argusd-{tracker}.log").open("wb") as log:
        subprocess.run([sys.executable, "-m", "daemon.service.cli", "run", "--config", str(path), "--exit-when-done"],
                       cwd=source, stdout=log, stderr=subprocess.STDOUT, check=True, timeout=3600)
    client = redis.Redis(decode_responses=True)
    events: dict[str, list[dict]] = {clip.stem: [] for clip in clips}
    for _, fields in client.xrange(stream):
        event = json.loads(fields["data"])
        events[event["camera"]].append(event)
    client.delete(stream)
    return events


def footage_seconds(clip: Path) -> float:
    import cv2

    capture = cv2.VideoCapture(str(clip))
    return capture.get(cv2.CAP_PROP_FRAME_COUNT) / capture.get(cv2.CAP_PROP_FPS)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path, default=REPO, help="the source tree whose daemon runs")
    parser.add_argument("--trackers", default="bytetrack,botsort")
    args = parser.parse_args()
    clips = [ASSETS / name for name in CLIPS]
    missing = [str(clip) for clip in clips if not clip.is_file()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run scripts/fetch-assets.sh")
    print(f"source: {args.source.resolve()}")
    print("| clip | tracker | objects | objects/min | mean track length (s) | tracks < 1 s |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as directory:
        for tracker in args.trackers.split(","):
            events = analyse(args.source, clips, tracker, Path(directory))
            for clip in clips:
                lengths = [e["duration_s"] for e in events[clip.stem] if e["type"] == "end"]
                minutes = footage_seconds(clip) / 60
                short = sum(length < 1.0 for length in lengths) / len(lengths) if lengths else 0.0
                mean = statistics.fmean(lengths) if lengths else 0.0
                print(f"| {clip.name} | {tracker} | {len(lengths)} | {len(lengths) / minutes:.1f} | {mean:.2f} | "
                      f"{short:.0%} |")


if __name__ == "__main__":
    main()
