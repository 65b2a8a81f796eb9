"""A loopback HTTP "camera": an MJPEG stream (``multipart/x-mixed-replace``) and a directory of files.

    python -m daemon.testing.http_camera --port 8080 [--root DIR] [--width 320 --height 240 --fps 15]
        [--credentials user:password [--auth basic|digest]]

``/mjpeg`` streams JPEG frames of a moving square, one part per frame, at ``--fps``, for as long as the
client reads, like a cheap IP camera's ``/video.mjpg``. ``/stream/NAME`` sends the file NAME without a
length, in fiftieths ten times a second (an HTTP camera's MPEG-TS stream, say), then closes. Every other
path is a file under ``--root`` served with its length and content type (an ``.mp4``, an HLS playlist and
its segments, an HTML page), so tests can offer finite files and wrong URLs from the same peer.
``--credentials`` makes every path answer 401 without that user and password (HTTP Basic, or Digest with
qop=auth as most IP cameras ask). Prints ``ready http://127.0.0.1:PORT`` once it accepts connections;
SIGTERM/SIGINT stop it, SIGKILL plays a camera losing power.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import hmac
import secrets
import sys
import time
import urllib.request
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

BOUNDARY = "argusdframe"
MJPEG_PATH = "/mjpeg"
STREAM_PREFIX = "/stream/"


def jpeg_frames(width: int, height: int, count: int) -> list[bytes]:
    """``count`` JPEG pictures of a white square crossing a blue picture (BGR 255,0,0), encoded once."""
    frames = []
    side = max(8, height // 4)
    for index in range(count):
        image = np.zeros((height, width, 3), np.uint8)
        image[:, :] = (255, 0, 0)
        x = (index * (width - side)) // max(1, count - 1)
        image[height // 2 - side // 2:height // 2 + side // 2, x:x + side] = 255
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            raise RuntimeError("cannot encode a JPEG frame")
        frames.append(encoded.tobytes())
    return frames


REALM = "argusd test camera"


@dataclass(frozen=True, slots=True)
class Credentials:
    user: str
    password: str
    method: str  # "basic" or "digest"

    def challenge(self, nonce: str) -> str:
        if self.method == "digest":
            return f'Digest realm="{REALM}", nonce="{nonce}", qop="auth", algorithm=MD5'
        return f'Basic realm="{REALM}"'

    def accepts(self, header: str | None, http_method: str, nonce: str) -> bool:
        if header is None:
            return False
        scheme, _, value = header.partition(" ")
        if self.method == "basic":
            expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            return scheme.lower() == "basic" and hmac.compare_digest(value.strip(), expected)
        if scheme.lower() != "digest":
            return False
        fields = urllib.request.parse_keqv_list(urllib.request.parse_http_list(value))
        if fields.get("username") != self.user or fields.get("nonce") != nonce:
            return False
        ha1 = _md5(f"{self.user}:{REALM}:{self.password}")
        ha2 = _md5(f"{http_method}:{fields.get('uri', '')}")
        expected = _md5(f"{ha1}:{nonce}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:auth:{ha2}")
        return hmac.compare_digest(fields.get("response", ""), expected)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class CameraHandler(SimpleHTTPRequestHandler):
    frames: ClassVar[list[bytes]] = []
    fps: ClassVar[int] = 15
    credentials: ClassVar[Credentials | None] = None  # required of every request when set
    nonce: ClassVar[str] = secrets.token_hex(16)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        """Quiet: a test reads only the ready line."""

    def do_GET(self) -> None:
        credentials = self.credentials
        if credentials is not None and not credentials.accepts(self.headers.get("Authorization"), "GET", self.nonce):
            self.send_response(401, "Unauthorized")
            self.send_header("WWW-Authenticate", credentials.challenge(self.nonce))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = self.path.split("?")[0]
        if path == MJPEG_PATH:
            self._stream_mjpeg()
        elif path.startswith(STREAM_PREFIX):
            self._stream_file(path.removeprefix(STREAM_PREFIX))
        else:
            super().do_GET()

    def _stream_file(self, name: str) -> None:
        path = Path(self.directory) / name
        if "/" in name or not path.is_file():
            self.send_error(404, "File not found")
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.end_headers()
        step = max(1, len(data) // 50)
        try:
            for start in range(0, len(data), step):
                self.wfile.write(data[start:start + step])
                self.wfile.flush()
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            return

    def _stream_mjpeg(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        interval = 1.0 / self.fps
        next_at = time.monotonic()
        index = 0
        try:
            while True:
                frame = self.frames[index % len(self.frames)]
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame)}\r\n\r\n"
                                 .encode() + frame + b"\r\n")
                self.wfile.flush()
                index += 1
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))
        except (BrokenPipeError, ConnectionResetError):
            return  # the client went away


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", default=".", help="directory whose files are served")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--credentials", default=None, help="user:password required")
    parser.add_argument("--auth", default="basic", choices=("basic", "digest"), help="how --credentials are asked")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = Path(args.root)
    if not root.is_dir():
        print(f"no such directory: {root}", file=sys.stderr)
        return 2
    CameraHandler.frames = jpeg_frames(args.width, args.height, args.fps * 2)
    CameraHandler.fps = args.fps
    if args.credentials:
        user, _, password = args.credentials.partition(":")
        CameraHandler.credentials = Credentials(user, password, args.auth)
    CameraHandler.extensions_map = {**CameraHandler.extensions_map, ".m3u8": "application/vnd.apple.mpegurl",
                                    ".ts": "video/mp2t"}
    handler = functools.partial(CameraHandler, directory=str(root))
    try:
        server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    except OSError as error:
        print(f"cannot listen on 127.0.0.1:{args.port}: {error}", file=sys.stderr)
        return 1
    server.daemon_threads = True
    print(f"ready http://127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
