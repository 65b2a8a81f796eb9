"""Fleet mode against real components: a 3-member etcd cluster and 3 argusd members sharing test://
cameras. One run goes through the whole life of a fleet (steady state, a member SIGKILLed, its rejoin, a
member cut off from etcd and its return, SIGTERM), checking ownership throughout from the members' own
/fleet, /metrics and logs; another pauses the etcd leader."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import redis
from prometheus_client.parser import text_string_to_metric_families

from daemon.service.fleet import rendezvous_owner
from tests.support.assets import free_port
from tests.support.configs import daemon_config, detector_config, write_config
from tests.support.daemon import RunningDaemon, running_daemon
from tests.support.models import random_yolo11n
from tests.support.etcd import EtcdCluster, etcd_cluster  # noqa: F401 (fixture)
from tests.support.polling import wait_for
from tests.support.redis import stream_event_ids

TTL_S = 3
CAMERAS = [f"cam{index:02d}" for index in range(12)]
MEMBERS = ["m0", "m1", "m2"]


@dataclass
class Member:
    name: str
    config: Path
    port: int
    daemon: RunningDaemon | None = None
    killed_at: list[float] = field(default_factory=list)  # wall-clock times it was SIGKILLed

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as reply:
            return json.loads(reply.read())

    def running(self) -> set[str]:
        return set(self.get("/fleet")["cameras"])

    def streaming(self) -> set[str]:
        return {camera["id"] for camera in self.get("/cameras")["cameras"] if camera["state"] == "streaming"}

    def analysed(self) -> dict[str, float]:
        return self.metric("argusd_frames_analysed")

    def metric(self, family_name: str) -> dict[str, float]:
        """camera -> value of a per-camera metric (a counter's _total)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        return {sample.labels["camera"]: sample.value for family in text_string_to_metric_families(text)
                if family.name == family_name for sample in family.samples
                if sample.name in (family_name, f"{family_name}_total")}


def log_time(line: str) -> float:
    """The wall-clock time of a JSON log line."""
    return datetime.fromisoformat(json.loads(line)["ts"].replace("Z", "+00:00")).timestamp()


def ownership_intervals(log: str, killed_at: list[float], ended_at: float) -> dict[str, list[tuple[float, float]]]:
    """camera -> [(start, stop)] wall-clock seconds this member held it, from its log ("analysing camera"
    is logged before the camera starts, "stopped camera" after it stopped, "left" after shutdown stopped
    them all); a hold that a SIGKILL ended ends at the kill."""
    intervals: dict[str, list[tuple[float, float]]] = {}
    open_since: dict[str, float] = {}
    kills = iter(sorted(killed_at))
    next_kill = next(kills, None)
    for line in log.splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        at = log_time(line)
        while next_kill is not None and at > next_kill:  # everything it held died with it
            for camera, start in open_since.items():
                intervals.setdefault(camera, []).append((start, next_kill))
            open_since.clear()
            next_kill = next(kills, None)
        words = entry["msg"].split()
        if entry["msg"].startswith("fleet: analysing camera"):
            open_since[words[3]] = at
        elif entry["msg"].startswith("fleet: stopped camera") and words[3] in open_since:
            intervals.setdefault(words[3], []).append((open_since.pop(words[3]), at))
        elif entry["msg"].startswith("fleet: left"):  # at shutdown, once every camera has stopped
            for camera, start in open_since.items():
                intervals.setdefault(camera, []).append((start, at))
            open_since.clear()
    for camera, start in open_since.items():
        intervals.setdefault(camera, []).append((start, ended_at))
    return intervals


def write_member_config(member: Member, camera_ids: list[str], endpoints: list[str], detector: dict,
                        stream_key: str) -> None:
    write_config(member.config, daemon_config(
        [{"id": camera, "url": "test://ball", "fps": 2, "width": 160, "height": 120} for camera in camera_ids],
        detector=detector, redis={"stream": stream_key}, port=member.port, tracker={"confirm_frames": 1},
        spool={"directory": str(member.config.parent / "spool")}, log={"json": True},
        fleet={"etcd": endpoints, "member_id": member.name, "lease_ttl_s": TTL_S}))


