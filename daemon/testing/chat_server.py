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
        self.received: list[dict] = []  # method, path, headers, body (parsed JSON; None for GET), at (monotonic)
        self.echo_headers = False  # error replies quote the request's headers, Authorization first (as some servers do)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # recorded (a client that followed a redirect arrives as GET), refused
                with server._lock:
                    server.received.append({"method": "GET", "path": self.path, "headers": dict(self.headers),
                                            "body": None, "at": time.monotonic()})
                self.send_error(405)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.received.append({"method": "POST", "path": self.path, "headers": dict(self.headers),
                                            "body": body, "at": time.monotonic()})
                    status, delay, headers = server.script.pop(0) if server.script else (200, server.delay_s, {})
                time.sleep(delay)
                if status == 200:
                    payload = {"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                               "choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": server.reply}}]}
                else:
                    payload = {"error": {"message": f"scripted {status}"}}
                    if server.echo_headers:
                        quoted = sorted(self.headers.items(), key=lambda item: item[0].lower() != "authorization")
                        payload["error"]["request_headers"] = "; ".join(f"{k}: {v}" for k, v in quoted)
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
