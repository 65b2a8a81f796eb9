"""A private etcd cluster for tests: three ``etcd`` members (Debian's etcd-server) on loopback ports, each
stoppable (SIGSTOP: hung, as a partition looks to a client) and resumable."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.assets import free_port
from tests.support.polling import wait_for


class EtcdCluster:
    def __init__(self, directory: Path, size: int = 3) -> None:
        self.directory = directory
        self.names = [f"etcd{index}" for index in range(size)]
        self.client_ports = [free_port() for _ in self.names]
        self.peer_ports = [free_port() for _ in self.names]
        self.processes: list[subprocess.Popen] = []

    @property
    def endpoints(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.client_ports]

    def start(self) -> None:
        binary = shutil.which("etcd")
        if binary is None:
            pytest.fail("etcd missing: run scripts/setup.sh (it installs Debian's etcd-server)")
        initial = ",".join(f"{name}=http://127.0.0.1:{port}" for name, port in zip(self.names, self.peer_ports,
                                                                                   strict=True))
        for name, client, peer in zip(self.names, self.client_ports, self.peer_ports, strict=True):
            log = (self.directory / f"{name}.log").open("wb")
            self.processes.append(subprocess.Popen(
                [binary, "--name", name, "--data-dir", str(self.directory / name),
                 "--listen-client-urls", f"http://127.0.0.1:{client}",
                 "--advertise-client-urls", f"http://127.0.0.1:{client}",
                 "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                 "--initial-cluster", initial, "--initial-cluster-state", "new",
                 "--initial-cluster-token", self.directory.name,
                 # a loaded test machine starves the members: slower heartbeats than the defaults (100 ms,
                 # election after 1 s) keep them from electing a new leader on every scheduling hiccup
                 "--heartbeat-interval", "250", "--election-timeout", "2500"],
                stdout=log, stderr=subprocess.STDOUT))
        for endpoint in self.endpoints:
            wait_for(lambda endpoint=endpoint: requests.get(f"{endpoint}/health", timeout=1).json()["health"]
                     == "true", 30, f"etcd at {endpoint} to be healthy", ignoring=(requests.RequestException,))

    def follower(self) -> int:
        """The index of a member that is not the Raft leader (pausing it costs no election)."""
        for index, leads in enumerate(self._leading()):
            if not leads:
                return index
        raise AssertionError("every etcd member says it leads")

    def leader(self) -> int:
        """The index of the Raft leader, once the members agree on one."""
        def agreed() -> list[bool] | None:
            leading = self._leading()
            return leading if leading.count(True) == 1 else None

        return wait_for(agreed, 30, "the etcd members to agree on a leader", interval=0.2,
                        ignoring=(requests.RequestException,)).index(True)

    def _leading(self) -> list[bool]:
        """Per member: whether it says it is the leader (its status's ``leader`` is its own id)."""
        statuses = [requests.post(f"{endpoint}/v3/maintenance/status", json={}, timeout=5).json()
                    for endpoint in self.endpoints]
        return [status["leader"] == status["header"]["member_id"] for status in statuses]

    def pause(self, index: int) -> None:
        self.processes[index].send_signal(signal.SIGSTOP)

    def resume(self, index: int) -> None:
        self.processes[index].send_signal(signal.SIGCONT)

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGCONT)
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def etcd_cluster(tmp_path: Path) -> Iterator[EtcdCluster]:
    cluster = EtcdCluster(tmp_path / "etcd")
    cluster.directory.mkdir()
    cluster.start()
    yield cluster
    cluster.stop()
