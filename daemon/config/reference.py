"""Renders the configuration reference (docs/config.md) from the pydantic models' field descriptions."""

from __future__ import annotations

import enum
import json
import types
import typing

from pydantic import AwareDatetime, BaseModel
from pydantic_core import PydanticUndefined

from daemon.config.models import Config, Point, nested_model

# Types with a name that says more than their structure.
NAMED_TYPES = {Point: "[x, y]", AwareDatetime: "ISO 8601 time with offset"}

HEADER = """# Configuration reference

Generated from `daemon/config/models.py` by `argusd config-reference`; do not edit by hand.
Unknown keys are errors. `argusd check-config FILE` validates a file without starting anything.
"""


def _choices(values: typing.Iterable[object]) -> str:
    """`a`, `b` or `c`: the values a key may take."""
    quoted = [f"`{value}`" for value in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _type_name(annotation: object) -> str:
    """A type as a reader of the YAML sees it: `list of [x, y]`, `` `bytetrack` or `botsort` ``, `int or null`."""
    for named, name in NAMED_TYPES.items():
        if annotation == named:
            return name
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _choices(member.value for member in annotation)
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return "mapping" if issubclass(annotation, BaseModel) else annotation.__name__
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args).replace("NoneType", "null")
    if origin is typing.Literal:
        return _choices(args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is tuple:
        return f"[{', '.join(_type_name(a) for a in args)}]"
    if origin is dict:
        return f"mapping {_type_name(args[0])} → {_type_name(args[1])}"
    raise TypeError(f"no reference rendering for {annotation!r}: add one to _type_name")


def _cell(text: str) -> str:
    """Table cell text: a '|' would end the cell."""
    return text.replace("|", "\\|")


def _default(field: object) -> str:
    default = getattr(field, "default", PydanticUndefined)
    if default is PydanticUndefined:
        factory = getattr(field, "default_factory", None)
        if factory is None:
            return "**required**"
        default = factory()
    if isinstance(default, BaseModel):
        return "(section)"
    return f"`{json.dumps(default, default=lambda model: model.model_dump(exclude_defaults=True))}`"


def _rows(model: type[BaseModel], prefix: str, sections: list[tuple[str, type[BaseModel]]]) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        nested = nested_model(field.annotation)
        if nested is not None:
            origin = typing.get_origin(field.annotation)
            suffix = "[]" if origin is list else ".<name>" if origin is dict else ""
            sections.append((f"{prefix}{key}{suffix}", nested))
        rows.append(f"| `{key}` | {_cell(_type_name(field.annotation))} | {_cell(_default(field))} | "
                    f"{_cell(field.description or '')} |")
    return rows


def render() -> str:
    lines = [HEADER]
    sections: list[tuple[str, type[BaseModel]]] = [("", Config)]
    while sections:
        path, model = sections.pop(0)
        lines.append(f"\n## `{path}`\n" if path else "\n## Top level\n")
        lines.append("| key | type | default | meaning |\n|---|---|---|---|")
        found: list[tuple[str, type[BaseModel]]] = []
        lines.extend(_rows(model, f"{path}." if path else "", found))
        sections.extend(found)
    return "\n".join(lines) + "\n"
