"""Keeping glibc's allocator from growing with every camera reconnect.

Each reconnect starts new GStreamer streaming and decoder threads. glibc gives threads their own malloc arenas
(up to 8 per core), and memory freed into an arena is kept there, so a daemon whose cameras reconnect grew by
12-35 MiB each time they all did. Measured with benchmarks/soak.py (4 cameras of 720p footage, every client
dropped every 10 s): 215 MiB over 60 reconnects with glibc's defaults, 45 MiB with two arenas, and flat
(within 25 MiB of noise over 40 reconnects) with two arenas and a trim after each teardown.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def limit_arenas() -> None:
    """Cap the arenas threads allocate from; call before the first camera thread starts (no-op off glibc)."""
    if _LIBC is not None and not _LIBC.mallopt(M_ARENA_MAX, ARENAS):
        log.debug("memory: mallopt(M_ARENA_MAX) refused")


def release_free_memory() -> None:
    """Give the pages of freed memory in every arena back to the system (after a pipeline is torn down)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
