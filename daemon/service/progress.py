"""Progress of an offline analysis (`argusd run --exit-when-done` on files with `realtime: false`): a tqdm bar
per file on a terminal, a log line per file every LOG_EVERY_S otherwise, and a summary table at the end.

The main loop calls update() every turn; it reads the cameras' counts at most once a second, so nothing is
added to the per-frame path."""

from __future__ import annotations

import logging
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import unquote, urlsplit

from tqdm import tqdm

from daemon.config.models import CameraConfig

log = logging.getLogger(__name__)

READ_EVERY_S = 1.0
LOG_EVERY_S = 10.0
DISCOVER_TIMEOUT_S = 5


@dataclass(slots=True)
class FileProgress:
    camera: CameraConfig
    total_frames: int | None  # None: the container does not say how long it is
    frames: int = 0  # analysed or skipped without motion: every frame the file gave at its fps
    events: int = 0
    finished: bool = False
    started_at: float = 0.0
    elapsed_s: float = 0.0

    @property
    def media_s(self) -> float:
        return self.frames / self.camera.fps

    @property
    def speed(self) -> float:
        """Seconds of recording analysed per second of wall time."""
        return self.media_s / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def line(self) -> str:
        if self.total_frames:
            done = min(self.frames / self.total_frames, 1.0)
            rate = self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0
            eta = f"ETA {(self.total_frames - self.frames) / rate:.0f} s" if rate > 0 and done < 1 else "done"
            position = f"{self.frames}/{self.total_frames} frames ({done:.0%})"
        else:
            position, eta = f"{self.frames} frames", "done" if self.finished else "ETA unknown"
        return f"{self.camera.id}: {position}, {self.speed:.1f}x real time, {eta}, {self.events} event(s)"


def file_frames(camera: CameraConfig) -> int | None:
    """The frames the file gives at the camera's fps, from its container's duration; None when unknown."""
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstPbutils", "1.0")
    from gi.repository import GLib, Gst, GstPbutils

    Gst.init(None)
    try:
        info = GstPbutils.Discoverer.new(DISCOVER_TIMEOUT_S * Gst.SECOND).discover_uri(camera.url)
    except GLib.Error as error:
        log.warning("camera %s: cannot read the length of %s: %s", camera.id,
                    unquote(urlsplit(camera.url).path), error.message)
        return None
    duration_ns = info.get_duration()
    return round(duration_ns / Gst.SECOND * camera.fps) if duration_ns > 0 else None


class OfflineProgress:
    def __init__(self, cameras: list[CameraConfig], read_status: Callable[[], list[dict]],
                 stream: TextIO = sys.stderr) -> None:
        self._read_status = read_status
        self._files = {c.id: FileProgress(c, file_frames(c)) for c in cameras if c.enabled and c.offline}
        self._bars: dict[str, tqdm] = {}
        if stream.isatty():
            # tqdm hides every bar on a terminal that reports no window size (0 rows); this falls back to 80x24.
            size = shutil.get_terminal_size()
            self._bars = {camera_id: tqdm(total=file.total_frames, desc=camera_id, unit="frame", position=row,
                                          file=stream, ncols=size.columns, nrows=size.lines)
                          for row, (camera_id, file) in enumerate(self._files.items())}
        self._read_at = 0.0
        self._logged_at = time.monotonic()

    @property
    def active(self) -> bool:
        return bool(self._files)

    def update(self, now_too: bool = False) -> None:
        """Read the counts if a second has passed (or ``now_too``), and show them."""
        now = time.monotonic()
        if now - self._read_at < READ_EVERY_S and not now_too:
            return
        self._read_at = now
        for status in self._read_status():
            file = self._files.get(status["id"])
            if file is None:
                continue
            file.started_at = file.started_at or now
            file.frames = status["frames_analysed"] + status["frames_skipped"]
            file.events = status["events"]
            if not file.finished:  # a finished file's speed is its whole run's
                file.elapsed_s = now - file.started_at
            file.finished = status["state"] in ("finished", "failed", "stopped")
            bar = self._bars.get(status["id"])
            if bar is not None:
                bar.update(file.frames - bar.n)
                bar.set_postfix_str(f"{file.speed:.1f}x real time, {file.events} event(s)", refresh=False)
                bar.refresh()
        if not self._bars and now - self._logged_at >= LOG_EVERY_S:
            self._logged_at = now
            for file in self._files.values():
                if not file.finished:
                    log.info("progress: %s", file.line())

    def finish(self, events_by_type: Callable[[str], dict[str, int]]) -> str:
        """The last counts, then a table: per file its frames, recording length, speed and events by type."""
        self.update(now_too=True)
        for bar in self._bars.values():
            bar.close()
        if not self._bars:
            for file in self._files.values():
                log.info("progress: %s", file.line())
        rows = [("camera", "frames", "duration", "speed", "events")]
        for camera_id, file in self._files.items():
            kinds = events_by_type(camera_id)
            rows.append((camera_id, str(file.frames), f"{file.media_s:.1f} s", f"{file.speed:.1f}x",
                         ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())) or "none"))
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
        return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                         for row in rows)
