"""RTSP as cameras really are, against the project's GstRtspServer on loopback: H.265, UDP transport, a
camera that advertises audio too, and frames timed by the camera's own clock from its RTCP sender reports."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from tests.support.cameras import Recorder, camera, make_clip, pull_frames
from tests.support.polling import wait_for
from tests.support.rtsp import serving

from daemon.core.types import Frame
from daemon.sources.camera import CameraSource
from daemon.sources.supervisor import CameraState


def udp_sockets() -> int:
    """UDP sockets this test process holds (RTP/RTCP ports of a UDP RTSP session are among them)."""
    inodes = {link.readlink().name[len("socket:["):-1] for link in Path("/proc/self/fd").iterdir()
              if link.is_symlink() and str(link.readlink()).startswith("socket:[")}
    udp = {line.split()[9] for line in Path("/proc/net/udp").read_text().splitlines()[1:]}
    return len(inodes & udp)


def test_h265_decodes_to_the_right_size_and_colour_order(tmp_path: Path) -> None:
    """The camera serves an H.265 clip of colour bars; argusd's frame, scaled to 160x120 in GStreamer, matches
    OpenCV's (FFmpeg's) decode of that clip scaled the same way, and not its red/blue swap."""
    clip = make_clip(tmp_path / "bars.mp4", frames=30, fps=15, size=(320, 240), pattern="smpte",
                     encoder="x265enc speed-preset=ultrafast", muxer="h265parse ! mp4mux")
    capture = cv2.VideoCapture(str(clip))
    ok, reference = capture.read()
    capture.release()
    assert ok and reference.shape == (240, 320, 3)
    reference = cv2.resize(reference, (160, 120), interpolation=cv2.INTER_AREA).astype(np.int16)
    with serving("--codec", "h265", "--source", str(clip), "--width", "320", "--height", "240") as server:
        recorder = Recorder()
        source = recorder.source(camera("h265", server.url, width=160))
        source.start()
        try:
            wait_for(lambda: recorder.count("h265") >= 5, 10, "five H.265 frames", details=source.status)
            image = recorder.latest["h265"].image
        finally:
            source.stop()
    assert image.shape == (120, 160, 3)
    difference = np.abs(image.astype(np.int16) - reference).mean()
    swapped = np.abs(image[..., ::-1].astype(np.int16) - reference).mean()
    assert difference < 12 and swapped > 3 * difference, (difference, swapped)


@pytest.mark.parametrize("transport", ["udp", "auto", "tcp"])
def test_rtsp_transport_is_what_the_config_says(transport: str) -> None:
    with serving() as server:
        before = udp_sockets()
        recorder = Recorder()
        source = recorder.source(camera("cam", server.url, rtsp_transport=transport))
        source.start()
        try:
            wait_for(lambda: recorder.count("cam") >= 5, 10, f"five frames over {transport}", details=source.status)
            opened = udp_sockets() - before
        finally:
            source.stop()
    assert source.last_error is None and source.reconnects == 0
    if transport == "tcp":
        assert opened == 0  # interleaved in the RTSP connection
    else:
        assert opened >= 2, opened  # RTP and RTCP ports: auto tries UDP first, and UDP works on loopback


def test_a_camera_that_also_advertises_audio_streams_its_video_only() -> None:
    with serving("--audio") as server:
        recorder = Recorder()
        source = recorder.source(camera("cam", server.url, rtsp_transport="udp"))
        before = udp_sockets()
        source.start()
        try:
            wait_for(lambda: recorder.count("cam") >= 10, 10, "ten frames", details=source.status)
            opened = udp_sockets() - before
            assert source.state == CameraState.STREAMING
        finally:
            source.stop()
    assert source.last_error is None and source.reconnects == 0
    assert opened == 2, opened  # one RTP/RTCP pair: the audio stream is never set up


@pytest.mark.parametrize("offset_s", [30.0, -7200.0])
def test_clock_camera_times_frames_by_the_senders_clock(offset_s: float) -> None:
    """The sender's clock runs ``offset_s`` from this host's; once its first sender report arrives, frames
    carry the sender's time of their capture: within 50 ms of (arrival here + offset), the arrival being
    later than the capture by the few ms of encoding, loopback and decoding (a single frame's arrival can be
    later still on a loaded machine: the median is what is held to 50 ms)."""
    arrivals: list[tuple[float, float]] = []  # (host time of arrival, captured_at)
    lock = threading.Lock()

    def on_frame(frame: Frame) -> None:
        with lock:
            arrivals.append((time.time(), frame.captured_at))

    with serving("--clock-offset", str(offset_s), "--fps", "30") as server:
        source = CameraSource(camera("cam", server.url, fps=30, clock="camera"))
        pull_frames(source, on_frame)
        source.start()
        try:
            wait_for(lambda: abs(source.clock_offset_s() - offset_s) < 1.0, 15, "the first sender report",
                     details=source.status)
            reported_at = time.time()
            wait_for(lambda: sum(arrived > reported_at for arrived, _ in arrivals) >= 60, 10, "two more seconds")
            measured = source.clock_offset_s()
        finally:
            source.stop()
    with lock:
        lags = [arrived + offset_s - captured for arrived, captured in arrivals if arrived > reported_at]
    median = statistics.median(lags)
    print(f"offset {offset_s:+g} s: arrival + offset - captured_at median {median * 1000:.1f} ms, "
          f"range {min(lags) * 1000:.1f}..{max(lags) * 1000:.1f} ms over {len(lags)} frames; "
          f"metric reads {measured:+.3f} s")
    assert -0.005 < median < 0.05
    assert all(-0.01 < lag < 0.15 for lag in lags), (min(lags), max(lags))  # no frame keeps the host's time
    assert abs(measured - offset_s) < 0.05
