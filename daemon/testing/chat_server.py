"""A loopback OpenAI-compatible chat-completions server (POST /v1/chat/completions) standing in for a
vision-language model server (Ollama, vLLM) in tests and benchmarks: it records what it receives and
answers after a set delay, or with scripted errors."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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
            def do_POST(self) -> None:
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
