"""`argusd status`: a running daemon's readiness and one line per camera, read from its /readyz and
/cameras (twice, ``--interval`` apart, so the analysed fps is measured rather than configured)."""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

from daemon.config.loading import load_config
from daemon.config.models import EXIT_CONFIG, ConfigError

EXIT_NOT_READY = 1
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE, as `argusd events` when Redis is unreachable
COLUMNS = ("camera", "state", "fps", "last frame", "objects", "events", "last error")


def add_parser(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser("status", help="a running daemon's readiness and cameras (from its HTTP port)")
    where = status.add_mutually_exclusive_group()
    where.add_argument("--url", help="the daemon's HTTP address (default: http://127.0.0.1:9108)")
    where.add_argument("--config", "-c", help="take the address from this daemon config (http.listen)")
    status.add_argument("--interval", type=float, default=1.0,
                        help="seconds between the two reads the analysed fps is measured over (default 1)")


def run(args: argparse.Namespace) -> int:
    try:
        base = _base_url(args)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG
    try:
        before = _get(f"{base}/cameras")["cameras"]
        time.sleep(args.interval)
        ready = _get(f"{base}/readyz")
        after = _get(f"{base}/cameras")["cameras"]
    except (OSError, ValueError, KeyError) as error:  # refused, timed out, not argusd's JSON
        print(f"argusd status: no argusd answering at {base}: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print(f"{base}: {_readiness_line(ready)}")
    print(_table(_camera_rows(before, after, args.interval)))
    return 0 if ready["status"] == "ready" else EXIT_NOT_READY


def _base_url(args: argparse.Namespace) -> str:
    if args.url:
        return args.url.rstrip("/")
    listen = load_config(args.config).http.listen if args.config else "127.0.0.1:9108"
    return f"http://{listen}"


def _get(url: str) -> dict:
    """The endpoint's JSON, also for a 503 (/readyz answers not-ready with its checks)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (an http:// URL the user gave)
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code != 503:
            raise
        return json.loads(error.read())


def _readiness_line(ready: dict) -> str:
    failed = [name for name, passed in ready["checks"].items() if not passed]
    state = "ready" if not failed else f"not ready ({', '.join(failed)})"
    problem = f"; {ready['events_problem']}" if ready.get("events_problem") else ""
    return (f"{state}: {ready['cameras_streaming']}/{ready['cameras']} camera(s) streaming, "
            f"{ready['publish_queue']} event(s) in memory, {ready.get('spool_events', 0)} spooled{problem}")


def _camera_rows(before: list[dict], after: list[dict], interval: float) -> list[tuple[str, ...]]:
    analysed_before = {camera["id"]: camera.get("frames_analysed", 0) for camera in before}
    rows: list[tuple[str, ...]] = []
    for camera in after:
        if camera["state"] == "elsewhere":  # a fleet camera another member analyses
            rows.append((str(camera["id"]), f"on {camera['owner'] or '?'}", "-", "-", "-", "-", ""))
            continue
        fps = (camera["frames_analysed"] - analysed_before.get(camera["id"], camera["frames_analysed"])) / interval
        age = camera["last_frame_age_s"]
        rows.append((str(camera["id"]), str(camera["state"]), f"{fps:.1f}/{camera['fps_target']:g}",
                     "-" if age is None else f"{age:.1f} s ago", str(camera["active_objects"]),
                     str(camera["events"]), str(camera["last_error"] or "")))
    return rows


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in [COLUMNS, *rows])
