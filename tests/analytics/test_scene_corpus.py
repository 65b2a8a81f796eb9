"""The regression corpus of hard scenes (tests/support/corpus.py): occlusion behind a pillar mid-crossing, two
people crossing while overlapping, a pause on the line, a stationary look-alike, leaving and re-entering after
the lost timeout, a person at the frame's edge, frames at irregular intervals. Analysed offline by argusd with
the real detector, each scene's line crossings per direction, zone entries, loitering, objects and stationary
objects are exactly its ground truth, on any CPU. docs/analytics.md tabulates the same corpus for both
trackers (scripts/scene_table.py)."""

from __future__ import annotations

import pytest

from tests.support.corpus import SCENES, Counts, run_corpus

# One daemon analyses the whole corpus (about 180 frames, the fall detector at 640): a couple of minutes on
# two idle cores, more on a loaded machine.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Counts]:
    return run_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.mark.parametrize("name", list(SCENES))
def test_scene_counts_match_ground_truth(name: str, reported: dict[str, Counts]) -> None:
    scene, counted = SCENES[name], reported[name]
    story = [(e["type"], e.get("rule"), e["track_id"], e["ts"], e.get("stationary")) for e in counted.events]
    assert counted.rules == scene.truth, story
    assert counted.objects == scene.objects, story
    assert counted.stationary == scene.stationary, story
    new = [e for e in counted.events if e["type"] == "new"]
    ends = [e for e in counted.events if e["type"] == "end"]
    assert len(new) == len(ends) == scene.objects, "every object is born once and ends once"
    assert {e["object_id"] for e in counted.events} == {e["object_id"] for e in new}
    assert {e["label"] for e in counted.events} == {"person"}
