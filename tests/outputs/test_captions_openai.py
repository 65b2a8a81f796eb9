"""The openai captioner against a real HTTP server on loopback that implements POST /v1/chat/completions:
what it sends (model, prompt filled with the event, the crop as a base64 JPEG data URL, the key from the
environment), and how it behaves on errors, timeouts, 429/5xx retries, rate limits and a server that is down."""

from __future__ import annotations

import base64
import time

import cv2
import numpy as np
import pytest
from tests.support.assets import free_port
from tests.support.events import event

from daemon.config.models import CaptionerConfig
from daemon.core.events import ObjectStory
from plugins.interfaces import CaptionError, CaptionRequest, PluginError
from plugins.registry import load_captioner
from daemon.testing.chat_server import ChatServer

KEY_ENV = "ARGUSD_TEST_VLM_KEY"
KEY = "sk-test-0123456789"


def captioner(base_url: str, **options):
    return load_captioner(CaptionerConfig(plugin="openai", base_url=base_url, model="llava:7b", **options))


def request(image: np.ndarray | None = None) -> CaptionRequest:
    if image is None:
        image = np.full((60, 40, 3), (0, 0, 220), np.uint8)  # a red crop, BGR
    subject = event("line_cross", rule="door", direction="a_to_b", direction_name="in",
                    attributes={"top_colour": "red"}, zones=["loading"], duration_s=12.0)
    return CaptionRequest(subject, ObjectStory(), image)


def test_request_carries_model_prompt_image_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    prompt = "Camera {camera}, {type} at {rule} going {direction}, {label} ({attributes}) in {zones}: {summary}"
    with ChatServer(reply="  A person in a red top walks in.\n") as server:
        texts = captioner(server.base_url, api_key_env=KEY_ENV, prompt=prompt, max_tokens=33).caption([request()])
    assert texts == ["A person in a red top walks in."]
    [received] = server.received
    assert received["path"] == "/v1/chat/completions"
    assert received["headers"]["Authorization"] == f"Bearer {KEY}"
    body = received["body"]
    assert body["model"] == "llava:7b" and body["max_tokens"] == 33
    [message] = body["messages"]
    text_part, image_part = message["content"]
    assert text_part == {"type": "text", "text": (
        "Camera door, line_cross at door going in, person (top_colour: red) in loading: "
        "A person wearing a red top crossed the door line inwards.")}
    url = image_part["image_url"]["url"]
    assert image_part["type"] == "image_url" and url.startswith("data:image/jpeg;base64,")
    decoded = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (60, 40, 3)
    assert decoded[30, 20, 2] > 180 and decoded[30, 20, 0] < 60  # still the red crop


def test_no_key_is_sent_without_api_key_env() -> None:
    with ChatServer() as server:
        captioner(server.base_url).caption([request()])
    assert "Authorization" not in server.received[0]["headers"]


def test_missing_key_variable_and_bad_prompt_are_clear_start_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(PluginError, match=f"environment variable {KEY_ENV} .*not set"):
        captioner("http://127.0.0.1:1/v1", api_key_env=KEY_ENV)
    with pytest.raises(PluginError, match=r"prompt: bad placeholder 'colour'"):
        captioner("http://127.0.0.1:1/v1", prompt="Describe the {colour} thing")
    with pytest.raises(PluginError, match="needs base_url"):
        load_captioner(CaptionerConfig(plugin="openai", model="llava"))


def test_5xx_and_429_are_retried_honouring_retry_after() -> None:
    with ChatServer() as server:
        server.script = [(503, 0.0, {}), (429, 0.0, {"Retry-After": "0.3"})]
        started = time.monotonic()
        texts = captioner(server.base_url, retries=2).caption([request()])
    assert texts == [server.reply]
    arrivals = [r["at"] for r in server.received]
    assert len(arrivals) == 3
    assert arrivals[1] - arrivals[0] >= 0.45  # first backoff 0.5 s
    assert arrivals[2] - arrivals[1] >= 0.25  # Retry-After: 0.3 instead of the 1 s backoff
    assert arrivals[2] - arrivals[1] < 0.9
    assert time.monotonic() - started < 5


def test_client_errors_are_not_retried_and_never_show_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    with ChatServer() as server:
        server.script = [(400, 0.0, {})]
        with pytest.raises(CaptionError, match=r"HTTP 400 .*scripted 400") as raised:
            captioner(server.base_url, api_key_env=KEY_ENV, retries=3).caption([request()])
    assert len(server.received) == 1
    assert KEY not in str(raised.value)


def test_a_slow_server_times_out_after_the_retries() -> None:
    with ChatServer(delay_s=2.0) as server:
        started = time.monotonic()
        with pytest.raises(CaptionError, match=r"timed out.*\(after 2 attempts\)"):
            captioner(server.base_url, timeout_s=0.3, retries=1).caption([request()])
        elapsed = time.monotonic() - started
    assert len(server.received) == 2
    assert 1.0 <= elapsed < 1.9  # 0.3 + 0.5 backoff + 0.3, never the server's 2 s


def test_rate_limit_spaces_requests() -> None:
    with ChatServer() as server:
        captioner(server.base_url, rate_limit_per_s=5).caption([request() for _ in range(4)])
    arrivals = [r["at"] for r in server.received]
    gaps = np.diff(arrivals)
    assert len(arrivals) == 4 and gaps.min() >= 0.17, gaps  # 1/5 s apart, less scheduling jitter


def test_a_server_that_is_down_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(CaptionError, match=rf"openai {url}/chat/completions: cannot reach the server: .*refused"):
        captioner(url, retries=0).caption([request()])
    assert time.monotonic() - started < 2


def test_credentials_in_the_base_url_are_redacted() -> None:
    url = f"http://user:hunter22@127.0.0.1:{free_port()}/v1"
    with pytest.raises(CaptionError) as raised:
        captioner(url, retries=0).caption([request()])
    assert "hunter22" not in str(raised.value) and "***@127.0.0.1" in str(raised.value)
