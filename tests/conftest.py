"""Shared test fixtures: real assets, real Redis (the machine's, or a private redis-server), a real RTSP server.
The fixtures live in tests.support and are registered here by importing them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.redis import redis_server, redis_url, stream_key  # noqa: F401 (fixtures)
from tests.support.rtsp import module_rtsp_server, rtsp_server  # noqa: F401 (fixtures)


@pytest.fixture(scope="session")
def converted_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's one cache of converted detector models (detector.cache_dir's default)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def private_state_directory(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                            converted_models: Path) -> None:
    """Each test's daemons (in-process or subprocess) spool and snapshot under their own directory,
    never a shared /var/lib/argusd, so one test's leftovers cannot reach another test's stream. Its
    models/ is the session's, so a .pt that `runtime: auto` converts is converted once per session,
    not once per test."""
    state = tmp_path_factory.mktemp("state")
    (state / "models").symlink_to(converted_models, target_is_directory=True)
    monkeypatch.setenv("STATE_DIRECTORY", str(state))
