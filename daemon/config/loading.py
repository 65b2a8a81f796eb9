"""Reading a config file: YAML with duplicate keys rejected, environment overrides for secrets, and
pydantic's errors turned into one readable line per field."""

from __future__ import annotations

import difflib
import os
import typing
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from daemon.config.models import Config, ConfigError, duplicate_camera_id, duplicates, nested_model


class _UniqueKeyLoader(yaml.SafeLoader):
    """Rejects a key given twice in one mapping, which plain YAML loading silently resolves to the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, f"a key must be a plain value, not {type(key).__name__}", key_node.start_mark
                ) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


ENV_OVERRIDES = {"ARGUSD_REDIS_URL": ("redis", "url")}


def _format_errors(source: str, error: ValidationError, data: dict,
                   overridden: Mapping[tuple[str, ...], str]) -> str:
    """One line per error, naming the field (list items by their id or name: ``cameras[door].fps``) or the
    environment variable that set it. A validator reporting several problems gives a line for each."""
    lines = []
    for item in error.errors():
        location = overridden.get(tuple(str(part) for part in item["loc"])) or _location(item["loc"], data)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = _unknown_key(item["loc"])
        lines += [f"  {location}: {problem}" if location else f"  {problem}" for problem in message.splitlines()]
    if not any(item["loc"] == () for item in error.errors()):
        # Config's own cross-section checks did not run (they need valid fields); a duplicate camera id
        # is still worth knowing in the same pass.
        cameras = data.get("cameras")
        ids = [camera.get("id") for camera in cameras if isinstance(camera, dict)] if isinstance(cameras, list) else []
        lines += [f"  {duplicate_camera_id(camera_id)}" for camera_id in duplicates(ids)]
    return "\n".join([f"{source}: {len(lines)} error(s) in configuration", *lines])


def _location(loc: tuple[int | str, ...], data: object) -> str:
    """``cameras[door].zones[dock].polygon[3][0]`` for ``('cameras', 0, 'zones', 0, 'polygon', 3, 0)``: a list
    item is named by its ``id`` or ``name`` in the file when it has a printable one, else by its index."""
    text, node = "", data
    for part in loc:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            key = (node.get("id") or node.get("name")) if isinstance(node, dict) else None
            text += f"[{key}]" if isinstance(key, str) and key.strip() and key.isprintable() else f"[{part}]"
        else:
            node = node.get(part) if isinstance(node, dict) else None
            text += f".{part}" if text else part
    return text


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    """"unknown key", with the closest known key of that section when one is close."""
    known = _keys_of(_section_model(loc[:-1]))
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    return f"unknown key; did you mean {close[0]!r}?" if close else "unknown key"


def _section_model(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` (None when there is none)."""
    model: type[BaseModel] | None = Config
    annotation: object = None
    for part in loc:
        if isinstance(part, int) or model is None:
            continue  # a list index: the item's model was found with the list's field
        if typing.get_origin(annotation) is dict:  # a key of a dict of models (captions.captioners.<name>)
            annotation = None
            continue
        field = next((f for name, f in model.model_fields.items() if part in (name, f.alias)), None)
        annotation = field.annotation if field is not None else None
        model = nested_model(annotation)
    return model


def _keys_of(model: type[BaseModel] | None) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()] if model else []


def parse_config(data: object, source: str = "<config>", environ: Mapping[str, str] | None = None) -> Config:
    """Validate a mapping (from YAML) into a Config, applying environment overrides for secrets."""
    environ = os.environ if environ is None else environ
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with at least 'cameras' and 'detector'")
    overridden: dict[tuple[str, ...], str] = {}
    for variable, (section, key) in ENV_OVERRIDES.items():
        if environ.get(variable):
            section_data = data.setdefault(section, {})
            if isinstance(section_data, dict):
                section_data[key] = environ[variable]
                overridden[(section, key)] = variable
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_format_errors(source, error, data, overridden)) from None


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a YAML config file. Raises ConfigError with a readable message."""
    return parse_config(read_config_data(path), str(path), environ)


def read_config_data(path: str | Path) -> object:
    """The YAML document of a config file, not yet validated (duplicate keys refused)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config file: {error.strerror or error}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(error, 'problem', error)}") from None


def json_logs_requested(path: str | Path) -> bool:
    """Whether the file asks for JSON logs (`log: {json: true}`), read leniently: a config that fails
    validation still has its errors logged in the format the log pipeline expects."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    section = data.get("log") if isinstance(data, dict) else None
    return isinstance(section, dict) and section.get("json") is True
