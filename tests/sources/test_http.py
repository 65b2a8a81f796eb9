"""HTTP cameras against a real multipart server on loopback (daemon/testing/http_camera.py): MJPEG is live
(frames at once, no preroll buffering), survives the server restarting, and a 401 or a web page gives one
clear line; a finite file over HTTP plays once like a file instead of reconnecting."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.support.cameras import Recorder, camera, make_clip
from tests.support.http_camera import HttpCamera
from tests.support.polling import wait_for

from daemon.sources.supervisor import CameraState


@pytest.fixture
def http_camera(tmp_path: Path) -> Iterator[HttpCamera]:
    server = HttpCamera(tmp_path).start()
    try:
        yield server
    finally:
        server.close()


def test_mjpeg_frames_flow_within_2s_and_survive_the_server_restarting(http_camera: HttpCamera) -> None:
    recorder = Recorder()
    source = recorder.source(camera("mjpeg", http_camera.url(), width=160))
    started = time.monotonic()
    source.start()
    try:
        wait_for(lambda: recorder.count("mjpeg") >= 1, 2.0, "a first MJPEG frame within 2 s", details=source.status)
        first_in = recorder.frame_times("mjpeg")[0] - started
        wait_for(lambda: recorder.count("mjpeg") >= 10, 5, "ten frames", details=source.status)
        image = recorder.latest["mjpeg"].image
        assert image.shape == (120, 160, 3)  # scaled in GStreamer from the camera's 320x240
        blue, green, red = np.median(image.reshape(-1, 3), axis=0)  # the camera's background is pure blue
        assert blue > 200 and green < 60 and red < 60, (blue, green, red)
        assert source.state == CameraState.STREAMING and source.reconnects == 0

        http_camera.kill()
        wait_for(lambda: source.state == CameraState.BACKOFF, 5, "backoff after the server died", details=source.status)
        time.sleep(1.0)
        recovered_in = recorder.seconds_to_frames("mjpeg", http_camera.start, source)
        assert recovered_in < 2.0, f"frames again {recovered_in:.2f} s after the server restarted"
        assert source.reconnects >= 1
    finally:
        source.stop()
    print(f"first MJPEG frame {first_in:.2f} s after start; again {recovered_in:.2f} s after the restart")


@pytest.mark.parametrize("auth", ["basic", "digest"])
def test_401_and_a_web_page_each_give_one_line_without_the_password(auth: str, tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """The camera asks for Basic or Digest credentials: the URL's right ones stream, wrong or missing ones
    give one 401 line, and a page where the stream should be gives one line naming its content type."""
    (tmp_path / "index.html").write_text("<html><body>camera login</body></html>")
    caplog.set_level(logging.DEBUG, logger="daemon")
    server = HttpCamera(tmp_path, "--credentials", "admin:r1ght-pass", "--auth", auth).start()
    recorder = Recorder()
    configs = {
        "right": server.url(userinfo="admin:r1ght-pass"),
        "wrong": server.url(userinfo="admin:wr0ng-pass"),
        "none": server.url(),
        "page": server.url("/index.html", userinfo="admin:r1ght-pass"),
    }
    sources = [recorder.source(camera(name, url)) for name, url in configs.items()]
    for source in sources:
        source.start()
    try:
        wait_for(lambda: recorder.count("right") >= 3, 5, "the right credentials to stream")
        wait_for(lambda: all(recorder.errors(name) for name in ("wrong", "none", "page")), 5, "three errors")
    finally:
        for source in sources:
            source.stop()
        server.close()
    assert recorder.errors("wrong") == [f"HTTP 401 Unauthorized from http://***@127.0.0.1:{server.port}/mjpeg: "
                                        "wrong credentials (user:password@ in the URL)"]
    assert recorder.errors("none") == [f"HTTP 401 Unauthorized from http://127.0.0.1:{server.port}/mjpeg: "
                                       "no credentials in the URL (user:password@ in the URL)"]
    assert recorder.errors("page") == [f"http://***@127.0.0.1:{server.port}/index.html serves 'text/html', not "
                                       "video: point the camera at its stream URL (MJPEG, a video file or an "
                                       ".m3u8 playlist), not a page"]
    assert recorder.count("wrong") == recorder.count("none") == recorder.count("page") == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("401" in line for line in warnings) == 2, warnings  # each logged once, not once per retry
    assert all("\n" not in line for line in warnings)
    assert "pass" not in caplog.text.replace("(user:password@", "")


def test_a_file_over_http_plays_once_like_a_file(tmp_path: Path) -> None:
    """Behind Digest credentials too: they reach uridecodebin's souphttpsrc from the URL."""
    make_clip(tmp_path / "clip.mp4")
    server = HttpCamera(tmp_path, "--credentials", "viewer:f1le-pass", "--auth", "digest").start()
    recorder = Recorder()
    source = recorder.source(camera("clip", server.url("/clip.mp4", userinfo="viewer:f1le-pass"), fps=20))
    source.start()
    try:
        wait_for(lambda: source.state == CameraState.FINISHED, 10, "the clip to finish", details=source.status)
    finally:
        source.stop()
        server.close()
    assert 15 <= recorder.count("clip") <= 20
    assert source.reconnects == 0 and source.last_error is None


def test_a_stream_without_a_length_is_live(http_camera: HttpCamera) -> None:
    """MPEG-TS sent without a Content-Length: frames flow as they arrive, and its end is a camera that went
    away (reconnect), not a file that finished."""
    make_clip(http_camera.root / "clip.ts", frames=75, fps=15, size=(320, 240), muxer="mpegtsmux")
    recorder = Recorder()
    source = recorder.source(camera("ts", http_camera.url("/stream/clip.ts")))
    source.start()
    try:
        wait_for(lambda: recorder.count("ts") >= 10, 5, "ten frames", details=source.status)
        wait_for(lambda: source.reconnects >= 1, 10, "a reconnect after the stream ended", details=source.status)
    finally:
        source.stop()
    assert CameraState.FINISHED not in [state for _, state, _, _ in recorder.states]
    assert "disconnected: the source ended its stream" in recorder.errors("ts")
