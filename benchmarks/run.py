"""argusd against the bare model (the limit) and against ultralytics' own streaming (the peer), in one run.

    .venv/bin/python benchmarks/run.py [--quick] [--cameras 4] [--seconds 25] [--configs onnx:320,pt:640]
        [--device cpu|cuda:0] [--half] [--batch N] [--events-model .cache/assets/fall-detector.pt]

For every configuration (model format and input size), on the same machine and the same streams:
1. the project's test RTSP server serves N cameras of real footage (bikes.mp4 upscaled to 1280x720, 30 fps,
   H.264, looped) on 127.0.0.1;
2. the limit: the bare model's throughput on decoded frames of those streams held in memory (same model
   file, runtime, imgsz, conf and batch size; best of batch 1 and the configured batch), once on an
   otherwise idle machine and once while the N streams are being served and decoded by a minimal
   GStreamer client (decoding is work no client can skip; the second limit is what is left for the model);
3. argusd (`python -m daemon.service.cli run`) on the N streams, analysing as many frames as it can (camera fps 30),
   events to the local Redis: analysed frames/s (total and per camera), capture-to-analysed latency per frame
   and capture-to-Redis-ack latency per event, CPU %, peak RSS, frames dropped by reason;
4. the peer: ultralytics `model.predict(source=<streams file>, stream=True)` on the same streams for the same
   time: frames/s and the age of each frame when its result arrives.
Then the cost of one 720p30 camera through argusd's own source (decode, rate-limit, scale, convert).

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
DEFAULT_CONFIGS = "pt:640,onnx:640,openvino:640,pt:320,onnx:320,openvino:320"
QUICK_CONFIGS = "openvino:320,onnx:640"
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

def model_path(fmt: str, base: str) -> Path:
    """yolo11n built from its YAML (random weights, the trained model's compute), exported once."""
    pt = MODELS / f"{base}.pt"
    if not pt.exists():
        from ultralytics import YOLO

        MODELS.mkdir(parents=True, exist_ok=True)
        YOLO(f"{base}.yaml").save(str(pt))
    if fmt == "pt":
        return pt
    target = {"onnx": MODELS / f"{base}.onnx", "openvino": MODELS / f"{base}_openvino_model",
              "engine": MODELS / f"{base}.engine"}[fmt]
    if not target.exists():
        if fmt == "engine":  # TensorRT needs the GPU it will run on; FP16 with a dynamic batch
            from ultralytics import YOLO

            YOLO(str(pt)).export(format="engine", dynamic=True, half=True, batch=32, imgsz=640)
        else:
            from plugins.detectors.ultralytics_detector import export_model

            export_model(str(pt), fmt, 640)
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


class RtspCameras:
    """N H.264 cameras of real footage from the project's test RTSP server."""

    def __init__(self, count: int, width: int, height: int, fps: int, bitrate: int) -> None:
        self.port = free_port()
        self.paths = [f"/cam{i + 1}" for i in range(count)]
        command = [PYTHON, "-m", "daemon.testing.rtsp_server", "--port", str(self.port), "--source", str(FOOTAGE),
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
        # A .pt on PyTorch, as the limit and the peer run it (runtime: auto would convert it to OpenVINO).
        "detector": {"model": str(model), "device": options.device, "imgsz": imgsz, "conf": options.conf,
                     **({"runtime": "torch"} if model.suffix == ".pt" else {}),
                     **({"half": True} if options.half else {}),
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
    process = subprocess.Popen([PYTHON, "-m", "daemon.service.cli", "run", "--config", str(config)], cwd=REPO,
                               stdout=log_file, stderr=subprocess.STDOUT)
    cpu = CpuClock(process.pid)
    try:
        wait_until_all_analysed(http_port, len(urls), process, timeout=120)
        time.sleep(options.warmup)
        before, cpu_before, started = scrape(http_port), cpu.seconds(), time.time()
        time.sleep(options.seconds)
        after, cpu_after, ended = scrape(http_port), cpu.seconds(), time.time()
        peak_rss = cpu.peak_rss_mb()
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


# -- one configuration -------------------------------------------------------------------------------

def run_configuration(spec: str, cameras: RtspCameras, options: argparse.Namespace, workdir: Path) -> dict:
    fmt, _, size = spec.partition(":")
    imgsz = int(size or 640)
    model = model_path(fmt, options.model)
    common = ["--model", str(model), "--imgsz", str(imgsz), "--device", options.device, "--conf", str(options.conf)]
    if options.half:
        common.append("--half")
    result: dict = {"config": f"{fmt}@{imgsz}", "model": str(model.relative_to(REPO)), "imgsz": imgsz,
                    "load_before": load_average()}
    limit_args = [*common, "--url", cameras.urls[0], "--batches", f"1,{options.batch}",
                  "--seconds", str(options.limit_seconds)]
    log(f"{spec}: limit (bare model, idle machine)")
    result["limit"] = run_workload("limit", limit_args, timeout=300)
    if not options.no_decode_limit:
        log(f"{spec}: limit (bare model while {len(cameras.urls)} streams are decoded)")
        client = DecodingClient(cameras.urls)
        try:
            result["limit_under_decode"] = run_workload("limit", limit_args, timeout=300)
        finally:
            client.stop()
    log(f"{spec}: argusd for {options.seconds:g} s")
    server_before = cameras.cpu.seconds()
    started = time.time()
    result["argusd"] = run_argusd(cameras.urls, model, imgsz, options, workdir)
    result["camera_server_cpu_percent"] = 100 * (cameras.cpu.seconds() - server_before) / (time.time() - started)
    if not options.no_peer:
        log(f"{spec}: peer (ultralytics predict stream=True) for {options.seconds:g} s")
        streams = workdir / "cameras.streams"
        streams.write_text("\n".join(cameras.urls) + "\n")
        result["peer"] = run_workload("peer", [*common, "--streams", str(streams), "--seconds", str(options.seconds),
                                               "--warmup", str(options.warmup)], timeout=options.seconds + 180)
    result["load_after"] = load_average()
    log(f"{spec}: argusd {result['argusd']['fps']:.1f} f/s, limit {result['limit']['fps']:.1f} f/s"
        + (f", peer {result['peer']['fps']:.1f} f/s" if "peer" in result else ""))
    return result


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
    lines = [
        f"{report['cameras']} cameras of {report['stream']} (at most {supply} frames/s to analyse); "
        f"{report['seconds']:g} s measured per run after {report['warmup']:g} s warm-up; batch {report['batch']}; "
        f"device {report['device']}{' FP16' if report['half'] else ''}; argusd detector.threads "
        f"{report['threads'] or 'default'}; {report['machine']}.",
        "",
        "| model | limit f/s: idle / decoding | argusd f/s | argusd / limit | ultralytics f/s | argusd / ultralytics "
        "| argusd capture→analysed p50 / p95 / p99 ms | ultralytics frame age p50 / p95 / p99 ms "
        "| CPU %: argusd / ultralytics | peak RSS MB: argusd / ultralytics | argusd superseded f/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        a, peer = r["argusd"], r.get("peer", {})
        limit = min(r["limit"]["fps"], supply)
        under = r.get("limit_under_decode", {}).get("fps")
        peer_fps = peer.get("fps")
        lines.append(" | ".join([
            f"| {r['config']}",
            f"{r['limit']['fps']:.1f} / {under:.1f}" if under is not None else f"{r['limit']['fps']:.1f} / –",
            f"{a['fps']:.1f}",
            f"{a['fps'] / limit:.2f}" + (f" ({a['fps'] / min(under, supply):.2f})" if under else ""),
            f"{peer_fps:.1f}" if peer_fps else "–",
            f"{a['fps'] / peer_fps:.2f}" if peer_fps else "–",
            _triple(a["frame_latency_s"]),
            _triple(peer.get("frame_age_s", {})),
            f"{a['cpu_percent']:.0f} / {peer['cpu_percent']:.0f}" if peer else f"{a['cpu_percent']:.0f} / –",
            f"{a['peak_rss_mb']:.0f} / {peer['peak_rss_mb']:.0f}" if peer else f"{a['peak_rss_mb']:.0f} / –",
            f"{a['frames_dropped'].get('superseded', 0) / a['seconds']:.1f} |",
        ]))
    lines += ["", "argusd / limit: against the smaller of the idle limit and the frames the cameras send; in "
              "brackets against the limit while the streams are decoded. Load average before each configuration: "
              + ", ".join(f"{r['config']} {r['load_before'][0]:.1f}" for r in report["results"]) + "."]
    runs = [(r["config"], r["argusd"]) for r in report["results"]]
    if "events_run" in report:
        runs.append((f"{report['events_run']['model']} (real detector)", report["events_run"]["argusd"]))
    with_events = [(name, a) for name, a in runs if a["event_latency_redis_s"]["n"]]
    if with_events:
        lines += ["", "Capture-to-Redis latency of the events argusd published (exact, from each stream entry's id):",
                  "", "| model | events | p50 ms | p95 ms | p99 ms | capture→analysed p99 ms | argusd f/s |",
                  "|---|---|---|---|---|---|---|"]
        for name, a in with_events:
            e = a["event_latency_redis_s"]
            lines.append(f"| {name} | {e['n']} | {_ms(e['p50'])} | {_ms(e['p95'])} | {_ms(e['p99'])} "
                         f"| {_ms(a['frame_latency_s']['p99'])} | {a['fps']:.1f} |")
    for cost in report.get("camera_cost", []):
        lines.append(f"\nOne {report['width']}x{report['height']} {report['stream_fps']} fps camera through argusd's "
                     f"source at analysis fps {cost['fps_setting']:g}: {cost['cpu_percent_of_one_core']:.1f}% of one "
                     f"core ({cost['frames_per_s']:.1f} frames/s handed over).")
    return "\n".join(lines) + "\n"


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    names = [r["config"] for r in results]
    x = range(len(names))
    figure, (fps_axis, latency_axis) = plt.subplots(1, 2, figsize=(13, 4.5))
    width = 0.22
    series = [("limit (idle)", [r["limit"]["fps"] for r in results]),
              ("limit (decoding)", [r.get("limit_under_decode", {}).get("fps", 0) for r in results]),
              ("argusd", [r["argusd"]["fps"] for r in results]),
              ("ultralytics stream", [r.get("peer", {}).get("fps", 0) for r in results])]
    for i, (label, values) in enumerate(series):
        fps_axis.bar([p + (i - 1.5) * width for p in x], values, width, label=label)
    fps_axis.axhline(report["cameras"] * report["stream_fps"], color="grey", linestyle="--", linewidth=1)
    fps_axis.text(-0.45, report["cameras"] * report["stream_fps"], " frames sent", va="bottom", fontsize=8)
    fps_axis.set_xticks(list(x), names, fontsize=8)
    fps_axis.set_ylabel("analysed frames/s (all cameras)")
    fps_axis.set_title(f"Throughput, {report['cameras']} x 720p30 cameras")
    fps_axis.legend(fontsize=8)
    latency = [("argusd p50", [r["argusd"]["frame_latency_s"]["p50"] or 0 for r in results]),
               ("argusd p99", [r["argusd"]["frame_latency_s"]["p99"] or 0 for r in results]),
               ("peer p50", [r.get("peer", {}).get("frame_age_s", {}).get("p50") or 0 for r in results]),
               ("peer p99", [r.get("peer", {}).get("frame_age_s", {}).get("p99") or 0 for r in results])]
    for i, (label, values) in enumerate(latency):
        latency_axis.bar([p + (i - 1.5) * width for p in x], [1000 * v for v in values], width, label=label)
    latency_axis.set_xticks(list(x), names, fontsize=8)
    latency_axis.set_ylabel("ms from decoded frame to result")
    latency_axis.set_title("Latency (lower is better)")
    latency_axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} x {cpu}"


# -- main --------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"configs {QUICK_CONFIGS}, 15 s runs")
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--configs", default=None, help=f"format:imgsz list (default {DEFAULT_CONFIGS}); "
                        "formats: pt, onnx, openvino, engine")
    parser.add_argument("--model", default="yolo11n", help="ultralytics model YAML to build (random weights)")
    parser.add_argument("--seconds", type=float, default=None, help="measured time per run (default 25, quick 15)")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds after the first result before measuring")
    parser.add_argument("--limit-seconds", type=float, default=None, help="per batch size (default 8, quick 5)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--stream-fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=2000, help="kbit/s per camera")
    parser.add_argument("--camera-fps", type=float, default=30.0, help="argusd's analysis fps per camera")
    parser.add_argument("--batch", type=int, default=None, help="argusd max_batch and the limit's batch (default N)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--half", action="store_true", help="FP16 (CUDA)")
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--threads", type=int, default=None,
                        help="argusd's detector.threads (the limit and the peer keep their runtime's default)")
    parser.add_argument("--events-model", default=None,
                        help="also run argusd with this real detector (.pt, exported to OpenVINO at 320) so that "
                             "events flow and capture-to-Redis latency is measured on them")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--no-decode-limit", action="store_true", help="skip the limit under decoding load")
    parser.add_argument("--no-camera-cost", action="store_true")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "out"))
    options = parser.parse_args(argv)
    options.configs = options.configs or (QUICK_CONFIGS if options.quick else DEFAULT_CONFIGS)
    options.seconds = options.seconds or (15.0 if options.quick else 25.0)
    options.limit_seconds = options.limit_seconds or (5.0 if options.quick else 8.0)
    options.batch = options.batch or options.cameras
    for spec in options.configs.split(","):
        fmt, _, size = spec.partition(":")
        if fmt not in ("pt", "onnx", "openvino", "engine") or not (size or "640").isdigit():
            parser.error(f"--configs: {spec!r} is not format:imgsz (format pt, onnx, openvino or engine)")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine(), "cameras": options.cameras, "batch": options.batch, "device": options.device,
              "half": options.half, "threads": options.threads, "seconds": options.seconds, "warmup": options.warmup,
              "stream_fps": options.stream_fps, "width": options.width, "height": options.height,
              "stream": f"H.264 {options.width}x{options.height} {options.stream_fps} fps {options.bitrate} kbit/s "
                        f"({FOOTAGE.name}, looped)",
              "command": " ".join([Path(PYTHON).name, "benchmarks/run.py", *(argv or sys.argv[1:])]),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "results": []}
    log(f"load average {load_average()}; starting {options.cameras} cameras")
    cameras = RtspCameras(options.cameras, options.width, options.height, options.stream_fps, options.bitrate)
    workdir = Path(tempfile.mkdtemp(prefix="argusd-bench-"))
    try:
        for spec in options.configs.split(","):
            report["results"].append(run_configuration(spec, cameras, options, workdir))
        if options.events_model:
            report["events_run"] = run_events(cameras, options, workdir)
        if not options.no_camera_cost:
            report["camera_cost"] = measure_camera_cost(cameras, 10.0)
    finally:
        cameras.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    chart(report, out / "report.png")
    print(markdown(report))
    log(f"wrote {out}/report.json, report.md, report.png")
    return 0


def run_events(cameras: RtspCameras, options: argparse.Namespace, workdir: Path) -> dict:
    """argusd with a real detector on the same streams, so events flow and their latency is measured."""
    from plugins.detectors.ultralytics_detector import export_model

    source = Path(options.events_model)
    copy = MODELS / source.name  # exported beside a copy, so the assets directory stays as fetched
    model = MODELS / f"{source.stem}_openvino_model"
    if not model.exists():
        MODELS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, copy)
        model = export_model(str(copy), "openvino", 320)
    log(f"events: argusd with {source.name} (OpenVINO, 320) for {options.seconds:g} s")
    return {"model": source.name, "imgsz": 320, "argusd": run_argusd(cameras.urls, model, 320, options, workdir)}


if __name__ == "__main__":
    sys.exit(main())
