"""Reading a config file: YAML with duplicate keys rejected, environment overrides for secrets, and
pydantic's errors turned into one readable line per field."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import ValidationError

from daemon.config.models import Config, ConfigError


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


def _format_errors(source: str, error: ValidationError, overridden: Mapping[tuple[str, ...], str]) -> str:
    """One line per error, naming the field, or the environment variable that set it."""
    lines = [f"{source}: {error.error_count()} error(s) in configuration"]
    for item in error.errors():
        location = overridden.get(tuple(str(part) for part in item["loc"])) or (
            ".".join(str(part) for part in item["loc"]) or "(top level)")
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  {location}: {message}")
    return "\n".join(lines)


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
        raise ConfigError(_format_errors(source, error, overridden)) from None


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a YAML config file. Raises ConfigError with a readable message."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config file: {error.strerror or error}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    return parse_config(data, str(path), environ)


def json_logs_requested(path: str | Path) -> bool:
    """Whether the file asks for JSON logs (`log: {json: true}`), read leniently: a config that fails
    validation still has its errors logged in the format the log pipeline expects."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    section = data.get("log") if isinstance(data, dict) else None
    return isinstance(section, dict) and section.get("json") is True
