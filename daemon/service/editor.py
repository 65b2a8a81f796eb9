"""The console's zone and line editor on the server side: a camera's new zones and lines are checked by the
same validation as `argusd check-config` (parse_config on the whole file with the change made), turned
into the YAML block for that camera, and, when http.allow_config_writes is on, written to the config file
and reloaded as SIGHUP would. The file is rewritten from its parsed form: comments in it are not kept."""

from __future__ import annotations

import copy
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import anyio.to_thread
import yaml

from daemon.config.loading import parse_config, read_config_data
from daemon.config.models import ConfigError


class EditorError(ValueError):
    """The request or the rules it carries are not valid; the message says which field, in one line."""


class ConfigEditor:
    def __init__(self, config_path: str, writable: bool, request_reload: Callable[[], None]) -> None:
        self.config_path = Path(config_path)
        self.writable = writable
        self._request_reload = request_reload
        self._write_lock = threading.Lock()

    async def validate(self, body: object) -> dict:
        _, block = await anyio.to_thread.run_sync(self._checked, body)
        return {"valid": True, "yaml": block}

    async def apply(self, body: object) -> dict:
        def write() -> str:
            with self._write_lock:
                data, block = self._checked(body)
                _replace_file(self.config_path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
            self._request_reload()
            return block

        block = await anyio.to_thread.run_sync(write)
        return {"valid": True, "applied": True, "yaml": block}

    def _checked(self, body: object) -> tuple[dict, str]:
        """(the whole config with the change made, the camera's zones/lines YAML block)."""
        if not isinstance(body, dict) or not isinstance(body.get("camera"), str):
            raise EditorError('the body must be {"camera": "<id>", "zones": [...], "lines": [...]}')
        camera_id, zones, lines = body["camera"], body.get("zones", []), body.get("lines", [])
        if not isinstance(zones, list) or not isinstance(lines, list):
            raise EditorError("zones and lines must be lists")
        try:
            data = read_config_data(self.config_path)
        except ConfigError as error:
            raise EditorError(str(error)) from None
        if not isinstance(data, dict):
            raise EditorError(f"{self.config_path}: the top level must be a mapping")
        cameras = data.get("cameras")
        camera = next((c for c in cameras or [] if isinstance(c, dict) and c.get("id") == camera_id), None)
        if camera is None:
            raise EditorError(f"no camera {camera_id!r} in {self.config_path}")
        rules = {key: value for key, value in (("zones", zones), ("lines", lines)) if value}
        for key in ("zones", "lines"):
            camera.pop(key, None)
        camera.update(rules)
        try:
            parse_config(copy.deepcopy(data), str(self.config_path))  # the environment's secrets stay out of data
        except ConfigError as error:
            raise EditorError(" ".join(str(error).split())) from None
        return data, yaml.safe_dump(rules, sort_keys=False, allow_unicode=True) if rules else "zones: []\n"


def _replace_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a reload never reads half a file)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
