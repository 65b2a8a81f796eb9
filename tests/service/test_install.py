"""scripts/install.sh into a temporary prefix and root: a unit that `systemd-analyze verify` accepts, a venv
whose argusd runs without the test extras, the user and its groups, the directories' owners and modes, and a
second run that changes nothing it should keep.

It installs with --without-ml (no torch, torchvision, ultralytics): a full venv takes minutes of copying
gigabytes; the rest of the install is the same either way."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.assets import REPO

INSTALL = REPO / "scripts" / "install.sh"
ACCOUNT_FILES = ("passwd", "group", "shadow", "gshadow")
TEST_EXTRAS = {"pytest", "pytest-timeout", "jsonschema", "ruff", "mypy", "transformers"}

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="install.sh runs as root"),
    pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed"),
    pytest.mark.skipif(not Path("/usr/bin/python3.11").exists(), reason="Debian's python3.11 not installed"),
]


def _staging_root(path: Path) -> Path:
    """A root with this machine's accounts minus any render group, so the first run meets a host without one."""
    (path / "etc").mkdir(parents=True)
    for name in ACCOUNT_FILES:
        lines = Path("/etc", name).read_text().splitlines(keepends=True)
        copy = path / "etc" / name
        copy.touch(mode=0o600 if "shadow" in name else 0o644)  # password hashes stay root's
        copy.write_text("".join(line for line in lines if not line.startswith("render:")))
    return path


def _install(prefix: Path, root: Path) -> str:
    result = subprocess.run([str(INSTALL), "--prefix", str(prefix), "--root", str(root), "--without-ml"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _account(root: Path, file: str, name: str) -> list[str]:
    for line in (root / "etc" / file).read_text().splitlines():
        if line.split(":")[0] == name:
            return line.split(":")
    raise AssertionError(f"no {name} in {file}")


def _directive(unit: Path, key: str) -> str:
    values = [line.partition("=")[2] for line in unit.read_text().splitlines() if line.startswith(f"{key}=")]
    assert len(values) == 1, (key, values)
    return values[0]


def _mode_and_owner(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid


def test_install_into_a_prefix_and_root_then_again(tmp_path: Path) -> None:
    prefix, root = tmp_path / "argusd-prefix", _staging_root(tmp_path / "root")
    output = _install(prefix, root)
    assert "never downloads weights" in output and "check-config" in output

    unit = root / "etc/systemd/system/argusd.service"
    assert _directive(unit, "ExecStart") == f"{prefix}/.venv/bin/argusd run --config /etc/argusd/argusd.yaml"
    assert "/opt/argusd" not in unit.read_text()
    assert _directive(unit, "SupplementaryGroups") == "video"  # no render group: systemd would refuse it
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr

    argusd = prefix / ".venv/bin/argusd"
    version = subprocess.run([str(argusd), "--version"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("argusd "), version.stdout + version.stderr
    installed = subprocess.run([str(prefix / ".venv/bin/pip"), "list", "--format=freeze"], capture_output=True,
                               text=True, timeout=60, check=True).stdout
    names = {line.split("==")[0].lower() for line in installed.splitlines()}
    assert "argusd" in names and not names & TEST_EXTRAS, installed
    location = subprocess.run([str(prefix / ".venv/bin/python"), "-c", "import daemon; print(daemon.__file__)"],
                              capture_output=True, text=True, timeout=60, check=True, cwd=tmp_path).stdout
    assert location.startswith(str(prefix)), location  # a copy in the venv, not a link to this checkout

    user = _account(root, "passwd", "argusd")
    uid, gid = int(user[2]), int(user[3])
    assert user[5:] == ["/var/lib/argusd", "/usr/sbin/nologin"] and uid < 1000
    assert "argusd" in _account(root, "group", "video")[3].split(",")
    config = root / "etc/argusd/argusd.yaml"
    assert config.read_text() == (REPO / "config/argusd.example.yaml").read_text()
    assert _mode_and_owner(config) == (0o640, 0, gid)
    assert _mode_and_owner(root / "etc/argusd") == (0o750, 0, gid)
    assert _mode_and_owner(root / "var/lib/argusd") == (0o750, uid, gid)
    assert (prefix / "docs/operations.md").is_file()  # the unit's Documentation=
    assert "check-config" in (root / "usr/share/bash-completion/completions/argusd").read_text()

    # Again, on a host that now has a render group and an edited config: the config stays, the groups follow.
    with (root / "etc/group").open("a") as groups:
        groups.write("render:x:990:\n")
    config.write_text("# edited\n")
    config.chmod(0o644)
    _install(prefix, root)
    assert config.read_text() == "# edited\n" and _mode_and_owner(config) == (0o640, 0, gid)
    assert _directive(unit, "SupplementaryGroups") == "video render"
    assert "argusd" in _account(root, "group", "render")[3].split(",")
    assert _account(root, "passwd", "argusd") == user
