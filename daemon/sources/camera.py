"""A camera source: its supervisor (daemon/sources/supervisor.py) running GStreamer pipelines
(daemon/sources/pipeline.py), one fresh pipeline per attempt."""

from __future__ import annotations

from collections.abc import Callable

from daemon.config.models import CameraConfig
from daemon.core.types import Frame
from daemon.sources.pipeline import GstPipelineRun
from daemon.sources.supervisor import CameraState, CameraSupervisor


class CameraSource(CameraSupervisor):
    """Hands the camera's frames to ``on_frame`` (on GStreamer's streaming thread); the other callbacks
    run on the supervisor thread."""

    def __init__(
        self,
        config: CameraConfig,
        on_frame: Callable[[Frame], None],
        on_state: Callable[[str, CameraState, str | None], None] | None = None,
        on_rate_stats: Callable[[str, int, int], None] | None = None,
        on_reconnect: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(config, self._new_pipeline, on_state, on_reconnect)
        self._on_frame = on_frame
        self._on_rate_stats = on_rate_stats

    def _new_pipeline(self) -> GstPipelineRun:
        return GstPipelineRun(self.config, self._on_frame, self.frame_arrived, self._on_rate_stats)
