"""A loopback live sender for the pull sources that are not RTSP: SRT (as a listener) and HLS (segments).

    python -m daemon.testing.stream_sender --kind srt --port 9000 [--width 320 --height 240 --fps 15]
    python -m daemon.testing.stream_sender --kind hls --dir DIR [--port N (unused)]
    python -m daemon.testing.stream_sender --kind rtmp --url rtmp://127.0.0.1:1935/live/cam [--port N (unused)]

SRT: H.264 in MPEG-TS from ``srtsink`` in listener mode, so a camera URL ``srt://127.0.0.1:PORT`` (caller)
pulls it, as from an encoder or a gateway. HLS: ``hlssink2`` writes one-second segments and a live playlist
``DIR/live.m3u8`` (the newest few segments), which an HTTP server (daemon/testing/http_camera.py) serves.
RTMP: H.264 in FLV published to an RTMP server (daemon/testing/rtmp_server.py) that relays it to players.
Prints ``ready`` once it sends; SIGTERM/SIGINT stop it, SIGKILL plays an encoder that died.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from daemon.sources.gst import GLib, Gst

PLAYLIST = "live.m3u8"


def _encoded(args: argparse.Namespace) -> str:
    return (
        f"videotestsrc is-live=true pattern=ball ! video/x-raw,width={args.width},height={args.height},"
        f"framerate={args.fps}/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} "
        "! video/x-h264,profile=baseline ! h264parse config-interval=-1"
    )


def description(args: argparse.Namespace) -> str:
    if args.kind == "srt":
        # 7 TS packets (1316 bytes) per buffer: one SRT message each; a larger buffer would be cut short.
        return (f"{_encoded(args)} ! mpegtsmux alignment=7 ! srtsink uri=srt://127.0.0.1:{args.port}?mode=listener "
                "wait-for-connection=false latency=100")
    if args.kind == "rtmp":
        return f'{_encoded(args)} ! flvmux streamable=true ! rtmp2sink location="{args.url}"'
    directory = Path(args.dir)
    return (f'{_encoded(args)} ! hlssink2 location="{directory / "segment%05d.ts"}" '
            f'playlist-location="{directory / PLAYLIST}" target-duration=1 playlist-length=3 max-files=6')


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", required=True, choices=("srt", "hls", "rtmp"))
    parser.add_argument("--port", type=int, default=None, help="srt: the port it listens on")
    parser.add_argument("--dir", default=None, help="hls: where segments and the playlist are written")
    parser.add_argument("--url", default=None, help="rtmp: where to publish")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=int, default=15)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if (args.kind == "srt" and args.port is None) or (args.kind == "hls" and not args.dir) or (
            args.kind == "rtmp" and not args.url):
        print("srt needs --port, hls needs --dir, rtmp needs --url", file=sys.stderr)
        return 2
    pipeline = Gst.parse_launch(description(args))
    loop = GLib.MainLoop()
    bus = pipeline.get_bus()
    bus.add_signal_watch()

    def on_message(_bus: Gst.Bus, message: Gst.Message) -> None:
        if message.type == Gst.MessageType.ERROR:
            error, _debug = message.parse_error()
            print(f"sender error: {error.message}", file=sys.stderr, flush=True)
            loop.quit()

    bus.connect("message", on_message)
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        print("cannot start the sender pipeline", file=sys.stderr)
        return 1
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print("ready", flush=True)
    loop.run()
    bus.remove_signal_watch()
    pipeline.set_state(Gst.State.NULL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