def new_members(tmp_path: Path) -> list[Member]:
    members = []
    for name in MEMBERS:
        (tmp_path / name).mkdir()
        members.append(Member(name, tmp_path / name / "argusd.yaml", free_port()))
    return members


def assignment(live: list[Member]) -> dict[str, str]:
    """camera -> member, from each member's /fleet; empty while a camera shows on two members (the members
    are read one after the other, so a handover between two reads shows it on both; whether two members ever
    held a camera at once is checked from their logs at the end)."""
    owners: dict[str, str] = {}
    for member in live:
        for camera in member.running():
            if camera in owners:
                return {}
            owners[camera] = member.name
    return owners


def settled(live: list[Member], camera_ids: list[str]) -> dict[str, str] | None:
    """The assignment once every camera streams on its rendezvous winner among ``live``."""
    for member in live:
        member.daemon.check_running()
    owners = assignment(live)
    expected = {camera: rendezvous_owner(camera, dict.fromkeys((m.name for m in live), 1.0)) for camera in camera_ids}
    streaming = set().union(*(member.streaming() for member in live))
    return owners if owners == expected and streaming == set(camera_ids) else None


def logs(members: list[Member]) -> str:
    return "\n".join(f"--- {m.name}\n{m.daemon.tail() if m.daemon else ''}" for m in members)


def assert_never_held_twice(members: list[Member], camera_ids: list[str], ended: float) -> None:
    """From the members' logs: no camera was held by two members at any moment (holds enclose all analysis)."""
    holds = {member.name: ownership_intervals(member.daemon.output(), member.killed_at, ended)
             for member in members if member.daemon}
    for camera in camera_ids:
        spans = sorted((start, stop, name) for name, cameras in holds.items() for start, stop in cameras.get(camera, []))
        for (_, stop, name), (start, _, next_name) in zip(spans, spans[1:], strict=False):
            assert stop <= start, f"{camera}: held by {name} until {stop:.3f} and by {next_name} from {start:.3f}"


