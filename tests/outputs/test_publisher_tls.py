"""rediss:// with a CA file and an ACL user that may only XADD and PING (so INFO, and IDMP detection, is denied)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import redis
from tests.support.assets import free_port
from tests.support.events import synthetic_events
from tests.support.polling import wait_for

from daemon.config.models import RedisConfig, SpoolConfig
from daemon.service.metrics import Metrics
from daemon.outputs.publisher import RedisPublisher

STREAM = "argusd:test:events"


def make_certificates(directory: Path) -> None:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=argusd test CA",
            "-keyout", "ca.key", "-out", "ca.crt")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
            "-out", "server.csr")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-extfile", "san.ext", "-out", "server.crt")


@pytest.fixture
def tls_redis(tmp_path: Path):
    make_certificates(tmp_path)
    port = free_port()
    process = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", "0", "--tls-port", str(port),
         "--bind", "127.0.0.1", "--tls-cert-file", "server.crt", "--tls-key-file", "server.key",
         "--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    admin = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(tmp_path / "ca.crt"))
    wait_for(admin.ping, 10, "the TLS redis-server to start", ignoring=(redis.ConnectionError,))
    admin.acl_setuser("argus", enabled=True, passwords=["+s3cret-pass"], keys=["argusd:*"],
                      commands=["+xadd", "+ping"])
    yield port, tmp_path / "ca.crt", admin
    process.terminate()
    process.wait(10)


def test_publishing_over_tls_as_a_least_privilege_acl_user(tls_redis, tmp_path: Path, caplog) -> None:
    port, ca_file, admin = tls_redis
    url = f"rediss://argus:s3cret-pass@127.0.0.1:{port}/0"
    publisher = RedisPublisher(RedisConfig(url=url, stream=STREAM, tls_ca_file=str(ca_file)), Metrics(),
                               SpoolConfig(directory=str(tmp_path / "spool")))
    publisher.start()
    events = synthetic_events(20)
    publisher.submit(events)
    wait_for(lambda: publisher.pending == 0, 10, "publishing over TLS")
    publisher.stop()
    ids = [fields[b"event_id"].decode() for _, fields in admin.xrange(STREAM)]
    assert ids == [e.event_id for e in events]
    assert "s3cret" not in caplog.text


def test_an_untrusted_certificate_is_refused_and_events_are_kept(tls_redis, tmp_path: Path) -> None:
    port, _, admin = tls_redis
    publisher = RedisPublisher(RedisConfig(url=f"rediss://argus:s3cret-pass@127.0.0.1:{port}/0", stream=STREAM),
                               Metrics(), SpoolConfig(directory=str(tmp_path / "spool")))  # system CAs only
    publisher.start()
    publisher.submit(synthetic_events(3))
    wait_for(lambda: publisher.spool is not None and publisher.spool.pending == 3, 10, "spooling")
    publisher.stop(flush_timeout=0)
    assert admin.exists(STREAM) == 0
