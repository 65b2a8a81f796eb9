"""The captions configuration: defaults, per-camera choice, and clear errors for what cannot work."""

from __future__ import annotations

import pytest

from daemon.config.loading import parse_config
from daemon.config.models import ConfigError
from plugins.interfaces import PluginError
from plugins.registry import load_captioner


def config(camera_captions: object, captions: object = None) -> dict:
    data = {"cameras": [{"id": "door", "url": "test://ball", "captions": camera_captions}],
            "detector": {"model": "model.pt"}}
    if captions is not None:
        data["captions"] = captions
    return data


def test_an_empty_camera_section_means_the_template_on_end() -> None:
    parsed = parse_config(config({}))
    assert parsed.cameras[0].captions.captioner == "template"
    assert parsed.cameras[0].captions.events == ["end"]
    assert parsed.captions.captioners["template"].plugin == "template"
    assert parse_config(config(None)).cameras[0].captions is None


def test_a_camera_naming_an_undefined_captioner_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"cameras\[door\].captions.captioner: 'vlm' is not defined under "
                                          r"captions.captioners \(template\)"):
        parse_config(config({"captioner": "vlm"}))


@pytest.mark.parametrize(("camera_captions", "captions", "message"), [
    ({"events": ["exit"]}, None, "cameras[door].captions.events[0]: Input should be 'new', 'update', 'end'"),
    ({"events": []}, None, "cameras[door].captions.events: List should have at least 1 item"),
    ({"captioner": "vlm"}, {"captioners": {"vlm": {"plugin": "openai", "base_url": "ftp://x"}}},
     "captions.captioners.vlm.base_url: must start with http:// or https://"),
    ({}, {"captioners": {"template": {"workers": 0}}}, "captions.captioners.template.workers: Input should be"),
    ({}, {"captioners": {"template": {"device": "tpu"}}}, "captions.captioners.template.device: must be auto"),
])
def test_bad_values_name_the_field(camera_captions: dict, captions: dict | None, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(config(camera_captions, captions))
    assert message in str(raised.value)


def test_an_unknown_plugin_lists_the_installed_ones() -> None:
    parsed = parse_config(config({"captioner": "x"}, {"captioners": {"x": {"plugin": "nope"}}}))
    with pytest.raises(PluginError, match=r"no plugin 'nope' in argusd.captioners \(available: .*openai, "
                                          r"template, transformers"):
        load_captioner(parsed.captions.captioners["x"])
