#!/usr/bin/env bash
# argusd on one NVIDIA GPU: the bare model's throughput at FP16 for batch sizes 1 to 32 on 1080p frames, argusd
# end to end on N 1080p30 cameras given the .pt (runtime auto: a TensorRT FP16 engine where `tensorrt` is
# installed, else torch FP16; NVDEC decoding where GStreamer's nvcodec elements exist), the p95 capture-to-Redis
# latency of its events, and the resulting streams per GPU at 1080p30. About 4-6 minutes.
#
#   benchmarks/gpu.sh [--cameras 8] [--seconds 20] [--imgsz 640] [--batches 1,2,4,8,16,32]
#                     [--model .cache/assets/fall-detector.pt] [--device cuda:0] [--out benchmarks/out/gpu] [--dry-run]
#
# Assumes the project's set-up has run on this machine (scripts/setup.sh: Debian's GStreamer, the .venv with
# the CUDA build of torch, ultralytics) and an NVIDIA driver; nothing is downloaded. If .venv is missing it
# runs scripts/setup.sh, which needs the package mirrors. --dry-run checks the arguments and prints the
# commands without running them (works on a machine without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."

cameras=8 seconds=20 imgsz=640 batches=1,2,4,8,16,32 model=.cache/assets/fall-detector.pt device=cuda:0
out=benchmarks/out/gpu dry_run=0
width=1920 height=1080 fps=30
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --cameras) cameras=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --imgsz) imgsz=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "gpu.sh: unknown argument $1" >&2; usage 2 ;;
  esac
done
[[ $cameras =~ ^[1-9][0-9]*$ ]] || { echo "gpu.sh: --cameras must be a positive integer" >&2; exit 2; }
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "gpu.sh: --seconds must be a positive integer" >&2; exit 2; }
[[ $imgsz =~ ^[1-9][0-9]*$ && $((imgsz % 32)) -eq 0 ]] || { echo "gpu.sh: --imgsz must be a multiple of 32" >&2; exit 2; }
[[ $batches =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "gpu.sh: --batches must be like 1,2,4,8" >&2; exit 2; }
[[ $model == *.pt ]] || { echo "gpu.sh: --model must be a .pt file" >&2; exit 2; }
largest=$(tr , '\n' <<<"$batches" | sort -n | tail -1)
batch=$(( cameras < largest ? cameras : largest ))

python=.venv/bin/python
run() { echo "+ $*"; [ "$dry_run" = 1 ] || "$@"; }

if [ "$dry_run" = 0 ]; then
  [ -x "$python" ] || scripts/setup.sh
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu.sh: torch sees no CUDA device')"
fi
mkdir -p "$out"
# 1. The bare model at FP16, every batch size, on 1080p frames decoded from the test server's stream.
port=$("$python" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
if [ "$dry_run" = 0 ]; then
  "$python" -m daemon.testing.rtsp_server --port "$port" --path /cam1 --source .cache/assets/bikes.mp4 \
    --width $width --height $height --fps $fps --bitrate 4000 > "$out/server.log" 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  sleep 3
fi
run "$python" benchmarks/workloads.py limit --url "rtsp://127.0.0.1:$port/cam1" --model "$model" --imgsz "$imgsz" \
  --device "$device" --half --batches "$batches" --seconds 5 --out "$out/limit.json"
[ "$dry_run" = 1 ] || { kill $server; wait $server 2>/dev/null || true; trap - EXIT; }

# 2. argusd and ultralytics' streaming end to end on N 1080p30 cameras, both given the .pt.
run "$python" benchmarks/run.py --cameras "$cameras" --width $width --height $height --stream-fps $fps \
  --bitrate 4000 --model "$model" --imgsz "$imgsz" --runtimes torch --device "$device" --half --batch "$batch" \
  --seconds "$seconds" --limit-seconds 5 --no-camera-cost --out "$out"

# 3. Streams per GPU at 1080p30.
[ "$dry_run" = 1 ] && exit 0
"$python" - "$out" "$fps" <<'EOF'
import json, sys
from pathlib import Path
out, fps = Path(sys.argv[1]), int(sys.argv[2])
limit = json.loads((out / "limit.json").read_text())
report = json.loads((out / "report.json").read_text())
print("\nbare model, FP16, frames/s by batch size:")
for batch, value in limit["fps_by_batch"].items():
    print(f"  batch {batch:>2}: {value:8.1f} f/s = {value / fps:6.1f} streams at {fps} fps")
argusd = report["argusd"]
cameras = report["cameras"]
share = argusd["fps"] / (cameras * fps)
print(f"\nargusd on {cameras} x 1080p{fps}: {argusd['fps']:.1f} f/s ({100 * share:.0f}% of the frames sent), "
      f"capture->analysed p99 {1000 * (argusd['frame_latency_s']['p99'] or 0):.0f} ms, "
      f"capture->Redis p95 {1000 * (argusd['event_latency_redis_s']['p95'] or 0):.0f} ms "
      f"({argusd['event_latency_redis_s']['n']} events), runtime {argusd['runtime']}, "
      f"CPU {argusd['cpu_percent']:.0f}% of one core")
if "peer" in report:
    print(f"ultralytics predict(stream=True): {report['peer']['fps']:.1f} f/s")
import os
per_stream_cpu = argusd["cpu_percent"] / cameras
by_gpu = limit["fps"] / fps
by_cpu = os.cpu_count() * 100 / per_stream_cpu if per_stream_cpu else float("inf")
print(f"\nstreams per GPU at 1080p{fps}, inference bound (best batch {limit['best_batch']}): {by_gpu:.0f}")
print(f"CPU bound: argusd used {per_stream_cpu:.0f}% of one core per stream (decoding, unless NVDEC took it, and "
      f"the pipeline), so {os.cpu_count()} cores carry about {by_cpu:.0f} streams")
print(f"streams per GPU at 1080p{fps} on this machine: {min(by_gpu, by_cpu):.0f}")
EOF
