"""The camera supervisor's state machine, driven by scripted pipeline runs (no GStreamer): what each way a
run can end does to the camera's state, its reconnects and its backoff."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from daemon.config.models import CameraConfig
from daemon.sources.supervisor import CameraState, CameraSupervisor, MessageKind, RunStartError, RunMessage, is_live


class ScriptedRun:
    """A run that streams ``frames`` frames at ``interval_s`` on its own thread, then ends with ``ending``
    (a message kind, or None: it goes silent)."""

    def __init__(self, supervisor: Callable[[], CameraSupervisor], frames: int, interval_s: float = 0.02,
                 ending: MessageKind | None = MessageKind.ERROR, fail: RunStartError | None = None) -> None:
        self._supervisor = supervisor
        self._frames = frames
        self._interval_s = interval_s
        self._ending = ending
        self._fail = fail
        self._done = threading.Event()
        self._closed = threading.Event()
        self.rewinds = 0
        self.closed = False
        self._streamed = self._reported = 0  # frames streamed, and reported to the supervisor from poll()

    @property
    def live(self) -> bool:
        return is_live(self._supervisor().config.url)

    def start(self) -> None:
        if self._fail is not None:
            raise self._fail
        threading.Thread(target=self._stream, daemon=True).start()

    def _stream(self) -> None:
        for _ in range(self._frames):
            if self._closed.wait(self._interval_s):
                return
            self._streamed += 1
        self._done.set()

    def poll(self, timeout_s: float) -> RunMessage | None:
        done = self._done.wait(timeout_s)
        streamed = self._streamed
        if streamed > self._reported:  # as a GStreamer run does: frames are reported on the supervisor thread
            self._supervisor().frames_arrived(streamed - self._reported)
            self._reported = streamed
        if done and self._ending is not None:
            ending, self._ending = self._ending, None
            return RunMessage(ending, "scripted: server went away" if ending == MessageKind.ERROR else "")
        return None

    def rewind(self) -> bool:
        self.rewinds += 1
        return False

    def close(self) -> None:
        self.closed = True
        self._closed.set()


class Harness:
    def __init__(self, url: str, runs: list[dict], **camera: object) -> None:
        self.states: list[CameraState] = []
        self.runs: list[ScriptedRun] = []
        self._scripts = iter(runs)
        config = CameraConfig(id="cam", url=url, fps=25, backoff_initial_s=0.05, backoff_max_s=0.2, **camera)
        self.supervisor = CameraSupervisor(config, self._new_run, lambda _id, state, _error: self.states.append(state))

    def _new_run(self) -> ScriptedRun:
        script = next(self._scripts, {"frames": 0, "ending": MessageKind.ERROR})
        run = ScriptedRun(lambda: self.supervisor, **script)
        self.runs.append(run)
        return run

    def wait_for(self, state: CameraState, timeout: float = 5.0, times: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.states.count(state) >= times:
                return
            time.sleep(0.01)
        raise AssertionError(f"not {times}x {state.value}: {[s.value for s in self.states]}")


def test_a_live_camera_that_errors_backs_off_reconnects_and_streams_again() -> None:
    harness = Harness("rtsp://127.0.0.1:8554/cam", [{"frames": 5}, {"frames": 0}, {"frames": 1000}])
    harness.supervisor.start()
    try:
        harness.wait_for(CameraState.STREAMING, times=2)
    finally:
        harness.supervisor.stop()
    states = [s.value for s in harness.states]
    assert states[:6] == ["starting", "streaming", "backoff", "starting", "backoff", "starting"], states
    assert states.count("streaming") == 2 and states[-1] == "stopped", states
    assert harness.supervisor.reconnects == 2
    assert harness.supervisor.last_error == "scripted: server went away"
    assert all(run.closed for run in harness.runs), "every run is closed, the last one by stop()"


def test_frames_that_stop_make_the_camera_stalled_until_they_flow_again() -> None:
    harness = Harness("rtsp://127.0.0.1:8554/cam", [{"frames": 10, "ending": None}, {"frames": 0, "ending": None},
                                                    {"frames": 1000}], watchdog_s=0.3, start_timeout_s=0.3)
    harness.supervisor.start()
    try:
        harness.wait_for(CameraState.STALLED)
        harness.wait_for(CameraState.STREAMING, times=2)
    finally:
        harness.supervisor.stop()
    states = [s.value for s in harness.states]
    # A silent second attempt keeps the camera reported stalled (not starting) until frames flow again.
    assert states[:4] == ["starting", "streaming", "stalled", "streaming"], states
    assert harness.supervisor.stalls == 1
    assert harness.supervisor.last_error.startswith("stalled: no frame for"), harness.supervisor.last_error


def test_a_file_finishes_at_its_end_and_fails_for_good_on_an_error() -> None:
    finished = Harness("file:///recordings/a.mp4", [{"frames": 3, "ending": MessageKind.END_OF_STREAM}])
    finished.supervisor.start()
    finished.wait_for(CameraState.FINISHED)
    assert finished.supervisor.done and finished.supervisor.reconnects == 0

    failed = Harness("file:///recordings/b.mp4", [{"frames": 3, "ending": MessageKind.ERROR}])
    failed.supervisor.start()
    failed.wait_for(CameraState.FAILED)
    assert failed.supervisor.done and failed.supervisor.reconnects == 0 and len(failed.runs) == 1


def test_a_looping_file_that_cannot_rewind_fails() -> None:
    harness = Harness("file:///recordings/a.mp4", [{"frames": 3, "ending": MessageKind.END_OF_STREAM}], loop=True)
    harness.supervisor.start()
    harness.wait_for(CameraState.FAILED)
    assert harness.runs[0].rewinds == 1
    assert harness.supervisor.last_error == "cannot seek back to the start of the file to loop it"


def test_a_pipeline_that_cannot_be_built_fails_without_retrying_even_when_live() -> None:
    harness = Harness("rtsp://127.0.0.1:8554/cam",
                      [{"frames": 0, "fail": RunStartError("element 'rtspsrc' is not installed", broken=True)}])
    harness.supervisor.start()
    harness.wait_for(CameraState.FAILED)
    assert len(harness.runs) == 1 and harness.supervisor.reconnects == 0
    assert harness.supervisor.last_error == "element 'rtspsrc' is not installed"


def test_credentials_in_errors_are_redacted() -> None:
    harness = Harness("rtsp://admin:hunter2@127.0.0.1:8554/cam",
                      [{"frames": 0, "fail": RunStartError("could not open rtsp://admin:hunter2@127.0.0.1:8554/cam")}])
    harness.supervisor.start()
    try:
        harness.wait_for(CameraState.BACKOFF)
    finally:
        harness.supervisor.stop()
    assert "hunter2" not in (harness.supervisor.last_error or "") and "hunter2" not in str(harness.supervisor.status())


class ImpatientRun(ScriptedRun):
    """A run whose bus cannot wait (out of descriptors, say): every poll returns at once."""

    polls = 0

    def poll(self, timeout_s: float) -> RunMessage | None:
        ImpatientRun.polls += 1
        return None


def test_a_run_whose_polls_return_at_once_does_not_spin_the_supervisor() -> None:
    config = CameraConfig(id="cam", url="rtsp://127.0.0.1:8554/cam", start_timeout_s=1.0)
    supervisor = CameraSupervisor(config, lambda: ImpatientRun(lambda: supervisor, frames=0))
    ImpatientRun.polls = 0
    supervisor.start()
    time.sleep(1.0)
    supervisor.stop()
    assert ImpatientRun.polls <= 8, f"{ImpatientRun.polls} polls in a second: the supervisor spins"
