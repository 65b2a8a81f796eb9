"""Helpers shared by tests/test_captions_*.py: events with a best frame, and captioner configs."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from daemon.events import BestFrame, Event, iso_utc
from daemon.types import Detections

NAMES = {0: "person", 1: "car"}
NOW = 1_800_000_000.0


def best_frame(image: np.ndarray | None = None, boxes: list[list[float]] | None = None,
               classes: list[int] | None = None, row: int = 0) -> BestFrame:
    """A 240x320 frame (a red block where the object is, unless ``image`` is given) and its detections."""
    boxes = boxes or [[100, 40, 180, 200]]
    classes = classes or [0] * len(boxes)
    if image is None:
        image = np.full((240, 320, 3), 90, np.uint8)
        x1, y1, x2, y2 = (int(v) for v in boxes[row])
        image[y1:y2, x1:x2] = (0, 0, 220)  # BGR red
    detections = Detections.from_arrays(np.array(boxes), np.full(len(boxes), 0.8), np.array(classes)).with_tracks(
        np.arange(1, len(boxes) + 1))
    return BestFrame(image, detections, row, NOW)


def event(kind: str = "new", *, step: int = 0, object_id: str = "obj1", label: str = "person",
          at: float = NOW, duration_s: float = 0.0, frame: BestFrame | None = None, **extra) -> Event:
    return Event(
        event_id=f"{object_id}-{step}", object_id=object_id, type=kind, camera="door", ts=iso_utc(at),
        label=label, class_id=0 if label == "person" else 1, confidence=0.8, bbox=[0.3, 0.2, 0.6, 0.8],
        track_id=1, frame_seq=step, captured_at=at, started_at=iso_utc(at - duration_s), duration_s=duration_s,
        best_confidence=0.8, best_frame=frame, **extra,
    )


class ChatServer:
    """An OpenAI-compatible chat-completions endpoint on 127.0.0.1 (a free port) for the openai captioner:
    it records every request and answers from a script of (status, delay_s, headers) steps, then 200s."""

    def __init__(self, reply: str = "A person in a red top walks past the door.", delay_s: float = 0.0) -> None:
        self.reply = reply
        self.delay_s = delay_s
        self.script: list[tuple[int, float, dict[str, str]]] = []
        self.received: list[dict] = []  # path, headers, body (parsed JSON), at (monotonic)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.received.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                            "at": time.monotonic()})
                    status, delay, headers = server.script.pop(0) if server.script else (200, server.delay_s, {})
                time.sleep(delay)
                if status == 200:
                    payload = {"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                               "choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": server.reply}}]}
                else:
                    payload = {"error": {"message": f"scripted {status}"}}
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for name, value in {"Content-Type": "application/json", **headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
