"""A loopback RTSP "camera": GstRtspServer serving H.264 or H.265 from videotestsrc or a looped video file.

    python -m daemon.testing.rtsp_server --port 8554 --path /cam [--path /cam2 ...]
        [--source test|FILE] [--pattern ball] [--width 1280 --height 720 --fps 30] [--codec h264|h265]
        [--credentials user:password [--auth basic|digest]] [--audio] [--clock-offset SECONDS] [--passthrough]

``--audio`` adds an Opus audio stream to every mount, as cameras with a microphone advertise.
``--clock-offset`` plays a camera whose clock is that many seconds ahead of this machine's (behind if
negative): its RTCP sender reports carry that clock's NTP time for the frames it sends.

Prints one ``ready rtsp://127.0.0.1:PORT/PATH`` line per mount on stdout once it accepts connections, so a
test or benchmark can wait for it. A file is decoded once, in real time, and looped for ever (a flushing
seek to the start at its end); every mount encodes that shared feed, so N mounts cost N encoders, like N
cameras. With ``--passthrough`` the file must be H.264 in an MP4 already at the wanted size and rate: each
mount serves it as it is, paced in real time and without decoding or encoding (a real camera encodes on its
own chip, so a benchmark's server should not spend the cores being measured), and its stream ends with the
file (a new client starts it again). SIGTERM/SIGINT stop it cleanly; SIGUSR1 drops every connected client (a
camera rebooting, in a fraction of a second); SIGKILL and SIGSTOP are what tests use to play a dead or hung
camera.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import gi

gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GstRtsp, GstRtspServer  # noqa: E402

from daemon.sources.gst import GLib, Gst  # noqa: E402

PATTERNS = ("smpte", "ball", "snow", "black", "white", "red", "green", "blue", "checkers-8", "gamut")


def _raw_caps(args: argparse.Namespace, with_format: bool = True) -> str:
    fmt = "format=I420," if with_format else ""
    # Square pixels: a file scaled to another aspect ratio is stretched to fill the picture, as a camera
    # does, rather than served as e.g. 1694x720 in square pixels.
    return f"video/x-raw,{fmt}width={args.width},height={args.height},framerate={args.fps}/1,pixel-aspect-ratio=1/1"


def _encoder(args: argparse.Namespace) -> str:
    # One key frame a second by default: a reconnecting client waits at most a second for a picture.
    key_interval = args.key_interval or args.fps
    if args.codec == "h265":
        return (
            f"x265enc tune=zerolatency speed-preset=ultrafast key-int-max={key_interval} bitrate={args.bitrate} "
            "! video/x-h265,profile=main ! rtph265pay name=pay0 pt=96 config-interval=1"
        )
    return (
        f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={key_interval} "
        f"bitrate={args.bitrate} "
        "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1"
    )


def _quoted(path: Path) -> str:
    """``path`` for a double-quoted gst-launch property value."""
    return str(path).replace("\\", "\\\\").replace('"', '\\"')


AUDIO = "audiotestsrc is-live=true wave=sine volume=0.1 ! audioconvert ! opusenc ! rtpopuspay name=pay1 pt=97"
NTP_EPOCH_S = 2208988800  # seconds from 1900-01-01 (NTP's epoch) to 1970-01-01


class CameraClockMedia(GstRtspServer.RTSPMedia):
    """A media whose RTCP sender reports carry its pipeline clock's time as the NTP time (rtpbin's default is
    this machine's wall clock), so a factory clock set off by some seconds plays a camera set off by them."""

    def do_setup_rtpbin(self, rtpbin: Gst.Element) -> bool:
        rtpbin.set_property("ntp-time-source", "clock-time")
        return True


def offset_clock(offset_s: float) -> Gst.Clock:
    """A clock reading NTP time (since 1900) of this machine's wall clock plus ``offset_s``."""
    clock = Gst.SystemClock(clock_type=Gst.ClockType.REALTIME)
    internal = clock.get_internal_time()
    clock.set_calibration(internal, internal + int((NTP_EPOCH_S + offset_s) * Gst.SECOND), 1, 1)
    return clock


