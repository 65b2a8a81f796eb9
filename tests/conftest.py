"""Shared test fixtures: real assets, real Redis (the machine's, or a private redis-server), a real RTSP server.
The fixtures live in tests.support and are registered here by importing them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis import redis_server, redis_url, stream_key  # noqa: F401 (fixtures)
from tests.support.rtsp import module_rtsp_server, rtsp_server  # noqa: F401 (fixtures)


@pytest.fixture(scope="session", autouse=True)
def session_state_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The state directory of daemons that module-scoped fixtures start (before any test has its own),
    never a shared /var/lib/argusd. Its models/ is detector.cache_dir's default for the whole session, so
    a .pt that `runtime: auto` converts is converted once per session, not once per test."""
    state = tmp_path_factory.mktemp("session-state")
    (state / "models").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STATE_DIRECTORY", str(state))
        yield state


@pytest.fixture(autouse=True)
def private_state_directory(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                            session_state_directory: Path) -> None:
    """Each test's daemons (in-process or subprocess) spool and snapshot under their own directory, so one
    test's leftovers cannot reach another test's stream; models/ is the session's."""
    state = tmp_path_factory.mktemp("state")
    (state / "models").symlink_to(session_state_directory / "models", target_is_directory=True)
    monkeypatch.setenv("STATE_DIRECTORY", str(state))
