"""A camera's supervisor: the state machine that runs one pipeline attempt after another, watches its frames,
and decides when to report the camera streaming, stalled, backing off, failed or finished.

It knows nothing of GStreamer: each attempt is a ``PipelineRun`` made fresh by a factory (the GStreamer one
is in daemon/sources/pipeline.py), so the state machine can be driven by a scripted run in tests.
"""

from __future__ import annotations

import enum
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from daemon.config.models import CameraConfig
from daemon.core.backoff import Backoff
from daemon.core.redact import redact_text, redact_url, url_secrets

log = logging.getLogger(__name__)

# A run that streamed this long shows the camera healthy again: its next failure backs off from the start.
STABLE_STREAM_S = 10.0
POLL_S = 0.2  # how long one poll of a run waits for a message, hence the watchdog's resolution
# While in backoff, a camera whose server is unreachable is probed this often with a bare TCP connect (no
# pipeline, no RTSP session), and rebuilt as soon as it answers, so a returning camera does not wait out a
# long backoff; a camera that answers but still fails keeps its backoff, so it is never hammered.
PROBE_INTERVAL_S = 0.5
PROBE_TIMEOUT_S = 0.3
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443, "rtmp": 1935}  # TCP ones: SRT is UDP


class CameraState(enum.StrEnum):
    STARTING = "starting"  # building a pipeline and waiting for its first frame
    STREAMING = "streaming"  # frames arrive
    STALLED = "stalled"  # frames stopped for watchdog_s; stays until frames flow again or an attempt errors
    BACKOFF = "backoff"  # a live source is down (last_error says why); waiting to reconnect
    FAILED = "failed"  # gave up: an error retrying cannot fix (file, missing element); a reload retries it
    FINISHED = "finished"  # a file source that reached its end and does not loop
    STOPPED = "stopped"


class Ending(enum.Enum):
    """Why one pipeline run ended."""

    STOP = "stop"  # stop() was called
    FINISHED = "finished"  # a file reached its end and does not loop
    ERROR = "error"  # the pipeline reported an error, or a live source ended its stream
    TIMEOUT = "timeout"  # no frame for watchdog_s, or no first frame within start_timeout_s
    BROKEN = "broken"  # the pipeline cannot even be built: retrying cannot help


