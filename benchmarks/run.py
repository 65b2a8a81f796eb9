"""argusd against the bare model (the limit) and against ultralytics' own streaming (the peer), in one run.

    .venv/bin/python benchmarks/run.py [--model .cache/assets/fall-detector.pt] [--imgsz 320] [--cameras 4]
        [--seconds 25] [--runtimes torch,onnxruntime,openvino] [--device cpu|cuda:0] [--half] [--batch N]

On the same machine, the same weights and the same streams:
1. the project's test RTSP server serves N cameras of real footage (bikes.mp4 upscaled to 1280x720, 30 fps,
   H.264) on 127.0.0.1. The footage is encoded once, before the run, into FOOTAGE_SECONDS of H.264 cached
   under .cache/bench, and the server sends it as it is: a real camera encodes on its own chip, so the server
   must not spend the cores being measured (live x264 for 4 cameras took 78% of one of this machine's two
   cores). `--server-encodes` restores the live encoder (looped footage) for comparison;
2. the limit: the bare model's throughput (ultralytics' predict on decoded frames held in memory) for each
   runtime (torch, ONNX Runtime, OpenVINO; exported once for the limit only) at batch 1 and N, while the N
   streams are received and decoded by a minimal GStreamer client (decoding is work no client can skip),
   capped at the frames the cameras send; the best of them is the limit;
3. argusd (`python -m daemon.service.cli run`) given the same `.pt` and nothing else (`detector.runtime:
   auto` picks and converts the runtime itself, cached in its state directory), on the N streams at camera
   fps 30, events to the local Redis: analysed frames/s, capture-to-analysed latency, capture-to-Redis
   latency of its events, CPU %, peak RSS, frames dropped by reason;
4. the peer: ultralytics `YOLO(pt).predict(source=<streams file>, stream=True)` on the same streams for the
   same time: frames/s and the age of each frame when its result arrives.
Then the cost of one 720p30 camera through argusd's own source (decode, rate-limit, hand over).

Writes benchmarks/out/report.json, report.md and report.png. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
WORKLOADS = str(REPO / "benchmarks" / "workloads.py")
MODELS = REPO / ".cache" / "bench"
FOOTAGE = REPO / ".cache" / "assets" / "bikes.mp4"
DETECTOR = REPO / ".cache" / "assets" / "fall-detector.pt"
RUNTIMES = ("torch", "onnxruntime", "openvino")
FOOTAGE_SECONDS = 180  # longer than any phase of the run; each phase connects afresh and starts it again
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
sys.path.insert(0, str(REPO))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- models ------------------------------------------------------------------------------------------

def limit_model(pt: Path, runtime: str, imgsz: int) -> Path:
    """The weights in the runtime's format, exported once beside a copy under .cache/bench (the limit
    only: argusd converts the .pt itself)."""
    if runtime == "torch":
        return pt
    from plugins.detectors.ultralytics_detector import export_model

    fmt = {"onnxruntime": "onnx", "openvino": "openvino"}[runtime]
    copy = MODELS / f"{pt.stem}-{imgsz}.pt"
    target = copy.with_suffix(".onnx") if fmt == "onnx" else MODELS / f"{copy.stem}_openvino_model"
    if not target.exists():
        MODELS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pt, copy)
        export_model(str(copy), fmt, imgsz)
    return target


# -- processes ---------------------------------------------------------------------------------------

class CpuClock:
    """User+system CPU seconds of one process (all its threads), from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0


