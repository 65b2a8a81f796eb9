"""Rendezvous hashing, the function every member computes the assignment with: weights, and minimal moves."""

from __future__ import annotations

from collections import Counter

from daemon.service.fleet import rendezvous_owner

CAMERAS = [f"camera-{index}" for index in range(3000)]


def test_capacity_weights_share_the_cameras_in_proportion() -> None:
    members = {"small": 1.0, "medium": 2.0, "large": 3.0}
    counts = Counter(rendezvous_owner(camera, members) for camera in CAMERAS)
    for member, capacity in members.items():
        share = counts[member] / len(CAMERAS)
        assert abs(share - capacity / 6) < 0.03, (member, share)


def test_a_membership_change_moves_only_the_cameras_it_must() -> None:
    before = {camera: rendezvous_owner(camera, dict.fromkeys(["a", "b", "c"], 1.0)) for camera in CAMERAS}
    after = {camera: rendezvous_owner(camera, dict.fromkeys(["a", "c"], 1.0)) for camera in CAMERAS}
    moved = {camera for camera in CAMERAS if before[camera] != after[camera]}
    assert moved == {camera for camera, owner in before.items() if owner == "b"}
    rejoined = {camera: rendezvous_owner(camera, dict.fromkeys(["a", "b", "c", "d"], 1.0)) for camera in CAMERAS}
    gained = {camera for camera in CAMERAS if rejoined[camera] != before[camera]}
    assert {rejoined[camera] for camera in gained} == {"d"}
    assert abs(len(gained) / len(CAMERAS) - 0.25) < 0.03


def test_no_members_no_owner() -> None:
    assert rendezvous_owner("x", {}) is None
