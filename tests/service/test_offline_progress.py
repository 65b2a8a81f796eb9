"""`argusd run --exit-when-done` on a recording (`realtime: false`): progress lines in a log, a progress bar on
a terminal, a summary table with the file's frames, and `start_time` giving events the recording's times."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime
from pathlib import Path

import redis

from tests.support.assets import BIKES, REPO, argusd_command, require_asset
from tests.support.configs import daemon_config, detector_config, write_config
from tests.support.daemon import running_daemon

FRAMES = 100  # bikes.mp4: 10 s, analysed at 10 fps
START = "2024-05-01T08:30:00+02:00"


def _recording_config(tmp_path: Path, redis_url: str, stream: str, **camera: object) -> Path:
    return write_config(tmp_path / "argusd.yaml", daemon_config(
        [{"id": "bikes", "url": f"file://{require_asset(BIKES)}", "fps": 10, "realtime": False, **camera}],
        detector=detector_config(labels={"Normal": "person"}),
        redis={"url": redis_url, "stream": stream},
    ))


def test_a_log_gets_progress_lines_a_summary_table_and_events_timed_from_start_time(
        tmp_path: Path, redis_url: str, stream_key: str) -> None:
    config = _recording_config(tmp_path, redis_url, stream_key, start_time=START)
    with running_daemon(config, "--exit-when-done") as daemon:
        assert daemon.wait(180) == 0, daemon.tail()
    output = daemon.output()
    assert re.search(rf"progress: bikes: {FRAMES}/{FRAMES} frames \(100%\), \d+\.\dx real time, done, \d+ event",
                     output), output
    table = output[output.index("camera  "):].splitlines()
    assert table[0].split() == ["camera", "frames", "duration", "speed", "events"]
    row = table[1].split()
    assert row[:4] == ["bikes", str(FRAMES), "10.0", "s"] and re.fullmatch(r"\d+\.\dx", row[4]), table
    assert "new" in table[1] and "end" in table[1]  # the cyclist and the people come and go

    start = datetime.fromisoformat(START).timestamp()
    events = [json.loads(fields["data"]) for _, fields in
              redis.Redis.from_url(redis_url, decode_responses=True).xrange(stream_key)]
    assert events
    for event in events:  # on the recording's timeline, not today's clock
        times = [datetime.fromisoformat(event["ts"]).timestamp(), event["captured_at"]]  # ISO; Unix seconds
        assert all(start <= time <= start + 10.5 for time in times), event


def test_a_terminal_gets_a_progress_bar(tmp_path: Path, redis_url: str, stream_key: str) -> None:
    config = _recording_config(tmp_path, redis_url, stream_key)
    command = " ".join([*argusd_command("run", "--config", str(config), "--exit-when-done")])
    # script(1) runs it on a pseudo-terminal and copies what it wrote there to stdout.
    result = subprocess.run(["script", "-qec", command, "/dev/null"], cwd=REPO, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stdout[-4000:]
    assert re.search(rf"bikes: 100%\|[^|]*\| {FRAMES}/{FRAMES} ", result.stdout), result.stdout[-4000:]
    assert "x real time" in result.stdout and "progress: bikes" not in result.stdout
