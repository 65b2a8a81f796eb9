"""Fault: the openai captioner's server answers with a redirect to another origin (a second loopback
server on another port), or with an error body that echoes the request's Authorization header. The key
never reaches the second server (no request at all reaches it), the caption fails with one clear error,
and neither the error nor the caption stage's log line carries the key (issue item 7)."""

from __future__ import annotations

import logging

import pytest
from tests.support.captions import NAMES, best_frame
from tests.support.events import event
from tests.support.polling import wait_for

from daemon.config.models import CameraCaptionsConfig, CameraConfig, CaptionerConfig, CaptionsConfig
from daemon.outputs.captions import CaptionStage
from daemon.service.metrics import Metrics
from daemon.testing.chat_server import ChatServer
from plugins.interfaces import CaptionError, CaptionRequest
from plugins.registry import load_captioner
from daemon.core.events import ObjectStory

KEY_ENV = "ARGUSD_TEST_VLM_KEY"
KEY = "sk-redirect-test-4f9a8b7c6d5e4f3a2b1c"


def request() -> CaptionRequest:
    return CaptionRequest(event("end", frame=best_frame()), ObjectStory(), best_frame().image)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_origin_is_not_followed(monkeypatch: pytest.MonkeyPatch, status: int) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    with ChatServer() as elsewhere, ChatServer() as server:
        target = f"{elsewhere.base_url}/chat/completions"
        server.script = [(status, 0.0, {"Location": target})] * 3
        captioner = load_captioner(CaptionerConfig(plugin="openai", base_url=server.base_url, model="m",
                                                   api_key_env=KEY_ENV, retries=2))
        with pytest.raises(CaptionError) as raised:
            captioner.caption([request()])
    assert elsewhere.received == [], "a request reached the redirect target"
    assert len(server.received) == 1  # a redirect is not retried either
    assert server.received[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    message = str(raised.value)
    assert f"HTTP {status} redirect to {target} not followed" in message and "\n" not in message
    assert KEY not in message


def test_an_error_body_echoing_the_key_is_redacted_in_the_log(monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    caplog.set_level(logging.DEBUG)
    with ChatServer() as server:
        server.echo_headers = True
        server.script = [(401, 0.0, {})]
        metrics = Metrics()
        policy = CameraCaptionsConfig(captioner="c", events=["end"])
        stage = CaptionStage(CaptionsConfig(captioners={"c": CaptionerConfig(
            plugin="openai", base_url=server.base_url, model="m", api_key_env=KEY_ENV, retries=0)}),
            NAMES, metrics, lambda events: None, None)
        stage.start([CameraConfig(id="door", url="test://ball", captions=policy)])
        try:
            stage.request(stage.attach([event("end", frame=best_frame())], policy), policy)
            wait_for(lambda: metrics.registry.get_sample_value("argusd_captions_failed_total",
                                                               {"captioner": "c"}), 10, "the failure")
        finally:
            stage.stop()
    assert server.received[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    failure = [r.getMessage() for r in caplog.records if "captions: c failed" in r.getMessage()]
    assert len(failure) == 1 and "HTTP 401" in failure[0] and "Authorization: Bearer ***" in failure[0], failure
    assert KEY[:12] not in caplog.text  # not the key, nor its start (a cut body could keep that)
