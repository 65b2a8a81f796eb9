"""docs/config.md documents every config key and is current."""

from tests.support.assets import REPO
from daemon.config.models import Config
from daemon.config.reference import render


def test_config_reference_is_current() -> None:
    assert (REPO / "docs" / "config.md").read_text() == render(), "run: argusd config-reference > docs/config.md"


def test_every_key_has_a_description() -> None:
    pending = [Config]
    while pending:
        model = pending.pop()
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            for candidate in (field.annotation, *getattr(field.annotation, "__args__", ())):
                if isinstance(candidate, type) and hasattr(candidate, "model_fields"):
                    pending.append(candidate)
