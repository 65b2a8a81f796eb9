"""Captions from a vision-language model behind an OpenAI-compatible chat-completions API (Ollama, vLLM,
llama.cpp server, OpenAI itself): the object's crop goes as a base64 JPEG data URL next to a prompt filled
with what the tracker knows. Standard library only (urllib)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from email.message import Message

from daemon.config.models import CaptionerConfig
from daemon.core.redact import redact_text, redact_url, url_secrets
from daemon.outputs.annotate import encode_jpeg
from plugins.captioners.template import describe
from plugins.interfaces import CaptionError, CaptionRequest, PluginError

FIRST_RETRY_WAIT_S = 0.5  # doubles per retry
MAX_RETRY_WAIT_S = 10.0  # a longer Retry-After is capped: the caption queue would fill anyway
SNIPPET_CHARS = 200  # of an error body quoted in the error, after redaction
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s\"',;}\]]+")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: urllib would re-send the Authorization header (and the image) to whatever
    address the Location names. The 3xx then arrives as an HTTPError."""

    def redirect_request(self, *_args: object) -> None:
        return None


PROMPT_FIELDS = ("label", "camera", "type", "attributes", "zones", "duration_s", "rule", "direction", "summary")


class _RateLimiter:
    """Spaces requests at least 1/rate apart over all worker threads."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next)
            self._next = at + self.interval
        if at > now:
            time.sleep(at - now)


class OpenAICaptioner:
    needs_image = True

    def __init__(self, config: CaptionerConfig) -> None:
        if not config.base_url or not config.model:
            raise PluginError("captioner plugin openai needs base_url (e.g. http://127.0.0.1:11434/v1) and "
                              "model (the name the server knows, e.g. llava)")
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self.shown_url = redact_url(self.url)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        self.secrets: tuple[str, ...] = url_secrets(self.url)
        self.opener = urllib.request.build_opener(_NoRedirects)  # keeps the proxy handlers (https_proxy)
        if config.api_key_env:
            key = os.environ.get(config.api_key_env)
            if not key:
                raise PluginError(f"captioner plugin openai: environment variable {config.api_key_env} "
                                  "(api_key_env) is not set or empty")
            self.headers["Authorization"] = f"Bearer {key}"
            self.secrets = (*self.secrets, key)
        try:
            config.prompt.format_map(dict.fromkeys(PROMPT_FIELDS, ""))
        except (KeyError, IndexError, ValueError) as error:
            known = ", ".join("{" + f + "}" for f in PROMPT_FIELDS)
            raise PluginError(f"captioner plugin openai: prompt: bad placeholder {error} (known: {known}; "
                              "write {{ }} for braces)") from None
        self.limiter = _RateLimiter(config.rate_limit_per_s) if config.rate_limit_per_s else None

    def caption(self, requests: Sequence[CaptionRequest]) -> list[str]:
        return [self._post(json.dumps(self.body(request)).encode()) for request in requests]

    def close(self) -> None:
        pass  # urllib keeps no connections open between requests

    def prompt(self, request: CaptionRequest) -> str:
        event = request.event
        return self.config.prompt.format_map({
            "label": event.label,
            "camera": event.camera,
            "type": event.type,
            "attributes": ", ".join(f"{k}: {v}" for k, v in sorted(event.attributes.items())) or "none",
            "zones": ", ".join(event.zones) or "none",
            "duration_s": f"{event.duration_s:.0f}",
            "rule": event.rule or "",
            "direction": event.direction_name or event.direction or "",
            "summary": describe(event, request.story),
        })

    def body(self, request: CaptionRequest) -> dict:
        content: list[dict] = [{"type": "text", "text": self.prompt(request)}]
        if request.image is not None:
            jpeg = encode_jpeg(request.image, self.config.jpeg_quality)
            content.append({"type": "image_url",
                            "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()}})
        return {"model": self.config.model, "messages": [{"role": "user", "content": content}],
                "max_tokens": self.config.max_tokens}

    def _post(self, body: bytes) -> str:
        wait, attempt = FIRST_RETRY_WAIT_S, 0
        while True:
            if self.limiter is not None:
                self.limiter.wait()
            # CaptionerConfig accepts only an http(s) base_url, so no file: or custom scheme gets here
            request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")  # noqa: S310
            try:
                with self.opener.open(request, timeout=self.config.timeout_s) as response:
                    return _reply_text(response.read(), self.secrets)
            except urllib.error.HTTPError as error:
                retryable = error.code == 429 or error.code >= 500
                if 300 <= error.code < 400:
                    location = redact_text(redact_url(error.headers.get("Location") or "(no Location)"),
                                           self.secrets)
                    problem = (f"HTTP {error.code} redirect to {location} not followed (the API key and the "
                               "image go only to base_url): set base_url to the address that answers")
                else:
                    problem = f"HTTP {error.code} {error.reason}: {_snippet(error.read(), self.secrets)}"
                pause = _retry_after(error.headers) or wait
            except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
                retryable = True
                problem = f"cannot reach the server: {getattr(error, 'reason', None) or error}"
                pause = wait
            if not retryable or attempt == self.config.retries:
                tries = f" (after {attempt + 1} attempts)" if attempt else ""
                raise CaptionError(f"openai {self.shown_url}: {problem}{tries}")
            time.sleep(min(pause, MAX_RETRY_WAIT_S))
            wait *= 2
            attempt += 1


def _reply_text(data: bytes, secrets: tuple[str, ...]) -> str:
    try:
        content = json.loads(data)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise CaptionError(f"unexpected reply, not a chat completion: {_snippet(data, secrets)}") from None
    if isinstance(content, list):  # content parts, as some servers answer
        content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise CaptionError(f"unexpected reply content: {_snippet(data, secrets)}")
    return content.strip()


def _retry_after(headers: Message | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: use our own backoff


def _snippet(data: bytes, secrets: tuple[str, ...]) -> str:
    """The start of a reply body for an error message, redacted before it is cut (a cut could leave the
    start of a key): the API key and URL passwords, any Bearer/Basic credential, any URL userinfo."""
    text = data[:65536].decode("utf-8", "replace")
    text = _BEARER.sub(r"\1\2***", redact_text(text, secrets))
    return " ".join(text[:SNIPPET_CHARS].split()) or "(empty body)"
