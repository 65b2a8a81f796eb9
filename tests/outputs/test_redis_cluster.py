"""Publishing to a real 3-master Redis Cluster: per-camera streams hash-tagged onto their slots, a master
restarted while the daemon publishes (its events wait in the spool), and `argusd events consume` on the
cluster's consumer group getting every event once."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from redis.cluster import RedisCluster

from tests.support.assets import REPO, argusd_command
from tests.support.configs import daemon_config, detector_config, write_config
from tests.support.daemon import running_daemon
from tests.support.models import random_yolo11n
from tests.support.polling import wait_for
from tests.support.redis import RedisClusterServers

CAMERAS = ["north", "south", "east", "west"]
STREAM = "argusd:events:{camera}"


def test_events_reach_a_redis_cluster_through_a_master_restart(tmp_path: Path) -> None:
    cluster = RedisClusterServers(tmp_path / "cluster")
    cluster.start()
    try:
        client = RedisCluster.from_url(cluster.url.replace("+cluster", ""))
        streams = [f"argusd:events:{{{camera}}}" for camera in CAMERAS]
        slots = {client.keyslot(stream) for stream in streams}
        assert len(slots) == len(CAMERAS)  # one slot per camera's stream
        nodes_used = {client.get_node_from_key(stream).port for stream in streams}
        assert len(nodes_used) >= 2, "the streams should spread over several masters"
        config = write_config(tmp_path / "argusd.yaml", daemon_config(
            [{"id": camera, "url": "test://ball", "fps": 2, "width": 160, "height": 120} for camera in CAMERAS],
            detector=detector_config(random_yolo11n(tmp_path / "random.pt"), imgsz=160),
            redis={"url": cluster.url, "stream": STREAM, "command_timeout_s": 0.5, "connect_timeout_s": 0.5,
                   "backoff_max_s": 0.5},
            tracker={"confirm_frames": 1}))
        with running_daemon(config) as daemon:
            wait_for(lambda: all(client.xlen(stream) > 0 for stream in streams), 120,
                     "events on every camera's stream", interval=0.5, details=daemon.tail)
            owner = client.get_node_from_key(streams[0]).port
            restarted = next(node for node in cluster.nodes if node.port == owner)  # the master of north's slot
            restarted.stop()
            time.sleep(3)  # the daemon keeps analysing; events for the lost slots go to the spool
            restarted.start()
            cluster.wait_ok()
            wait_for(lambda: "reachable again" in daemon.output(), 60, "the publisher to see Redis back",
                     interval=0.5, details=daemon.tail)
            time.sleep(2)
            assert daemon.stop() == 0
        summary = re.search(r"stopped: (\d+) event\(s\) produced, (\d+) published .* (\d+) left in the spool",
                            daemon.output())
        assert summary, daemon.tail()
        produced, left = int(summary[1]), int(summary[3])
        assert produced > 0 and left == 0, summary[0]
        assert "unavailable" in daemon.output(), "the restart went unnoticed: nothing was spooled"

        consumed = subprocess.run(
            argusd_command("events", "consume", "--config", str(config), *(f"--camera={c}" for c in CAMERAS),
                           "--group", "audit", "--consumer", "a1", "--json", "--count", str(produced),
                           "--max-seconds", "60"),
            cwd=REPO, capture_output=True, text=True, timeout=90)
        assert consumed.returncode == 0, consumed.stderr
        ids = [json.loads(line)["event_id"] for line in consumed.stdout.splitlines()]
        assert len(ids) == produced, f"{len(ids)} of {produced} event(s) consumed"
        assert len(set(ids)) == len(ids), "an event was delivered twice to the group"
        stored = sum(client.xlen(stream) for stream in streams)
        print(f"{produced} event(s) produced, {stored} stream entries, {len(ids)} consumed once each")
    finally:
        cluster.stop()