class MessageKind(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    END_OF_STREAM = "eos"


@dataclass(frozen=True, slots=True)
class RunMessage:
    kind: MessageKind
    text: str = ""  # unredacted: the supervisor redacts before it keeps or logs it


class RunStartError(Exception):
    """A run could not start. ``broken``: retrying cannot help; ``quiet``: record the reason, do not log it
    (the supervisor logs the outcome)."""

    def __init__(self, text: str, broken: bool = False, quiet: bool = False) -> None:
        super().__init__(text)
        self.broken = broken
        self.quiet = quiet


class PipelineRun(Protocol):
    """One attempt at running a camera's pipeline; it decodes on its own threads and keeps the newest frame
    for whoever pulls it. ``live``, once started: its end or error is a disconnect to reconnect (False: a
    finite file)."""

    live: bool

    def start(self) -> None:
        """Build and start the pipeline; RunStartError when it cannot."""

    def poll(self, timeout_s: float) -> RunMessage | None:
        """The next error, warning or end of stream, waiting up to ``timeout_s``; None when none came."""

    def rewind(self) -> bool:
        """Seek a file back to its start (looping); False when it cannot."""

    def close(self) -> None:
        """Release everything the run held; no thread, socket or reference survives it."""


@dataclass(frozen=True, slots=True)
class _RunResult:
    ending: Ending
    streamed_s: float  # how long frames flowed in this run


def is_live(url: str) -> bool:
    return urlsplit(url).scheme.lower() not in ("file",)


def probe_address(url: str) -> tuple[str, int] | None:
    """Where a network camera listens, for the reachability probe; None for other sources."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return parts.hostname, port or DEFAULT_PORTS[scheme]


def resolve(address: tuple[str, int]) -> tuple[str, int] | None:
    """The address with its host looked up once (the probe itself must not wait on DNS); None if unknown."""
    try:
        found = socket.getaddrinfo(address[0], address[1], type=socket.SOCK_STREAM)
    except OSError:
        return None
    return (str(found[0][4][0]), address[1]) if found else None


def reachable(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


class CameraSupervisor:
    """Runs one camera's pipeline attempts on a supervisor thread.

    A live source is reconnected after an error, an end of stream or a watchdog stall, with jittered
    exponential backoff. A file source loops (rewinds) or finishes; its errors are final (FAILED) until a
    reload. The callbacks run on the supervisor thread. Runs report the frames that reached them through
    ``frames_arrived``.
    """

    def __init__(
        self,
        config: CameraConfig,
        new_run: Callable[[], PipelineRun],
        on_state: Callable[[str, CameraState, str | None], None] | None = None,
        on_reconnect: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self._new_run = new_run
        self._on_state = on_state
        self._on_reconnect = on_reconnect
        self._secrets = url_secrets(config.url)
        self.live = is_live(config.url)
        self.offline = config.offline
        self.state = CameraState.STOPPED
        self.state_since = time.time()
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self._logged_error: str | None = None  # the error last logged since frames last flowed
        self.frames_delivered = 0
        self.reconnects = 0
        self.stalls = 0
        self.next_attempt_at: float | None = None
        self._last_frame_monotonic = 0.0
        self._unreachable = False  # the reachability probe's last answer (network cameras, in backoff)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def camera_id(self) -> str:
        return self.config.id

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._supervise, name=f"camera-{self.camera_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("camera %s: pipeline did not stop within %.0f s", self.camera_id, timeout)
            self._thread = None
        self._set_state(CameraState.STOPPED)

    @property
    def stopping(self) -> bool:
        """stop() was called: no frame should be pulled any more."""
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        """No frame will come any more: finished, stopped, or failed for good."""
        return self.state in (CameraState.FINISHED, CameraState.STOPPED, CameraState.FAILED)

    def frames_arrived(self, count: int) -> None:
        """Called by a run (from ``poll``, on this supervisor's thread) with the frames that reached it since
        its previous call: the watchdog's evidence that the camera streams."""
        self.frames_delivered += count
        self._last_frame_monotonic = time.monotonic()

    def status(self) -> dict[str, object]:
        """A JSON-ready view of the supervisor; the URL and error text are already redacted."""
        last_frame = self._last_frame_monotonic
        waiting = self.state in (CameraState.BACKOFF, CameraState.STALLED) and self.next_attempt_at
        return {
            "id": self.camera_id,
            "url": redact_url(self.config.url),
            "state": self.state.value,
            "state_since": round(self.state_since, 3),
            "last_error": self.last_error,
            "last_error_at": round(self.last_error_at, 3) if self.last_error_at else None,
            "last_frame_age_s": round(time.monotonic() - last_frame, 3) if last_frame else None,
            "next_attempt_in_s": round(max(0.0, self.next_attempt_at - time.time()), 3)
            if waiting and self.next_attempt_at else None,
            "fps_target": self.config.fps,
            "frames_received": self.frames_delivered,
            "reconnects": self.reconnects,
            "stalls": self.stalls,
        }

    # -- the state machine ---------------------------------------------------------------------------

    def _set_state(self, state: CameraState) -> None:
        if state == self.state or (self._stop.is_set() and state != CameraState.STOPPED):
            return
        previous, self.state = self.state, state
        self.state_since = time.time()
        if state == CameraState.STALLED and previous == CameraState.STREAMING:
            self.stalls += 1
        if self._on_state is not None:
            self._on_state(self.camera_id, state, self.last_error)

    def _record_error(self, text: str) -> bool:
        """Keep the error, redacted; True when it is news since frames last flowed (worth a log line)."""
        text = redact_text(text, self._secrets)
        news = text != self._logged_error
        self.last_error, self.last_error_at, self._logged_error = text, time.time(), text
        return news

    def _log_error(self, text: str) -> None:
        """Record an error; log it once per distinct text, so a camera down for a day is not a log flood."""
        if self._record_error(text):
            log.warning("camera %s: %s", self.camera_id, self.last_error)
        else:
            log.debug("camera %s: again: %s", self.camera_id, self.last_error)

    def _supervise(self) -> None:
        config = self.config
        backoff = Backoff(config.backoff_initial_s, config.backoff_max_s)
        log.info("camera %s: starting %s", self.camera_id, redact_url(config.url))
        while not self._stop.is_set():
            run: PipelineRun | None = None
            try:
                run = self._new_run()
                result = self._run_once(run)
            except Exception:  # a bug in one run must not end this camera's supervision: retry as after an error
                log.exception("camera %s: unexpected error; reconnecting", self.camera_id)
                self._record_error("internal error (see the log)")
                result = _RunResult(Ending.ERROR, 0.0)
            finally:
                if run is not None:
                    try:
                        run.close()
                    except Exception:  # a failed teardown must not end supervision either
                        log.exception("camera %s: pipeline teardown failed", self.camera_id)
            if result.ending == Ending.STOP:
                return
            if result.ending == Ending.FINISHED:
                log.info("camera %s: finished (end of file)", self.camera_id)
                self._set_state(CameraState.FINISHED)
                return
            if result.ending == Ending.BROKEN or not self.live:
                # A file that cannot be read or decoded, or a missing element, will not heal by itself.
                log.error("camera %s: failed: %s (fix it, then reload)", self.camera_id, self.last_error)
                self._set_state(CameraState.FAILED)
                return
            if result.streamed_s >= STABLE_STREAM_S:
                backoff.reset()
            wait = backoff.next_wait()
            self.next_attempt_at = time.time() + wait
            if result.ending == Ending.ERROR or self.state != CameraState.STALLED:
                self._set_state(CameraState.BACKOFF)  # a silent stall stays reported until frames flow again
            self.reconnects += 1
            if self._on_reconnect is not None:
                self._on_reconnect(self.camera_id)
            log.debug("camera %s: reconnecting in %.1f s", self.camera_id, wait)
            if self._wait_or_return(wait):
                return

    def _wait_or_return(self, wait: float) -> bool:
        """Wait out the backoff, or less once an unreachable camera answers again; True when stopped.

        The probe's last answer is kept across attempts: a camera whose server was down when the previous
        wait ended, and answers now, is rebuilt at once, even if it came back during the failed attempt. A
        camera that answers but fails is probed once per wait, then left alone for the rest of it."""
        target = probe_address(self.config.url)
        address = resolve(target) if target is not None else None
        deadline = time.monotonic() + wait
        while True:
            if address is not None:
                if reachable(address):
                    if self._unreachable:
                        self._unreachable = False
                        log.debug("camera %s: answers again; reconnecting now", self.camera_id)
                        return False
                    address = None  # it answers: what fails is not reachability
                else:
                    self._unreachable = True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._stop.wait(min(PROBE_INTERVAL_S, remaining) if address else remaining):
                return True

    def _run_once(self, run: PipelineRun) -> _RunResult:
        """Start one run and watch its frames and messages until it ends."""
        if self.state != CameraState.STALLED:
            self._set_state(CameraState.STARTING)
        started = time.monotonic()  # a frame after this is this run's; the age keeps growing across runs
        try:
            run.start()
        except RunStartError as failure:
            if failure.quiet:
                self._record_error(str(failure))
            else:
                self._log_error(str(failure))
            return _RunResult(Ending.BROKEN if failure.broken else Ending.ERROR, 0.0)
        self.live = run.live  # an http:// URL turns out to be a finite file, or a live stream, once asked
        first_frame = 0.0
        warning: str | None = None
        while not self._stop.is_set():
            polled_at = time.monotonic()
            message = run.poll(POLL_S)
            now = time.monotonic()
            if message is None and now - polled_at < POLL_S / 2:
                # A run whose bus cannot wait (no file descriptor left, say) must not spin this thread.
                self._stop.wait(POLL_S - (now - polled_at))
                now = time.monotonic()
            last_frame = self._last_frame_monotonic
            if last_frame > started and not first_frame:
                first_frame = last_frame
                log.info("camera %s: streaming (first frame after %.2f s)", self.camera_id, last_frame - started)
                self._logged_error = None
                self._set_state(CameraState.STREAMING)
            streamed_s = (last_frame - first_frame) if first_frame else 0.0
            if message is not None and message.kind == MessageKind.WARNING:
                warning = message.text
                log.debug("camera %s: %s", self.camera_id, redact_text(warning, self._secrets))
            elif message is not None and message.kind == MessageKind.ERROR:
                self._log_error(message.text)
                return _RunResult(Ending.ERROR, streamed_s)
            elif message is not None:  # end of stream
                if not self.live:
                    if not self.config.loop:
                        return _RunResult(Ending.FINISHED, streamed_s)
                    if not run.rewind():
                        self._log_error("cannot seek back to the start of the file to loop it")
                        return _RunResult(Ending.ERROR, streamed_s)
                    continue
                reason = f"; {warning}" if warning else ""
                self._log_error(f"disconnected: the source ended its stream{reason}")
                return _RunResult(Ending.ERROR, streamed_s)
            # Offline, frames come at the detector's pace: a slow model is not a hung file.
            if first_frame and not self.offline and now - last_frame > self.config.watchdog_s:
                if self._record_error(f"stalled: no frame for {now - last_frame:.1f} s "
                                      f"(watchdog_s={self.config.watchdog_s:g})"):
                    log.warning("camera %s: %s; reconnecting", self.camera_id, self.last_error)
                self._set_state(CameraState.STALLED)
                return _RunResult(Ending.TIMEOUT, streamed_s)
            if not first_frame and now - started > self.config.start_timeout_s:
                if self.state != CameraState.STALLED:  # a stalled camera that is still silent stays stalled
                    self._log_error(f"no first frame within {self.config.start_timeout_s:g} s of starting"
                                    f"{'; ' + warning if warning else ''}")
                return _RunResult(Ending.TIMEOUT, 0.0)
        return _RunResult(Ending.STOP, 0.0)
