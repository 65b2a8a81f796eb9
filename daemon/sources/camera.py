"""A camera source: its supervisor (daemon/sources/supervisor.py) running GStreamer pipelines
(daemon/sources/pipeline.py), one fresh pipeline per attempt, and the newest frame of the current one for
whoever pulls it."""

from __future__ import annotations

from collections.abc import Callable

from daemon.config.models import CameraConfig
from daemon.core.types import Frame
from daemon.sources.pipeline import FrameCounts, GstPipelineRun
from daemon.sources.supervisor import CameraState, CameraSupervisor


class CameraSource(CameraSupervisor):
    """``pull_frame`` is for the one thread that consumes frames (inference); the callbacks run on the
    supervisor thread."""

    def __init__(
        self,
        config: CameraConfig,
        on_state: Callable[[str, CameraState, str | None], None] | None = None,
        on_counts: Callable[[str, FrameCounts], None] | None = None,
        on_reconnect: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(config, self._new_pipeline, on_state, on_reconnect)
        self._on_counts = on_counts
        self._run: GstPipelineRun | None = None

    def pull_frame(self, timeout_s: float) -> Frame | None:
        """The current pipeline's newest frame, waiting up to ``timeout_s``; None when none came (or between
        pipelines). A closed pipeline answers None at once."""
        run = self._run  # one read: the supervisor may replace it meanwhile
        return run.pull(timeout_s) if run is not None else None

    def clock_offset_s(self) -> float:
        """``clock: camera``: the camera's clock minus this host's as last measured (0 until the camera's first
        RTCP sender report); the metric argusd_camera_clock_offset_seconds reads it when scraped."""
        run = self._run
        return run.clock_offset_s if run is not None else 0.0

    def _new_pipeline(self) -> GstPipelineRun:
        self._run = GstPipelineRun(self.config, self.frames_arrived, self.frames_delivered, self._on_counts,
                                   self.clock_offset_s())
        return self._run
