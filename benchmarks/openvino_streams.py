"""OpenVINO on a CPU while N cameras decode: one LATENCY request per batch (the old way) against the batch's
images as single-image requests on parallel streams (plugins/detectors/openvino_streams.py, argusd's way).

    .venv/bin/python benchmarks/openvino_streams.py [--model DIR_openvino_model] [--cameras 4] [--seconds 6]
        [--rounds 2] [--threads 2]

The test RTSP server sends N cameras of pre-encoded 1280x720 30 fps footage (as benchmarks/run.py does) and a
minimal GStreamer client decodes them meanwhile. Inputs are 320x192 (a 16:9 frame letterboxed for imgsz 320).
Rounds alternate the order, so a drift in the machine's load does not favour one setting. Prints frames/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.run import MODELS, DecodingClient, RtspCameras, load_average, log  # noqa: E402
from plugins.detectors.openvino_streams import compile_streams  # noqa: E402


def frames_per_second(call: Callable[[np.ndarray], object], batch: np.ndarray, seconds: float) -> float:
    call(batch)  # warm-up
    analysed, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        call(batch)
        analysed += len(batch)
    return analysed / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(MODELS / "fall-detector-320_openvino_model"),
                        help="an OpenVINO model directory (benchmarks/run.py exports this one)")
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(next(Path(args.model).glob("*.xml"))))
    latency = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": args.threads})
    streams = compile_streams(core, model, args.threads)
    rng = np.random.default_rng(0)
    one = rng.random((1, 3, 192, 320), dtype=np.float32)
    batch = rng.random((args.cameras, 3, 192, 320), dtype=np.float32)
    settings: dict[str, Callable[[], float]] = {
        f"LATENCY, batch {args.cameras} in one request": lambda: frames_per_second(latency, batch, args.seconds),
        "LATENCY, one image per request": lambda: frames_per_second(
            lambda b: [latency(b[i: i + 1]) for i in range(len(b))], batch, args.seconds),
        f"{args.threads} streams, one image per request": lambda: frames_per_second(streams, batch, args.seconds),
        "a single image (1 camera), LATENCY": lambda: frames_per_second(streams, one, args.seconds),
    }
    log(f"load average {load_average()}; {args.cameras} cameras decoding")
    cameras = RtspCameras(args.cameras, 1280, 720, 30, 2000)
    client = DecodingClient(cameras.urls)
    results: dict[str, list[float]] = {name: [] for name in settings}
    try:
        for round_index in range(args.rounds):
            names = list(settings) if round_index % 2 == 0 else list(reversed(settings))
            for name in names:
                results[name].append(round(settings[name](), 1))
                log(f"{name}: {results[name][-1]} frames/s")
    finally:
        client.stop()
        cameras.stop()
    log(f"load average {load_average()}")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
