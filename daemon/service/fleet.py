"""Fleet mode: members that read the same camera list share its cameras through etcd.

Each member holds an etcd lease (TTL ``fleet.lease_ttl_s``, kept alive every 0.5 s or third of it) and registers
``<prefix>members/<id>`` under it. Every camera goes to the live member with the highest rendezvous
(highest-random-weight) score, weighted by ``capacity``, so a change of membership moves only the cameras
whose winner changed. A member analyses a camera only while it holds ``<prefix>owners/<camera>`` under its
own lease, claimed by a transaction that succeeds only when nobody holds the key:

- a member that dies stops keeping its lease alive; etcd deletes its keys after the TTL and the survivors
  claim them on their next turn;
- a member that sees a camera's winner change stops the camera first, then deletes its key, so the new
  owner can claim it only once the old one has stopped;
- a member that cannot reach etcd stops its cameras before its lease can have expired, so no other member
  can hold a camera it still analyses, however long the partition lasts (fencing). The deadline rests on
  etcd's own count, not on the keep-alive's reply (which only echoes the granted TTL): after each keep-alive
  the member asks the leader for the lease's remaining time and reads its member key linearizably, and
  fences that remaining time (rounded down by etcd) after the question was sent, less a margin.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import etcd3gw
from etcd3gw.exceptions import Etcd3Exception
from etcd3gw.utils import _encode

from daemon.config.models import CameraConfig, FleetConfig
from daemon.core.redact import redact_url
from daemon.service.metrics import Metrics

log = logging.getLogger(__name__)

# Stop the cameras this long before the lease could expire: time for their pipelines to stop and for the
# last analysed frame to leave the batch, so the next owner's first frame comes after it.
FENCE_MARGIN_S = 1.0
FENCE_CHECK_S = 0.1
TURN_S = 0.5


def rendezvous_owner(camera_id: str, members: dict[str, float]) -> str | None:
    """The member (id -> capacity) that wins ``camera_id``: weighted rendezvous hashing (score
    -capacity / ln(h), h uniform in (0, 1) from a hash of member and camera), ties to the lower id."""
    def score(member: str) -> tuple[float, str]:
        digest = hashlib.sha256(f"{member}\0{camera_id}".encode()).digest()
        uniform = (int.from_bytes(digest[:8], "big") + 0.5) / 2 ** 64
        return -members[member] / math.log(uniform), member

    return max(members, key=score, default=None)


@dataclass(frozen=True, slots=True)
class FleetView:
    """What the member last read from etcd, for /fleet, /cameras and the metrics."""

    member: str
    connected: bool
    members: dict[str, float]  # live member -> capacity
    owners: dict[str, str]  # camera -> member holding its key
    running: frozenset[str]  # cameras this member analyses now

    def as_json(self, cameras: list[str], lease_ttl_s: int) -> dict:
        return {
            "member": self.member,
            "etcd_connected": self.connected,
            "lease_ttl_s": lease_ttl_s,
            "members": [{"id": member, "capacity": capacity} for member, capacity in sorted(self.members.items())],
            "cameras": sorted(self.running),
            "assignment": {camera: self.owners.get(camera) for camera in sorted(cameras)},
            "intended": {camera: rendezvous_owner(camera, self.members) for camera in sorted(cameras)},
        }


class EtcdUnavailableError(Exception):
    """No etcd endpoint answered."""


class _Etcd:
    """The few etcd calls a member makes, over the configured endpoints: the first that answers is used
    until it fails, then the next."""

    def __init__(self, endpoints: list[str], timeout_s: float) -> None:
        self._clients = []
        for endpoint in endpoints:
            parts = urlsplit(endpoint)
            self._clients.append(etcd3gw.client(host=parts.hostname, port=parts.port or 2379,
                                                protocol=parts.scheme, timeout=timeout_s, api_path="/v3/"))
        self._names = [redact_url(endpoint) for endpoint in endpoints]
        self._current = 0

    @property
    def endpoint(self) -> str:
        return self._names[self._current]

    def call(self, path: str, payload: dict) -> dict:
        for _ in range(len(self._clients)):
            client = self._clients[self._current]
            try:
                return client.post(client.get_url(path), json=payload)
            except Etcd3Exception:
                self._current = (self._current + 1) % len(self._clients)
        raise EtcdUnavailableError(f"no etcd endpoint answered ({', '.join(self._names)})")

    def grant(self, ttl: int) -> str:
        return str(self.call("/lease/grant", {"TTL": ttl})["ID"])

    def keep_alive(self, lease: str) -> int:
        """The lease's granted TTL when the renewal was accepted; 0 or less when it has expired. Not proof
        that the lessor which will expire the lease was renewed (see ``time_to_live``)."""
        return int(self.call("/lease/keepalive", {"ID": lease}).get("result", {}).get("TTL", -1))

    def time_to_live(self, lease: str) -> int:
        """The lease's remaining whole seconds (rounded down) as the etcd leader's lessor counts them; -1
        when it is gone."""
        return int(self.call("/kv/lease/timetolive", {"ID": lease}).get("TTL", -1))

    def revoke(self, lease: str) -> None:
        self.call("/kv/lease/revoke", {"ID": lease})

    def put(self, key: str, value: str, lease: str) -> None:
        self.call("/kv/put", {"key": _encode(key), "value": _encode(value), "lease": lease})

    def prefix(self, prefix: str) -> dict[str, str]:
        return {key: value for key, (value, _) in self.prefix_with_leases(prefix).items()}

    def prefix_with_leases(self, prefix: str) -> dict[str, tuple[str, str]]:
        """key (less ``prefix``) -> (value, lease id, "0" for none); a linearizable read (etcd's default)."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        reply = self.call("/kv/range", {"key": _encode(prefix), "range_end": _encode(end)})
        return {_decode(kv["key"]).removeprefix(prefix): (_decode(kv.get("value", "")), str(kv.get("lease", "0")))
                for kv in reply.get("kvs", [])}

    def claim(self, key: str, value: str, lease: str) -> bool:
        """Put ``key`` under ``lease`` only if nobody holds it."""
        encoded = _encode(key)
        reply = self.call("/kv/txn", {
            "compare": [{"key": encoded, "result": "EQUAL", "target": "CREATE", "create_revision": 0}],
            "success": [{"request_put": {"key": encoded, "value": _encode(value), "lease": lease}}],
        })
        return bool(reply.get("succeeded"))

    def release(self, key: str, value: str) -> None:
        """Delete ``key`` only if it still holds ``value`` (this member's claim)."""
        encoded = _encode(key)
        self.call("/kv/txn", {
            "compare": [{"key": encoded, "result": "EQUAL", "target": "VALUE", "value": _encode(value)}],
            "success": [{"request_delete_range": {"key": encoded}}],
        })


def _decode(value: str) -> str:
    return base64.b64decode(value).decode()


class FleetMember:
    """This daemon's part in the fleet: a thread that keeps the lease, reads membership and ownership, and
    starts (``start_camera``) or stops (``stop_camera``) cameras as their keys are won or given up."""

    def __init__(self, config: FleetConfig, cameras: list[CameraConfig], metrics: Metrics,
                 start_camera: Callable[[CameraConfig], None], stop_camera: Callable[[str], None]) -> None:
        self.config = config
        self.member = config.member_id or socket.gethostname()
        self.metrics = metrics
        self._start_camera = start_camera
        self._stop_camera = stop_camera
        # A turn (keep-alive, then a look at members and owners) at least every TURN_S: a dead member's cameras
        # are claimed at most that long after its lease expired, whatever the TTL.
        self._interval = min(config.lease_ttl_s / 3, TURN_S)
        # A slow etcd (a loaded machine, a leader election) must not count as a lost one too soon; the fence
        # thread, not this timeout, bounds how long cameras run without a keep-alive.
        self._etcd = _Etcd(config.etcd, timeout_s=min(2.0, config.lease_ttl_s / 3))
        self._claim = json.dumps({"member": self.member})
        self._lock = threading.Lock()  # guards the camera list and the view against the HTTP readers
        self._cameras = {c.id: c for c in cameras if c.enabled}
        self._running: set[str] = set()
        self._lease: str | None = None
        self._registered = False  # members/<id> was put under the current lease
        self._last_keep_alive = 0.0  # monotonic start of the last turn whose lease etcd confirmed
        self._lease_valid_until = 0.0  # monotonic time before which etcd cannot have expired the lease
        self._connected = False
        self._members: dict[str, float] = {}
        self._owners: dict[str, str] = {}
        # Held while cameras start or stop (never across an etcd call), so the fence and the fleet thread
        # never start and stop cameras at once.
        self._ops = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet", daemon=True)
        self._fence = threading.Thread(target=self._fence_loop, name="fleet-fence", daemon=True)
        for camera_id in self._cameras:
            self.metrics.add_fleet_camera(camera_id)

    # -- interface for the daemon --------------------------------------------------------------------

    def start(self) -> None:
        log.info("fleet: member %s joining through etcd at %s (lease TTL %d s)", self.member, self._etcd.endpoint,
                 self.config.lease_ttl_s)
        self._thread.start()
        self._fence.start()

    def stop(self) -> None:
        """Stop taking part: no more claims; the cameras stay until the daemon stops them."""
        self._stop.set()
        for thread in (self._thread, self._fence):
            if thread.is_alive():
                thread.join(self._interval + 5)

    def leave(self) -> None:
        """Revoke the lease (after the daemon flushed its last events): the cameras' keys go at once and the
        other members take them on their next turn."""
        if self._lease is None:
            return
        try:
            self._etcd.revoke(self._lease)
            log.info("fleet: left; lease revoked, cameras handed over")
        except EtcdUnavailableError as error:
            log.warning("fleet: could not revoke the lease (%s); the cameras move when it expires", error)
        self._lease = None

    def camera_changes(self) -> threading.Lock:
        """Hold it while changing running cameras from outside (a reload), so the fleet does not meanwhile."""
        return self._ops

    def set_cameras(self, cameras: list[CameraConfig]) -> None:
        """A reload's camera list; the next turn stops removed cameras and claims new ones."""
        with self._lock:
            self._cameras = {c.id: c for c in cameras if c.enabled}
        for camera_id in self._cameras:
            self.metrics.add_fleet_camera(camera_id)

    def running(self) -> set[str]:
        with self._lock:
            return set(self._running)

    def view(self) -> FleetView:
        with self._lock:
            return FleetView(self.member, self._connected, dict(self._members), dict(self._owners),
                             frozenset(self._running))

    def status(self) -> dict:
        """GET /fleet."""
        with self._lock:
            cameras = list(self._cameras)
        return self.view().as_json(cameras, self.config.lease_ttl_s)

    # -- the fleet thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._turn(started)
            except EtcdUnavailableError as error:
                self._unreachable(error)
            except Exception:  # a bug must not end the fleet thread; the fence still stops unrenewed cameras
                log.exception("fleet: unexpected error")
                self._unreachable(EtcdUnavailableError("unexpected error"))
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - started)))

    def _fence_loop(self) -> None:
        """Stop every camera once the lease may be about to expire without a keep-alive (etcd away, or the
        fleet thread stuck in a call): checked every FENCE_CHECK_S, whatever the fleet thread is doing."""
        while not self._stop.wait(FENCE_CHECK_S):
            with self._ops:
                if not self._running or time.monotonic() < self._fence_deadline():
                    continue
                silent_for = time.monotonic() - self._last_keep_alive
                count = len(self._running)
                self._stop_all("fenced")
            log.warning("fleet: no etcd keep-alive for %.1f s; stopped %d camera(s) before the lease (TTL %d s) "
                        "could expire; they resume when etcd answers again", silent_for, count,
                        self.config.lease_ttl_s)

    def _fence_deadline(self) -> float:
        return self._lease_valid_until - FENCE_MARGIN_S

    def _renew(self, started: float) -> tuple[str, float]:
        """Keep the lease alive (or get a new one): the lease, and the monotonic time before which etcd cannot
        expire it. A keep-alive's success reply is not trusted on its own (it echoes the granted TTL, and the
        lessor that answered need not be the one that expires the lease, see docs/fleet.md): the leader's
        remaining time, asked after it, bounds the deadline."""
        ttl, lease = self.config.lease_ttl_s, self._lease
        if lease is not None and self._etcd.keep_alive(lease) > 0:
            asked = time.monotonic()
            remaining = self._etcd.time_to_live(lease)  # counted down from at the latest when answered
            if remaining > 0:
                return lease, min(started + ttl, asked + remaining)
        if lease is not None:
            self._lease_lost()
        lease = self._lease = self._etcd.grant(ttl)  # etcd starts the TTL after it received the request
        self._registered = False
        return lease, started + ttl

    def _lease_lost(self) -> None:
        with self._ops:
            log.warning("fleet: lease expired; stopping %d camera(s), joining again", len(self._running))
            self._lease_valid_until = 0.0
            self._stop_all("expired")
        self._lease, self._registered = None, False

    def _turn(self, started: float) -> None:
        prefix = self.config.prefix
        lease, valid_until = self._renew(started)
        registered = self._etcd.prefix_with_leases(f"{prefix}members/")
        members = {member: float(json.loads(value).get("capacity", 1.0)) for member, (value, _) in registered.items()}
        if registered.get(self.member, ("", ""))[1] != lease:
            if self._registered:  # a linearizable read without our key: the lease was revoked, whatever was said
                self._lease_lost()
                return
            # a new lease (or a put that failed before): register under it
            self._etcd.put(f"{prefix}members/{self.member}", json.dumps({"capacity": self.config.capacity}), lease)
            members[self.member] = self.config.capacity
        self._registered = True
        self._last_keep_alive, self._lease_valid_until = started, valid_until
        owners = {camera: json.loads(value).get("member", "")
                  for camera, value in self._etcd.prefix(f"{prefix}owners/").items()}
        if not self._connected:
            log.info("fleet: etcd reachable at %s; %d member(s)", self._etcd.endpoint, len(members))
        with self._lock:
            self._connected, self._members, self._owners = True, members, owners
            cameras = dict(self._cameras)
        self.metrics.fleet_etcd_up.set(1)
        self._reconcile(cameras, members, owners)

    def _reconcile(self, cameras: dict[str, CameraConfig], members: dict[str, float], owners: dict[str, str]) -> None:
        wanted = {camera_id for camera_id in cameras if rendezvous_owner(camera_id, members) == self.member}
        prefix = f"{self.config.prefix}owners/"
        for camera_id in sorted(self._running - wanted):  # stopped before its key goes: never two at once
            with self._ops:
                self._stop_one(camera_id, "released")
            self._etcd.release(prefix + camera_id, self._claim)
            owners.pop(camera_id, None)
        for camera_id, owner in owners.items():  # held but not running (a restart that kept the lease)
            if owner == self.member and camera_id not in wanted:
                self._etcd.release(prefix + camera_id, self._claim)
        for camera_id in sorted(wanted - self._running):
            holder = owners.get(camera_id)
            if holder is None and self._lease is not None \
                    and self._etcd.claim(prefix + camera_id, self._claim, self._lease):
                holder = self.member
            if holder != self.member:
                continue  # another member's: it gives the camera up on its next turn, or its lease expires
            with self._lock:
                self._owners[camera_id] = self.member
            with self._ops:
                if time.monotonic() >= self._fence_deadline():
                    return  # the keep-alive is too old to start anything; the next turn renews it
                log.info("fleet: analysing camera %s", camera_id)
                self._start_camera(cameras[camera_id])
                with self._lock:
                    self._running.add(camera_id)
            self.metrics.fleet_handovers.labels("acquired").inc()
        self._update_metrics(members)

    def _unreachable(self, error: EtcdUnavailableError) -> None:
        if self._connected:
            log.warning("fleet: %s; %s", error, f"keeping {len(self._running)} camera(s) until the lease could "
                        "expire" if self._running else "no cameras to stop")
        with self._lock:
            self._connected = False
        self.metrics.fleet_etcd_up.set(0)

    def _stop_all(self, reason: str) -> None:
        """Under ``_ops``."""
        for camera_id in sorted(self._running):
            self._stop_one(camera_id, reason)

    def _stop_one(self, camera_id: str, reason: str) -> None:
        """Under ``_ops``."""
        self._stop_camera(camera_id)
        with self._lock:
            self._running.discard(camera_id)
        log.info("fleet: stopped camera %s (%s)", camera_id, reason)
        self.metrics.fleet_handovers.labels(reason).inc()
        self.metrics.fleet_camera_owned.labels(camera_id).set(0)
        self.metrics.fleet_cameras_owned.set(len(self._running))

    def _update_metrics(self, members: dict[str, float]) -> None:
        self.metrics.fleet_members.set(len(members))
        with self._lock:
            cameras, running = list(self._cameras), set(self._running)
        self.metrics.fleet_cameras_owned.set(len(running))
        for camera_id in cameras:
            self.metrics.fleet_camera_owned.labels(camera_id).set(1 if camera_id in running else 0)
