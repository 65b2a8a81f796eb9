"""A real, small filesystem for tests that need a full disk (ENOSPC): a tmpfs mounted for the test."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_tmpfs(directory: Path, size: str = "64k") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` on ``directory`` (created) for the block. Writes beyond its size fail with a
    real ENOSPC. Mounting needs root (or CAP_SYS_ADMIN), as the project's test machines run the suite; where it
    is refused the test fails, saying so, rather than passing without its fault."""
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(directory)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"the full-disk test needs to mount a tmpfs (run the suite as root): {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)
