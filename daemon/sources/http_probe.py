"""What an http(s):// camera URL serves, asked once per connection attempt before its pipeline is built.

The pipeline depends on the answer: an MJPEG stream (``multipart/x-mixed-replace``) is live and must not be
buffered (``uridecodebin`` puts a buffering ``queue2`` in front of it and never prerolls), a file with a
length is finite (it plays once, like ``file://``, instead of "ending its stream" and reconnecting), an HLS
playlist needs ``hlsdemux``. The probe also turns the failures an operator can fix into one line each: a 401,
a 404, a web page or a JSON API where the stream should be.
"""

from __future__ import annotations

import enum
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from daemon.core.redact import redact_url


class HttpKind(enum.Enum):
    MJPEG = "mjpeg"  # multipart/x-mixed-replace: a live stream of JPEG pictures
    HLS = "hls"  # an .m3u8 playlist of segments
    FILE = "file"  # a finite video file (its length is known): plays once
    STREAM = "stream"  # a video stream without a length (MPEG-TS over HTTP, say): live


HLS_TYPES = {"application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl", "audio/x-mpegurl"}
# Servers label video files loosely: a file of one of these types is handed to decodebin, which finds out.
OPAQUE_TYPES = {"application/octet-stream", "binary/octet-stream", "application/mp4", "application/ogg"}


class HttpProbeError(Exception):
    """One operator-facing line naming what is wrong. Always retried: a camera rebooting answers 404 or a
    login page for a while, and a fixed password on the camera heals without a reload."""


@dataclass(frozen=True, slots=True)
class HttpCredentials:
    user: str
    password: str


def split_credentials(url: str) -> tuple[str, HttpCredentials | None]:
    """The URL without its user:password part, and the (percent-decoded) credentials it carried."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, HttpCredentials(unquote(parts.username), unquote(parts.password or ""))


def classify(content_type: str, length: str | None, path: str) -> HttpKind | None:
    """The kind of video a response carries, from its headers; None when it is not video."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "multipart/x-mixed-replace":
        return HttpKind.MJPEG
    if media in HLS_TYPES or (path.lower().endswith(".m3u8") and media in ("", "text/plain", *OPAQUE_TYPES)):
        return HttpKind.HLS
    if media.startswith("video/") or media in OPAQUE_TYPES or not media:
        return HttpKind.FILE if length is not None else HttpKind.STREAM
    return None


def probe(url: str, timeout_s: float) -> HttpKind:
    """GET ``url`` (Basic or Digest credentials from it), read the response headers only, and classify them.
    HttpProbeError names what is wrong in one line, without the password."""
    bare, credentials = split_credentials(url)
    handlers: list[urllib.request.BaseHandler] = []
    if credentials is not None:
        passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        passwords.add_password(None, bare, credentials.user, credentials.password)
        handlers += [urllib.request.HTTPBasicAuthHandler(passwords), urllib.request.HTTPDigestAuthHandler(passwords)]
    opener = urllib.request.build_opener(*handlers)
    shown = redact_url(url)
    try:
        request = urllib.request.Request(bare, headers={"User-Agent": "argusd"})  # noqa: S310 (http(s) only: the caller's)
        with opener.open(request, timeout=timeout_s) as reply:
            content_type = reply.headers.get("Content-Type", "")
            length = reply.headers.get("Content-Length")
    except urllib.error.HTTPError as error:
        if error.code == 401:
            given = "wrong credentials" if credentials is not None else "no credentials in the URL"
            raise HttpProbeError(f"HTTP 401 Unauthorized from {shown}: {given} (user:password@ in the URL)") from None
        raise HttpProbeError(f"HTTP {error.code} {error.reason} from {shown}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise HttpProbeError(f"cannot connect to {shown}: {reason}") from None
    kind = classify(content_type, length, urlsplit(bare).path)
    if kind is None:
        raise HttpProbeError(f"{shown} serves {content_type.split(';', 1)[0]!r}, not video: point the camera at "
                             "its stream URL (MJPEG, a video file or an .m3u8 playlist), not a page")
    return kind