def encoded_footage(width: int, height: int, fps: int, bitrate: int) -> Path:
    """FOOTAGE as H.264 in MP4 at the cameras' size, rate and bitrate, FOOTAGE_SECONDS long (the clip repeated),
    encoded once (about a minute here) and cached."""
    target = MODELS / f"{FOOTAGE.stem}-{width}x{height}-{fps}fps-{bitrate}k-{FOOTAGE_SECONDS}s.mp4"
    if target.is_file():
        return target
    from daemon.sources.gst import Gst

    clip_seconds = 10  # bikes.mp4
    repeats = -(-FOOTAGE_SECONDS // clip_seconds)
    log(f"encoding {FOOTAGE.name} once into {FOOTAGE_SECONDS} s of {width}x{height} {fps} fps H.264 ({target.name})")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    clips = " ".join(f'filesrc location="{FOOTAGE}" ! decodebin ! joined. ' for _ in range(repeats))
    pipeline = Gst.parse_launch(
        "concat name=joined ! videoconvert ! videoscale add-borders=false ! videorate "
        f"! video/x-raw,format=I420,width={width},height={height},framerate={fps}/1,pixel-aspect-ratio=1/1 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} bitrate={bitrate} "
        f'! video/x-h264,profile=baseline ! h264parse ! mp4mux ! filesink location="{partial}" {clips}')
    pipeline.set_state(Gst.State.PLAYING)
    message = pipeline.get_bus().timed_pop_filtered(Gst.CLOCK_TIME_NONE, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if message.type == Gst.MessageType.ERROR:
        raise SystemExit(f"encoding the footage failed: {message.parse_error()[0].message}")
    partial.rename(target)
    return target


class RtspCameras:
    """N H.264 cameras of real footage from the project's test RTSP server."""

    def __init__(self, count: int, width: int, height: int, fps: int, bitrate: int, server_encodes: bool = False) -> None:
        self.port = free_port()
        self.paths = [f"/cam{i + 1}" for i in range(count)]
        source = ["--source", str(FOOTAGE)] if server_encodes else [
            "--source", str(encoded_footage(width, height, fps, bitrate)), "--passthrough"]
        command = [PYTHON, "-m", "daemon.testing.rtsp_server", "--port", str(self.port), *source,
                   "--width", str(width), "--height", str(height), "--fps", str(fps), "--bitrate", str(bitrate)]
        for path in self.paths:
            command += ["--path", path]
        self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
        ready = 0
        while ready < count:
            line = self.process.stdout.readline()
            if not line:
                raise SystemExit("the test RTSP server did not start")
            ready += line.startswith("ready ")
        self.cpu = CpuClock(self.process.pid)

    @property
    def urls(self) -> list[str]:
        return [f"rtsp://127.0.0.1:{self.port}{path}" for path in self.paths]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class DecodingClient:
    """The least any client must do with the streams: receive and decode every frame (no conversion)."""

    def __init__(self, urls: list[str]) -> None:
        branches = []
        for url in urls:
            branches += ["rtspsrc", f"location={url}", "protocols=tcp", "latency=200", "!", "decodebin", "!",
                         "fakesink", "sync=false"]
        self.process = subprocess.Popen([shutil.which("gst-launch-1.0") or "gst-launch-1.0", "-q", *branches],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3)  # connect, first key frame

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def run_workload(name: str, args: list[str], timeout: float) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = handle.name
    try:
        subprocess.run([PYTHON, WORKLOADS, name, *args, "--out", out], cwd=REPO, timeout=timeout, check=True,
                       stdout=subprocess.DEVNULL)
        return json.loads(Path(out).read_text())
    finally:
        Path(out).unlink(missing_ok=True)


# -- metrics -----------------------------------------------------------------------------------------

def scrape(port: int) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def delta(before: dict, after: dict, name: str, **labels: str) -> dict[tuple, float]:
    """Per-label-set increase of a counter (or histogram series) between two scrapes."""
    found = {}
    for (sample, label_set), value in after.items():
        if sample != name or any(dict(label_set).get(k) != v for k, v in labels.items()):
            continue
        found[label_set] = value - before.get((sample, label_set), 0.0)
    return found


def histogram_quantiles(before: dict, after: dict, name: str) -> dict[str, float | None]:
    """Quantiles of a histogram's observations between two scrapes, interpolated within buckets as
    Prometheus' histogram_quantile() does; the bucket's upper bound is also given (the honest bound)."""
    buckets = sorted(((float(dict(labels)["le"]), count)
                      for labels, count in delta(before, after, f"{name}_bucket").items()), key=lambda b: b[0])
    total = buckets[-1][1] if buckets else 0
    result: dict[str, float | None] = {"n": total}
    for q in (50, 95, 99):
        if not total:
            result[f"p{q}"] = result[f"p{q}_le"] = None
            continue
        rank = q / 100 * total
        lower_bound, lower_count = 0.0, 0.0
        for bound, count in buckets:
            if count >= rank:
                if bound == float("inf"):
                    result[f"p{q}"] = result[f"p{q}_le"] = lower_bound
                else:
                    share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1.0
                    result[f"p{q}"] = lower_bound + (bound - lower_bound) * share
                    result[f"p{q}_le"] = bound
                break
            lower_bound, lower_count = bound, count
    total_sum = sum(delta(before, after, f"{name}_sum").values())
    result["mean"] = total_sum / total if total else None
    return result


def redis_event_latency(url: str, stream: str, since: float, until: float) -> dict:
    """Exact capture-to-Redis latency of each event decided on a frame: the stream entry id is Redis' own
    clock (ms) when it appended the event; captured_at is when that frame left GStreamer. `end` events are
    left out: one decided by the lost-track timer carries the time of that decision, not of a frame."""
    import redis

    from workloads import percentiles

    client = redis.Redis.from_url(url)
    latencies, types = [], {}
    for entry_id, fields in client.xrange(stream):
        data = json.loads(fields[b"data"])
        types[data["type"]] = types.get(data["type"], 0) + 1
        appended = int(entry_id.split(b"-")[0]) / 1000
        if data["type"] != "end" and since <= data["captured_at"] <= until:
            latencies.append(appended - data["captured_at"])
    client.delete(stream)
    return percentiles(latencies) | {"n": len(latencies), "events_by_type": types}


# -- argusd ------------------------------------------------------------------------------------------

def argusd_config(urls: list[str], model: Path, options: argparse.Namespace, imgsz: int, http_port: int,
                  stream: str, spool: Path) -> str:
    import yaml

    config = {
        "cameras": [{"id": f"cam{i + 1}", "url": url, "fps": options.camera_fps} for i, url in enumerate(urls)],
        "detector": {"model": str(model), "device": options.device, "imgsz": imgsz, "conf": options.conf,
                     **({"half": True} if options.half else {}),
                     **({"runtime": options.argusd_runtime} if options.argusd_runtime else {}),
                     **({"threads": options.threads} if options.threads else {})},
        "batch": {"max_batch": options.batch},
        "redis": {"url": options.redis_url, "stream": stream},
        "spool": {"directory": str(spool)},
        "http": {"listen": f"127.0.0.1:{http_port}"},
        "log": {"level": "warning"},
    }
    return yaml.safe_dump(config, sort_keys=False)


def run_argusd(urls: list[str], model: Path, imgsz: int, options: argparse.Namespace, workdir: Path) -> dict:
    http_port = free_port()
    stream = f"argusd:bench:{uuid.uuid4().hex[:12]}"
    config = workdir / f"argusd-{model.stem}-{imgsz}.yaml"
    config.write_text(argusd_config(urls, model, options, imgsz, http_port, stream, workdir / "spool"))
    log_file = (workdir / f"{config.stem}.log").open("w")
    # the state directory (argusd's converted-model cache) outlives the run, so a second run starts warm
    env = os.environ | {"STATE_DIRECTORY": str(MODELS / "argusd-state")}
    process = subprocess.Popen([PYTHON, "-m", "daemon.service.cli", "run", "--config", str(config)], cwd=REPO,
                               stdout=log_file, stderr=subprocess.STDOUT, env=env)
    cpu = CpuClock(process.pid)
    try:
        wait_until_all_analysed(http_port, len(urls), process, timeout=300)  # a cold start converts the model
        time.sleep(options.warmup)
        before, cpu_before, started = scrape(http_port), cpu.seconds(), time.time()
        time.sleep(options.seconds)
        after, cpu_after, ended = scrape(http_port), cpu.seconds(), time.time()
        peak_rss = cpu.peak_rss_mb()
        runtime = next((dict(labels).get("runtime") for (name, labels) in after if name == "argusd_model_info"), None)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log_file.close()
    elapsed = ended - started
    analysed = {dict(k)["camera"]: v / elapsed for k, v in delta(before, after, "argusd_frames_analysed_total").items()}
    dropped: dict[str, float] = {}
    for labels, value in delta(before, after, "argusd_frames_dropped_total").items():
        reason = dict(labels)["reason"]
        dropped[reason] = dropped.get(reason, 0) + value
    batches = histogram_quantiles(before, after, "argusd_batch_size")
    return {
        "fps": sum(analysed.values()),
        "per_camera_fps": dict(sorted(analysed.items())),
        "seconds": elapsed,
        "frames_decoded": sum(delta(before, after, "argusd_frames_decoded_total").values()),
        "frames_received": sum(delta(before, after, "argusd_frames_received_total").values()),
        "frames_dropped": dropped,
        "frame_latency_s": histogram_quantiles(before, after, "argusd_capture_to_analysed_seconds"),
        "event_latency_histogram_s": histogram_quantiles(before, after, "argusd_capture_to_publish_seconds"),
        "event_latency_redis_s": redis_event_latency(options.redis_url, stream, started, ended),
        "mean_batch": batches["mean"],
        "inference_s_per_batch": histogram_quantiles(before, after, "argusd_inference_seconds")["mean"],
        "cpu_percent": 100 * (cpu_after - cpu_before) / elapsed,
        "peak_rss_mb": peak_rss,
        "runtime": runtime,
        "start_log": [line for line in (workdir / f"{config.stem}.log").read_text().splitlines()
                      if "detector" in line or "convert" in line][:6],
    }


def wait_until_all_analysed(port: int, cameras: int, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"argusd exited with {process.returncode}; see its log in the work directory")
        try:
            samples = scrape(port)
        except OSError:
            time.sleep(0.5)
            continue
        analysed = [v for (name, _), v in samples.items() if name == "argusd_frames_analysed_total"]
        if len(analysed) == cameras and all(v > 0 for v in analysed):
            return
        time.sleep(0.5)
    raise SystemExit("argusd did not analyse a frame of every camera in time")


# -- the run -----------------------------------------------------------------------------------------

def measure_limits(cameras: RtspCameras, options: argparse.Namespace) -> dict[str, dict]:
    """Each runtime's bare-model throughput while the streams decode in another process."""
    pt = Path(options.model)
    common = ["--imgsz", str(options.imgsz), "--device", options.device, "--conf", str(options.conf),
              *(["--half"] if options.half else [])]
    models = {runtime: limit_model(pt, runtime, options.imgsz) for runtime in options.runtimes}
    limits = {}
    client = DecodingClient(cameras.urls)
    try:
        for runtime, model in models.items():
            log(f"limit: {runtime} ({model.name}) at batch 1 and {options.batch} while {len(cameras.urls)} "
                "streams decode")
            limits[runtime] = run_workload("limit", [*common, "--model", str(model), "--url", cameras.urls[0],
                                                     "--batches", f"1,{options.batch}",
                                                     "--seconds", str(options.limit_seconds)], timeout=300)
    finally:
        client.stop()
    return limits


def run_peer(cameras: RtspCameras, options: argparse.Namespace, workdir: Path) -> dict:
    log(f"peer: ultralytics predict(stream=True) with {Path(options.model).name} for {options.seconds:g} s")
    streams = workdir / "cameras.streams"
    streams.write_text("\n".join(cameras.urls) + "\n")
    return run_workload("peer", ["--model", options.model, "--imgsz", str(options.imgsz), "--device", options.device,
                                 "--conf", str(options.conf), *(["--half"] if options.half else []),
                                 "--streams", str(streams), "--seconds", str(options.seconds),
                                 "--warmup", str(options.warmup)], timeout=options.seconds + 180)


def measure_camera_cost(cameras: RtspCameras, seconds: float) -> list[dict]:
    costs = []
    for fps in (5, 30):
        log(f"one camera through argusd's source at fps {fps}")
        costs.append(run_workload("decode", ["--url", cameras.urls[0], "--fps", str(fps), "--seconds", str(seconds)],
                                  timeout=seconds + 60))
    return costs


# -- report ------------------------------------------------------------------------------------------

def _ms(value: float | None) -> str:
    return "–" if value is None else f"{1000 * value:.0f}"


def _triple(q: dict) -> str:
    return f"{_ms(q.get('p50'))} / {_ms(q.get('p95'))} / {_ms(q.get('p99'))}"


def markdown(report: dict) -> str:
    supply = report["cameras"] * report["stream_fps"]
    limits = report["limits"]
    best_runtime = max(limits, key=lambda r: limits[r]["fps"])
    limit = min(limits[best_runtime]["fps"], supply)
    a, peer = report["argusd"], report.get("peer", {})
    lines = [
        f"{report['cameras']} cameras of {report['stream']} (at most {supply} frames/s to analyse); "
        f"{Path(report['model']).name} at imgsz {report['imgsz']}; {report['seconds']:g} s measured after "
        f"{report['warmup']:g} s warm-up; batch {report['batch']}; device {report['device']}"
        f"{' FP16' if report['half'] else ''}; {report['machine']}; load average before "
        f"{report['load_before'][0]:.1f}.",
        "",
        "| what | analysed frames/s |",
        "|---|---|",
    ]
    for runtime, result in limits.items():
        by_batch = " / ".join(f"{result['fps_by_batch'][b]:.1f}" for b in sorted(result["fps_by_batch"], key=int))
        lines.append(f"| limit: bare model, {runtime}, batch {' / '.join(sorted(result['fps_by_batch'], key=int))}, "
                     f"while the streams decode | {by_batch} |")
    lines += [
        f"| **limit** (best of the above, capped at the {supply} frames/s sent) | **{limit:.1f}** |",
        f"| **argusd** given the `.pt` (runtime in use: {a.get('runtime') or '?'}) | **{a['fps']:.1f}** |",
        f"| ultralytics `predict(stream=True)` given the `.pt` | {peer['fps']:.1f} |" if peer else "",
        "",
        "| ratio | value |",
        "|---|---|",
        f"| argusd / limit | **{a['fps'] / limit:.2f}** |",
        f"| argusd / ultralytics | **{a['fps'] / peer['fps']:.2f}** |" if peer else "",
        "",
        "| latency, ms | p50 | p95 | p99 |",
        "|---|---|---|---|",
        f"| argusd capture → analysed | {_triple(a['frame_latency_s']).replace(' / ', ' | ')} |",
        f"| argusd capture → Redis ack (its {a['event_latency_redis_s']['n']} events) | "
        f"{_triple(a['event_latency_redis_s']).replace(' / ', ' | ')} |",
        f"| ultralytics frame age at its result | {_triple(peer['frame_age_s']).replace(' / ', ' | ')} |" if peer else "",
        "",
        f"argusd: CPU {a['cpu_percent']:.0f}%, peak RSS {a['peak_rss_mb']:.0f} MB, mean batch "
        f"{a['mean_batch'] or 0:.1f}, superseded {a['frames_dropped'].get('superseded', 0) / a['seconds']:.1f} f/s"
        + (f"; ultralytics: CPU {peer['cpu_percent']:.0f}%, peak RSS {peer['peak_rss_mb']:.0f} MB" if peer else "")
        + f"; the camera server used {report['camera_server_cpu_percent']:.0f}% of one core.",
    ]
    for cost in report.get("camera_cost", []):
        lines.append(f"\nOne {report['width']}x{report['height']} {report['stream_fps']} fps camera through argusd's "
                     f"source at analysis fps {cost['fps_setting']:g}: {cost['cpu_percent_of_one_core']:.1f}% of one "
                     f"core ({cost['frames_per_s']:.1f} frames/s handed over).")
    return "\n".join(line for line in lines if line is not None) + "\n"


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [f"limit\n{r}" for r in report["limits"]] + ["argusd\n(.pt)", "ultralytics\nstream (.pt)"]
    values = [r["fps"] for r in report["limits"].values()] + [report["argusd"]["fps"],
                                                               report.get("peer", {}).get("fps", 0)]
    figure, axis = plt.subplots(figsize=(8, 4.5))
    axis.bar(names, values, color=["#999"] * len(report["limits"]) + ["#2a7", "#c63"])
    axis.axhline(report["cameras"] * report["stream_fps"], color="grey", linestyle="--", linewidth=1)
    axis.set_ylabel("analysed frames/s (all cameras)")
    axis.set_title(f"{report['cameras']} x 720p30 cameras, {Path(report['model']).name} at {report['imgsz']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} x {cpu}"


# -- main --------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DETECTOR), help="the .pt every contender is given")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="runtimes measured for the limit")
    parser.add_argument("--seconds", type=float, default=25.0, help="measured time per run")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds after the first result before measuring")
    parser.add_argument("--limit-seconds", type=float, default=8.0, help="per runtime and batch size")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--stream-fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=2000, help="kbit/s per camera")
    parser.add_argument("--server-encodes", action="store_true",
                        help="the camera server encodes live (on the measured cores) instead of sending pre-encoded H.264")
    parser.add_argument("--camera-fps", type=float, default=30.0, help="argusd's analysis fps per camera")
    parser.add_argument("--batch", type=int, default=None, help="argusd max_batch and the limit's batch (default N)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--half", action="store_true", help="FP16 (CUDA)")
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--argusd-runtime", default=None, help="force argusd's detector.runtime (default auto)")
    parser.add_argument("--threads", type=int, default=None, help="argusd's detector.threads (default: its own)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--no-camera-cost", action="store_true")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "out"))
    options = parser.parse_args(argv)
    options.batch = options.batch or options.cameras
    options.runtimes = [r for r in options.runtimes.split(",") if r]
    unknown = sorted(set(options.runtimes) - set(RUNTIMES))
    if unknown:
        parser.error(f"--runtimes: {', '.join(unknown)} (choose from {', '.join(RUNTIMES)})")
    if not Path(options.model).is_file() or not options.model.endswith(".pt"):
        parser.error(f"--model: {options.model} is not a .pt file (run scripts/fetch-assets.sh for the default)")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "machine": machine(), "cameras": options.cameras, "batch": options.batch, "device": options.device,
        "half": options.half, "threads": options.threads, "seconds": options.seconds, "warmup": options.warmup,
        "stream_fps": options.stream_fps, "width": options.width, "height": options.height,
        "model": options.model, "imgsz": options.imgsz,
        "stream": f"H.264 {options.width}x{options.height} {options.stream_fps} fps {options.bitrate} kbit/s "
                  f"({FOOTAGE.name}, {'encoded live by the server' if options.server_encodes else 'pre-encoded'})",
        "command": " ".join([Path(PYTHON).name, "benchmarks/run.py", *(argv or sys.argv[1:])]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "load_before": load_average(),
    }
    log(f"load average {load_average()}; starting {options.cameras} cameras")
    cameras = RtspCameras(options.cameras, options.width, options.height, options.stream_fps, options.bitrate,
                          options.server_encodes)
    workdir = Path(tempfile.mkdtemp(prefix="argusd-bench-"))
    try:
        report["limits"] = measure_limits(cameras, options)
        log(f"argusd given {Path(options.model).name} for {options.seconds:g} s")
        server_before, started = cameras.cpu.seconds(), time.time()
        report["argusd"] = run_argusd(cameras.urls, Path(options.model), options.imgsz, options, workdir)
        report["camera_server_cpu_percent"] = 100 * (cameras.cpu.seconds() - server_before) / (time.time() - started)
        if not options.no_peer:
            report["peer"] = run_peer(cameras, options, workdir)
        if not options.no_camera_cost:
            report["camera_cost"] = measure_camera_cost(cameras, 10.0)
    finally:
        cameras.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    report["load_after"] = load_average()
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    chart(report, out / "report.png")
    print(markdown(report))
    log(f"wrote {out}/report.json, report.md, report.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
