"""docs/config.md documents every config key and is current."""

import re

from daemon.config.models import Config
from daemon.config.reference import render
from tests.support.assets import REPO


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


def _table_rows(text: str) -> list[list[str]]:
    """The cells of every table row, split on the '|' that are not escaped."""
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            for line in text.splitlines() if line.startswith("| `")]


def test_types_read_as_yaml_and_every_row_has_four_cells() -> None:
    rows = _table_rows(render())
    assert rows and all(len(cells) == 4 for cells in rows), [cells for cells in rows if len(cells) != 4]
    types = {cells[0]: cells[1] for cells in rows}
    assert types["`polygon`"] == "list of [x, y]"
    assert types["`points`"] == "[[x, y], [x, y]]"
    assert types["`kind`"] == "`bytetrack` or `botsort`"
    assert types["`fsync`"] == "`always`, `batch`, `interval` or `never`"
    assert not [t for t in types.values() if "typing." in t or "FieldInfo" in t or "tuple[" in t]