def test_fleet_shares_cameras_survives_loss_and_fences(tmp_path: Path, etcd_cluster: EtcdCluster,  # noqa: F811
                                                         stream_key: str, redis_url: str) -> None:
    # random weights whose boxes pass conf on every frame: many objects, so events cross every handover
    detector = detector_config(random_yolo11n(tmp_path / "random.pt"), imgsz=160)

    # m2 talks to one etcd follower alone, so pausing that follower cuts m2 off while the cluster keeps its
    # quorum and its leader (a leader loss is another failure: every member waits for the election)
    cut = etcd_cluster.follower()
    others = [endpoint for index, endpoint in enumerate(etcd_cluster.endpoints) if index != cut]

    def configure(member: Member, camera_ids: list[str]) -> None:
        endpoints = [etcd_cluster.endpoints[cut]] if member.name == "m2" else others
        write_member_config(member, camera_ids, endpoints, detector, stream_key)

    members = new_members(tmp_path)
    for member in members:
        configure(member, CAMERAS)
    m0, m1, m2 = members
    with ExitStack() as stack:
        def start(member: Member) -> None:
            member.daemon = stack.enter_context(running_daemon(member.config, address=f"127.0.0.1:{member.port}"))

        def details() -> str:
            return logs(members)

        for member in members:
            start(member)
        first = wait_for(lambda: settled(members, CAMERAS), 120, "12 cameras streaming, each on its rendezvous winner",
                         interval=0.5, ignoring=(OSError,), details=details)

        # Exactly one member analyses each camera: over 4 s only the owner's frame counter moves.
        before = {member.name: member.analysed() for member in members}
        time.sleep(4)
        after = {member.name: member.analysed() for member in members}
        for camera in CAMERAS:
            grew = [name for name in MEMBERS if after[name].get(camera, 0) > before[name].get(camera, 0)]
            assert grew == [first[camera]], f"{camera}: analysed on {grew}, owner {first[camera]}"

        # SIGKILL: its cameras stream on the survivors within TTL + 2 s.
        lost = {camera for camera, owner in first.items() if owner == "m1"}
        assert lost, first
        killed = time.time()
        m1.killed_at.append(killed)
        m1.daemon.kill()
        survivors = [m0, m2]
        wait_for(lambda: lost <= set().union(*(m.streaming() for m in survivors)), TTL_S + 2,
                 f"m1's cameras {sorted(lost)} to stream on m0 and m2", interval=0.1, ignoring=(OSError,),
                 details=details)
        takeover_s = time.time() - killed
        second = wait_for(lambda: settled(survivors, CAMERAS), 30, "the survivors to settle", interval=0.5, ignoring=(OSError,),
                          details=details)
        assert all(second[camera] == first[camera] for camera in CAMERAS if camera not in lost), \
            "a survivor's camera moved when m1 died"
        print(f"SIGKILL takeover: {takeover_s:.2f} s (TTL {TTL_S} s)")

        # Rejoin: only its fair share (the cameras it wins) moves back, all to it.
        start(m1)
        third = wait_for(lambda: settled(members, CAMERAS), 90, "m1's cameras back on m1", interval=0.5, ignoring=(OSError,),
                         details=details)
        moved = {camera for camera in CAMERAS if third[camera] != second[camera]}
        assert moved == {camera for camera, owner in third.items() if owner == "m1"} == lost

        # m2 cut off from etcd: it stops its cameras before its lease expires, and they move.
        cut_off = {camera for camera, owner in third.items() if owner == "m2"}
        paused = time.time()
        etcd_cluster.pause(cut)
        wait_for(lambda: "before the lease (TTL" in m2.daemon.output(), TTL_S + 2,
                 "m2 to fence its cameras", interval=0.1, details=details)
        wait_for(lambda: cut_off <= set().union(*(m.streaming() for m in (m0, m1))), TTL_S + 10,
                 "m2's cameras to move to m0 and m1", interval=0.2, details=details)
        moved_s = time.time() - paused
        fenced_at = next(log_time(line) for line in m2.daemon.output().splitlines() if "before the lease (TTL" in line)
        assert fenced_at - paused < TTL_S, "m2 stopped its cameras only after its lease could have expired"
        etcd_cluster.resume(cut)
        wait_for(lambda: settled(members, CAMERAS), 60, "m2 to take its cameras back once etcd answers", interval=0.5,
                 ignoring=(OSError,), details=details)
        print(f"cut off from etcd: cameras moved {moved_s:.2f} s after the pause")

        # The fleet's metrics give the assignment: summed over the members, each camera is owned once.
        def owned_once() -> bool:
            owned: Counter[str] = Counter()
            for member in members:
                owned.update(member.metric("argusd_fleet_camera_owned"))
            return owned == dict.fromkeys(CAMERAS, 1.0)

        wait_for(owned_once, 5, "argusd_fleet_camera_owned to sum to 1 per camera", interval=0.2)

        # A camera list change is a reload on every member: cam11 goes, cam12 comes.
        changed = [*CAMERAS[:-1], "cam12"]
        for member in members:
            configure(member, changed)
            member.daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: settled(members, changed), 60, "cam12 analysed and cam11 gone after the reloads",
                 interval=0.5, ignoring=(OSError,), details=details)
        third = assignment(members)

        # SIGTERM hands over at once (lease revoked), not a TTL later.
        handed = {camera for camera, owner in third.items() if owner == "m0"}
        stopped = time.monotonic()
        assert m0.daemon.stop() == 0
        wait_for(lambda: handed <= m1.running() | m2.running(), TTL_S, "m0's cameras to be claimed after SIGTERM",
                 interval=0.1, details=details)
        print(f"SIGTERM handover: {time.monotonic() - stopped:.2f} s including m0's shutdown")
        ended = time.time()
        for member in (m1, m2):
            assert member.daemon.stop() == 0

    # Over the whole run no camera was held by two members at once.
    assert_never_held_twice(members, [*CAMERAS, "cam12"], ended)

    # Every event reached the stream once: no duplicate event_id across the handovers.
    ids = stream_event_ids(redis_url, stream_key)
    assert len(ids) == len(set(ids)), "duplicate event_id in the stream"
    events = [json.loads(fields[b"data"]) for _, fields in redis.Redis.from_url(redis_url).xrange(stream_key)]
    opened = {event["object_id"]: event["camera"] for event in events if event["type"] == "new"}
    ended_objects = {event["object_id"] for event in events if event["type"] == "end"}
    assert ended_objects <= opened.keys()
    unended = {camera for object_id, camera in opened.items() if object_id not in ended_objects}
    assert unended <= lost, f"objects on {sorted(unended - lost)} were not ended at their handover"
    print(f"{len(ids)} event(s), {len(opened)} object(s)")


