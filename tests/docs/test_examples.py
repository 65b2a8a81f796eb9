"""The shipped example configuration stays valid."""

from tests.support.assets import REPO
from daemon.config.loading import load_config


def test_example_config_is_valid() -> None:
    config = load_config(REPO / "config" / "argusd.example.yaml", environ={})
    assert [c.id for c in config.cameras] == ["entrance", "loading-dock", "lab", "clip", "pattern"]
