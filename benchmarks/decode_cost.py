"""H.265 vs H.264 decode cost per frame on the same content, through the decoder argusd's pipelines pick.

    .venv/bin/python benchmarks/decode_cost.py [--source .cache/assets/bikes.mp4] [--size 1280x720]
        [--bitrate 2000] [--rounds 5]

The source clip (real footage by default) is scaled to ``--size`` and encoded once with x264 and once with
x265 at the same bitrate (ultrafast, one key frame a second, as a camera sends them), into temporary files.
Each round then decodes each file to the end through ``decodebin`` (the element argusd's RTSP and file
pipelines use, so the same decoder is chosen: avdec_h264/avdec_h265 on a CPU, nvh264dec/nvh265dec where
NVDEC is present and ranked first) into a fakesink, without syncing to a clock, and measures this process's
CPU time (all GStreamer threads) and wall time per frame. The two files alternate within a round, so a swing
in the machine's background load affects both alike. Not a test: it prints figures (medians over rounds).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daemon.sources.gst import Gst, prefer_gpu_decoding  # noqa: E402

ENCODERS = {
    "h264": "x264enc speed-preset=ultrafast tune=zerolatency bitrate={bitrate} key-int-max={fps} ! h264parse",
    "h265": "x265enc speed-preset=ultrafast tune=zerolatency bitrate={bitrate} key-int-max={fps} ! h265parse",
}


def run_to_end(description: str) -> Gst.Pipeline:
    pipeline = Gst.parse_launch(description)
    pipeline.set_state(Gst.State.PLAYING)
    message = pipeline.get_bus().timed_pop_filtered(600 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    if message is None or message.type == Gst.MessageType.ERROR:
        pipeline.set_state(Gst.State.NULL)
        detail = message.parse_error()[0].message if message is not None else "timed out"
        raise SystemExit(f"pipeline failed: {detail}: {description}")
    return pipeline


def encode(source: Path, codec: str, target: Path, width: int, height: int, bitrate: int, fps: int) -> None:
    encoder = ENCODERS[codec].format(bitrate=bitrate, fps=fps)
    pipeline = run_to_end(
        f'filesrc location="{source}" ! decodebin ! videoconvert ! videoscale ! videorate '
        f"! video/x-raw,format=I420,width={width},height={height},framerate={fps}/1,pixel-aspect-ratio=1/1 "
        f'! {encoder} ! mp4mux ! filesink location="{target}"'
    )
    pipeline.set_state(Gst.State.NULL)


def elements(bin_: Gst.Bin) -> list[Gst.Element]:
    iterator, found = bin_.iterate_recurse(), []
    while True:
        result, element = iterator.next()
        if result != Gst.IteratorResult.OK:
            return found
        found.append(element)


def decode(path: Path, count_frames: bool = False) -> tuple[int, float, float, str]:
    """Frames decoded (counted only when asked: a Python probe per frame would be timed too), CPU seconds and
    wall seconds, and the decoder decodebin chose."""
    pipeline = Gst.parse_launch(f'filesrc location="{path}" ! decodebin name=decode ! fakesink name=sink sync=false')
    frames = 0

    def count(_pad: Gst.Pad, _info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        nonlocal frames
        frames += 1
        return Gst.PadProbeReturn.OK

    if count_frames:
        pipeline.get_by_name("sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, count)
    cpu, wall = time.process_time(), time.perf_counter()
    pipeline.set_state(Gst.State.PLAYING)
    message = pipeline.get_bus().timed_pop_filtered(600 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    decoder = next((e.get_factory().get_name() for e in elements(pipeline.get_by_name("decode"))
                    if "Decoder" in (e.get_factory().get_metadata("klass") or "")), "?")
    pipeline.set_state(Gst.State.NULL)
    if message is None or message.type == Gst.MessageType.ERROR:
        raise SystemExit(f"decoding {path} failed")
    return frames, cpu, wall, decoder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=REPO / ".cache" / "assets" / "bikes.mp4")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--bitrate", type=int, default=2000, help="kbit/s, both codecs")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not args.source.is_file():
        raise SystemExit(f"{args.source} missing: run scripts/setup.sh to fetch the test assets")
    width, height = (int(v) for v in args.size.split("x"))
    preferred = prefer_gpu_decoding()
    print(f"GStreamer {Gst.version_string()}; NVDEC decoders preferred: {', '.join(preferred) or 'none'}")
    with tempfile.TemporaryDirectory() as scratch:
        files = {}
        for codec in ENCODERS:
            files[codec] = Path(scratch) / f"{codec}.mp4"
            started = time.perf_counter()
            encode(args.source, codec, files[codec], width, height, args.bitrate, args.fps)
            took = time.perf_counter() - started
            print(f"{codec}: encoded {files[codec].stat().st_size / 1e6:.2f} MB in {took:.1f} s")
        counts = {codec: decode(path, count_frames=True)[0] for codec, path in files.items()}  # and a warm-up
        results: dict[str, list[tuple[float, float]]] = {codec: [] for codec in ENCODERS}
        decoders = {}
        for _ in range(args.rounds):
            for codec, path in files.items():
                _, cpu, wall, decoders[codec] = decode(path)
                results[codec].append((cpu * 1000 / counts[codec], counts[codec] / wall))
    frames = counts["h264"]
    print(f"{args.source.name} at {width}x{height}, {args.bitrate} kbit/s, {frames} frames, "
          f"median of {args.rounds} rounds:")
    medians = {}
    for codec, rows in results.items():
        cpu_ms = statistics.median(r[0] for r in rows)
        fps = statistics.median(r[1] for r in rows)
        medians[codec] = cpu_ms
        spread = f"{min(r[0] for r in rows):.2f}-{max(r[0] for r in rows):.2f}"
        print(f"  {codec} ({decoders[codec]}): {cpu_ms:.2f} ms CPU per frame (range {spread}), {fps:.0f} frames/s wall")
    print(f"  h265/h264 CPU per frame: {medians['h265'] / medians['h264']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