class LoopedFile:
    """Decodes a file in real time into an inter-pipeline channel, seeking back to the start at its end."""

    def __init__(self, path: Path, args: argparse.Namespace, channel: str) -> None:
        self.pipeline = Gst.parse_launch(
            f'filesrc location="{_quoted(path)}" ! decodebin ! videoconvert ! videoscale add-borders=false ! videorate '
            f"! {_raw_caps(args)} ! intervideosink channel={channel} sync=true"
        )
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self._on_message)

    def start(self) -> None:
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            raise RuntimeError("cannot play the source file")

    def stop(self) -> None:
        self.pipeline.get_bus().remove_signal_watch()
        self.pipeline.set_state(Gst.State.NULL)

    def _on_message(self, _bus: Gst.Bus, message: Gst.Message) -> None:
        if message.type == Gst.MessageType.EOS:
            self.pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0)
        elif message.type == Gst.MessageType.ERROR:
            error, _debug = message.parse_error()
            print(f"source error: {error.message}", file=sys.stderr, flush=True)
            os._exit(1)


def _with_auth(server: GstRtspServer.RTSPServer, factory: GstRtspServer.RTSPMediaFactory, credentials: str,
               method: str) -> None:
    user, _, password = credentials.partition(":")
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", user)
    if method == "digest":
        auth.add_digest(user, password, token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    else:
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_permission_for_role(user, "media.factory.access", True)
    permissions.add_permission_for_role(user, "media.factory.construct", True)
    factory.set_permissions(permissions)


def _drop_clients(server: GstRtspServer.RTSPServer) -> bool:
    server.client_filter(lambda _server, _client: GstRtspServer.RTSPFilterResult.REMOVE)
    return GLib.SOURCE_CONTINUE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", action="append", default=None, help="mount path, repeatable (default /cam)")
    parser.add_argument("--source", default="test", help="'test' (videotestsrc) or a video file, looped")
    parser.add_argument("--pattern", default="ball", choices=PATTERNS, help="videotestsrc pattern")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--bitrate", type=int, default=1000, help="kbit/s")
    parser.add_argument("--key-interval", type=int, default=None, help="frames between key frames (default: fps)")
    parser.add_argument("--credentials", default=None, help="user:password required by the server")
    parser.add_argument("--auth", default="basic", choices=("basic", "digest"), help="how --credentials are asked")
    parser.add_argument("--codec", default="h264", choices=("h264", "h265"))
    parser.add_argument("--audio", action="store_true", help="serve an audio stream too")
    parser.add_argument("--clock-offset", type=float, default=None, help="seconds the camera's clock is ahead")
    parser.add_argument("--passthrough", action="store_true",
                        help="serve --source (H.264 in MP4) as it is, without re-encoding; it ends with the file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    paths = args.path or ["/cam"]
    looped: LoopedFile | None = None
    if args.source == "test":
        launch = f"videotestsrc is-live=true pattern={args.pattern} ! {_raw_caps(args)} ! {_encoder(args)}"
    else:
        path = Path(args.source)
        if not path.is_file():
            print(f"no such file: {path}", file=sys.stderr)
            return 2
        if args.passthrough:
            launch = (f'filesrc location="{_quoted(path)}" ! qtdemux ! h264parse '
                      "! rtph264pay name=pay0 pt=96 config-interval=1")
        else:
            channel = f"argusd-rtsp-{os.getpid()}"
            looped = LoopedFile(path, args, channel)
            launch = (f"intervideosrc channel={channel} ! {_raw_caps(args, with_format=False)} ! videoconvert "
                      f"! {_encoder(args)}")

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for mount in paths:
        factory = GstRtspServer.RTSPMediaFactory()
        audio = f" {AUDIO}" if args.audio else ""
        factory.set_launch(f"( {launch}{audio} )")
        factory.set_shared(True)  # every client of a mount sees the same encoded stream, like a camera
        if args.clock_offset is not None:
            factory.set_media_gtype(CameraClockMedia)
            factory.set_clock(offset_clock(args.clock_offset))
        if args.credentials:
            _with_auth(server, factory, args.credentials, args.auth)
        mounts.add_factory(mount, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    if looped is not None:
        looped.start()

    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, _drop_clients, server)
    for mount in paths:
        print(f"ready rtsp://127.0.0.1:{args.port}{mount}", flush=True)
    loop.run()
    if looped is not None:
        looped.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
