"""Redis for tests: the machine's (fixtures ``redis_url``, ``stream_key``), a private redis-server that tests
stop and start (``RedisServer``, fixture ``redis_server``), and reading a stream back."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.assets import free_port
from tests.support.polling import wait_for


def shared_redis_url() -> str:
    """The Redis every project machine runs on 127.0.0.1:6379 (checked: it answers)."""
    url = os.environ.get("ARGUSD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    redis.Redis.from_url(url).ping()
    return url


@pytest.fixture
def redis_url() -> str:
    return shared_redis_url()


@pytest.fixture
def stream_key(redis_url: str) -> Iterator[str]:
    key = f"argusd:test:{uuid.uuid4().hex}"
    yield key
    redis.Redis.from_url(redis_url).delete(key)


class RedisServer:
    """A private redis-server on a free loopback port, for tests that stop and start Redis."""

    def __init__(self, directory: Path, *options: str) -> None:
        """``options``: more redis-server arguments (e.g. cluster mode)."""
        self.port = free_port()
        self.directory = directory
        self.options = options
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.directory), *self.options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: redis.Redis(port=self.port).ping(), 10, "redis-server to start",
                 ignoring=(redis.ConnectionError,))

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class RedisClusterServers:
    """Three private redis-servers in cluster mode, all masters (no replicas), slots spread by
    ``redis-cli --cluster create``; each keeps its data in an append-only file, so one restarted on its port
    comes back with its slots and entries."""

    def __init__(self, directory: Path, masters: int = 3) -> None:
        self.nodes = []
        for index in range(masters):
            node_directory = directory / f"node{index}"
            node_directory.mkdir(parents=True)
            self.nodes.append(RedisServer(node_directory, "--cluster-enabled", "yes", "--cluster-port",
                                          str(free_port()), "--appendonly", "yes", "--appendfsync", "always"))

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}/0"

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        subprocess.run([shutil.which("redis-cli") or "redis-cli", "--cluster", "create",
                        *(f"127.0.0.1:{node.port}" for node in self.nodes), "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        self.wait_ok()

    def wait_ok(self) -> None:
        for node in self.nodes:
            wait_for(lambda node=node: "cluster_state:ok" in _cluster_info(node.port), 30,
                     f"cluster node {node.port} to report cluster_state:ok", ignoring=(redis.RedisError,))

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _cluster_info(port: int) -> str:
    reply = redis.Redis(port=port).execute_command("CLUSTER", "INFO")
    return reply.decode() if isinstance(reply, bytes) else str(reply)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def stream_event_ids(url: str, stream: str) -> list[str]:
    """Every entry's event_id, in stream order (duplicates kept)."""
    client = redis.Redis.from_url(url)
    ids, start = [], "-"
    while True:
        entries = client.xrange(stream, start, "+", count=5000)
        if not entries:
            return ids
        ids += [fields[b"event_id"].decode() for _, fields in entries]
        last = entries[-1][0].decode()
        ms, seq = last.split("-")
        start = f"{ms}-{int(seq) + 1}"


def first_occurrences(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def shutdown_saving(server: RedisServer) -> None:
    """Stop a private redis-server the way an operator restart does: save the dataset, then exit."""
    try:
        redis.Redis(port=server.port).shutdown(save=True)
    except redis.ConnectionError:
        pass  # the server closes the connection as it exits
    server.stop()