def test_fleet_never_shares_a_camera_across_an_etcd_leader_loss(tmp_path: Path, etcd_cluster: EtcdCluster,  # noqa: F811
                                                                  stream_key: str) -> None:
    # A leader loss, unlike a follower's: every request waits for the election (2.5-5 s in the test cluster,
    # longer than the 3 s TTL), leases are handed to a new leader's lessor, and the old leader comes back
    # believing for a moment that it still leads. m2 talks to the leader alone (cut off while it is paused);
    # m0 and m1 talk to the followers, so their keep-alives are the ones answered around the leader change.
    detector = detector_config(random_yolo11n(tmp_path / "random.pt"), imgsz=160)
    cameras = CAMERAS[:6]
    leader = etcd_cluster.leader()
    followers = [endpoint for index, endpoint in enumerate(etcd_cluster.endpoints) if index != leader]
    members = new_members(tmp_path)
    m0, m1, m2 = members
    for member, endpoints in zip(members, [followers, followers[::-1], [etcd_cluster.endpoints[leader]]], strict=True):
        write_member_config(member, cameras, endpoints, detector, stream_key)
    with ExitStack() as stack:
        for member in members:
            member.daemon = stack.enter_context(running_daemon(member.config, address=f"127.0.0.1:{member.port}"))
        first = wait_for(lambda: settled(members, cameras), 120, "6 cameras streaming, each on its rendezvous winner",
                         interval=0.5, ignoring=(OSError,), details=lambda: logs(members))
        cut_off = {camera for camera, owner in first.items() if owner == "m2"}
        assert cut_off, first

        paused = time.time()
        etcd_cluster.pause(leader)
        wait_for(lambda: cut_off <= set().union(*(m.streaming() for m in (m0, m1))), 40,
                 f"m2's cameras {sorted(cut_off)} to move to m0 and m1 after the leader's pause", interval=0.2,
                 ignoring=(OSError,), details=lambda: logs(members))
        moved_s = time.time() - paused
        etcd_cluster.resume(leader)  # the old leader returns (the moment a stale lessor could answer)
        wait_for(lambda: settled(members, cameras), 60, "m2 to take its cameras back once the old leader answers",
                 interval=0.5, ignoring=(OSError,), details=lambda: logs(members))
        back_s = time.time() - paused
        for member in members:
            assert member.daemon.stop() == 0
        ended = time.time()

    assert_never_held_twice(members, cameras, ended)
    lines = {m.name: m.daemon.output() for m in members}
    fences = {name: output.count("before the lease (TTL") for name, output in lines.items()}
    expired = {name: output.count("fleet: lease expired") for name, output in lines.items()}
    print(f"etcd leader loss: m2's cameras moved {moved_s:.2f} s after the pause, all back on their winners "
          f"{back_s:.2f} s after it; fences {fences}, leases found expired {expired}")
