"""HLS and SRT pull sources from local GStreamer senders (daemon/testing/stream_sender.py): frames flow, and
the camera's supervisor reconnects after the sender restarts, as it does for RTSP."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.support.cameras import Recorder, camera
from tests.support.http_camera import HttpCamera
from tests.support.peers import PeerProcess
from tests.support.polling import wait_for

from daemon.sources.supervisor import CameraState


def stream_until_the_sender_restarts(url: str, sender: PeerProcess, first_within_s: float,
                                     again_within_s: float, down: CameraState = CameraState.STALLED,
                                     after_kill: Callable[[], None] = lambda: None) -> tuple[float, float]:
    """Stream ``url``, kill its sender (then ``after_kill``), wait until the camera is ``down`` and has had no
    frame for a second, restart the sender; the seconds to the first frame, and to the first after the restart."""
    recorder = Recorder()
    source = recorder.source(camera("cam", url))
    started = time.monotonic()
    source.start()
    try:
        wait_for(lambda: recorder.count("cam") >= 5, first_within_s + 1, "five frames", details=source.status)
        first = recorder.frame_times("cam")[0] - started
        sender.kill()
        after_kill()
        wait_for(lambda: source.state == down, 10, f"the camera to be {down.value}", details=source.status)
        wait_for(lambda: time.monotonic() - recorder.frame_times("cam")[-1] > 1.0, 5, "a second without frames")
        sender.start()
        back = time.monotonic()
        wait_for(lambda: recorder.first_frame_after("cam", back), again_within_s, "frames after the restart",
                 details=source.status)
        again = recorder.first_frame_after("cam", back) - back
        wait_for(lambda: source.state == CameraState.STREAMING, 2, "streaming again", details=source.status)
        assert source.reconnects >= 1
    finally:
        source.stop()
    return first, again


def test_hls_from_local_segments_flows_and_reconnects_after_the_sender_restarts(tmp_path: Path) -> None:
    sender = PeerProcess("daemon.testing.stream_sender", "--kind", "hls", "--dir", str(tmp_path)).start()
    server = HttpCamera(tmp_path).start()
    try:
        playlist = tmp_path / "live.m3u8"
        wait_for(lambda: playlist.is_file() and playlist.read_text().count("#EXTINF") >= 2, 10, "two segments")
        # An encoder that stops leaves its last playlist behind; a fresh pipeline would replay its last segments
        # (docs/cameras.md). Here the origin drops it, as one that expires stale playlists does: 404 until the
        # sender is back.
        first, again = stream_until_the_sender_restarts(server.url("/live.m3u8"), sender, 8, 10,
                                                        down=CameraState.BACKOFF, after_kill=playlist.unlink)
    finally:
        sender.close()
        server.close()
    print(f"HLS: first frame {first:.2f} s after start, again {again:.2f} s after the sender restarted")


def test_srt_flows_and_reconnects_after_the_sender_restarts() -> None:
    sender = PeerProcess("daemon.testing.stream_sender", "--kind", "srt").start()
    try:
        first, again = stream_until_the_sender_restarts(f"srt://127.0.0.1:{sender.port}", sender, 4, 5)
    finally:
        sender.close()
    print(f"SRT: first frame {first:.2f} s after start, again {again:.2f} s after the sender restarted")


def test_rtmp_flows_and_reconnects_after_the_publisher_restarts() -> None:
    """nginx's RTMP module relays a local GStreamer publisher; argusd plays it."""
    server = PeerProcess("daemon.testing.rtmp_server").start()
    url = f"rtmp://127.0.0.1:{server.port}/live/cam"
    sender = PeerProcess("daemon.testing.stream_sender", "--kind", "rtmp", "--url", url)
    try:
        sender.start()
        # The server ends the stream with its publisher (backoff), then accepts players and waits for one.
        first, again = stream_until_the_sender_restarts(url, sender, 4, 8, down=CameraState.BACKOFF)
    finally:
        sender.close()
        server.close()
    print(f"RTMP: first frame {first:.2f} s after start, again {again:.2f} s after the publisher restarted")
