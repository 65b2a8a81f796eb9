"""Broken sources fail alone, with a clear (redacted) error; files loop or finish; timing keys validated."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from tests.support.assets import free_port
from tests.support.cameras import Recorder, camera, largest_gap, make_clip
from tests.support.polling import wait_for
from tests.support.rtsp import RtspServer, serving

from daemon.config.models import CameraConfig
from daemon.sources.supervisor import CameraState


def test_bad_sources_each_fail_alone_while_the_good_camera_streams(module_rtsp_server: RtspServer,
                                                                   tmp_path: Path) -> None:
    random_bytes = tmp_path / "random.mp4"
    random_bytes.write_bytes(os.urandom(256 * 1024))
    recorder = Recorder()
    configs = [
        camera("good", module_rtsp_server.url),
        camera("wrong-path", module_rtsp_server.url.replace("/cam", "/no-such-path")),
        camera("refused", f"rtsp://127.0.0.1:{free_port()}/cam"),
        camera("random-bytes", random_bytes.as_uri()),
        camera("missing-file", (tmp_path / "missing.mp4").as_uri()),
    ]
    sources = {config.id: recorder.source(config) for config in configs}
    for source in sources.values():
        source.start()
    try:
        wait_for(lambda: sources["good"].state == CameraState.STREAMING, 10, "the good camera to stream",
                 details=sources["good"].status)
        started = time.monotonic()
        time.sleep(4.0)  # several reconnect attempts of the live ones
        expected = {
            "wrong-path": (CameraState.BACKOFF, "Not Found"),
            "refused": (CameraState.BACKOFF, "Could not open resource"),
            "random-bytes": (CameraState.FAILED, "Could not determine type of stream"),
            "missing-file": (CameraState.FAILED, "file not found"),
        }
        retrying = {CameraState.BACKOFF.value, CameraState.STARTING.value}  # a live one cycles between them
        for camera_id, (state, error) in expected.items():
            status = sources[camera_id].status()
            assert status["state"] in (retrying if state == CameraState.BACKOFF else {state.value}), status
            assert error in status["last_error"], status
            assert status["frames_received"] == 0
        assert sources["wrong-path"].reconnects >= 2 and sources["refused"].reconnects >= 2  # still retrying
        assert sources["random-bytes"].reconnects == 0  # a file does not heal: no retry loop
        good = sources["good"]
        assert good.state == CameraState.STREAMING and good.reconnects == 0 and good.last_error is None
        gap = largest_gap(recorder.frame_times("good"), started, time.monotonic())
        assert gap < 1 / good.config.fps + 1.0, f"good camera had a {gap:.2f} s gap"
    finally:
        for source in sources.values():
            source.stop()


@pytest.mark.parametrize("auth", ["basic", "digest"])
def test_credentials_never_reach_errors_status_or_logs(auth: str, caplog: pytest.LogCaptureFixture) -> None:
    """The camera asks for HTTP Basic or Digest credentials: the right ones stream, wrong ones give one line."""
    password = "s3cr#t@pass"
    with serving("--credentials", f"viewer:{password}", "--auth", auth) as secured:
        caplog.set_level(logging.DEBUG, logger="daemon")
        recorder = Recorder()
        quoted = password.replace("#", "%23").replace("@", "%40")
        right = recorder.source(camera("right", secured.url.replace("rtsp://", f"rtsp://viewer:{quoted}@")))
        wrong = recorder.source(camera("wrong", secured.url.replace("rtsp://", "rtsp://viewer:wrongpass@")))
        # An unencoded '@' in a password: the kind of URL an operator pastes (the server rejects it).
        pasted = recorder.source(camera("pasted", secured.url.replace("rtsp://", "rtsp://viewer:bad@word@")))
        sources = (right, wrong, pasted)
        for source in sources:
            source.start()
        wait_for(lambda: right.state == CameraState.STREAMING, 10, "the right credentials to stream",
                 details=right.status)
        wait_for(lambda: wrong.last_error is not None and pasted.last_error is not None, 10,
                 "the wrong and the pasted credentials to fail")
        # It cycles backoff -> starting every 0.2 s, so its recorded transitions are what is asserted.
        wrong_states = [(state, error) for camera_id, state, error, _ in recorder.states if camera_id == "wrong"]
        assert any(state == CameraState.BACKOFF and "Unauthorized" in (error or "") for state, error in wrong_states)
        assert all(state != CameraState.STREAMING for state, _ in wrong_states)
        secured.kill()  # the right camera now logs its own disconnect and refused reconnects
        wait_for(lambda: right.state == CameraState.BACKOFF, 5, "the right camera to back off")
        for source in sources:
            source.stop()
        texts = [*(str(source.status()) for source in sources), caplog.text,
                 *(str(error) for *_, error, _ in recorder.states)]
        for text in texts:
            for secret in (password, quoted, "wrongpass", "bad@word", "word@"):
                assert secret not in text
        assert "rtsp://***@127.0.0.1" in caplog.text


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 1-second H.264 MP4 (20 frames at 20 fps)."""
    return make_clip(tmp_path_factory.mktemp("clip") / "one-second.mp4")


def test_file_without_loop_finishes(short_clip: Path) -> None:
    recorder = Recorder()
    source = recorder.source(camera("clip", short_clip.as_uri(), fps=20))
    source.start()
    wait_for(lambda: source.state == CameraState.FINISHED, 10, "the clip to finish", details=source.status)
    assert 15 <= recorder.count("clip") <= 20
    assert source.done and source.reconnects == 0
    source.stop()


def test_file_with_loop_keeps_playing_without_reconnecting(short_clip: Path) -> None:
    recorder = Recorder()
    source = recorder.source(camera("clip", short_clip.as_uri(), fps=20, loop=True))
    source.start()
    try:
        wait_for(lambda: recorder.count("clip") >= 50, 10, "2.5 plays of the clip", details=source.status)
        assert source.state == CameraState.STREAMING and source.reconnects == 0
        times = recorder.frame_times("clip")
        assert largest_gap(times, times[0], times[-1]) < 0.5  # the loop seam is seamless
    finally:
        source.stop()


@pytest.mark.parametrize(("settings", "message"), [
    ({"fps": 1, "watchdog_s": 0.5}, "must exceed the frame interval"),
    ({"backoff_initial_s": 5, "backoff_max_s": 1}, "backoff_max_s must be at least backoff_initial_s"),
    ({"start_timeout_s": 0}, "greater than 0"),
])
def test_camera_timing_keys_are_validated(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CameraConfig(id="cam", url="test://", **settings)
