"""What a running process holds, read from /proc: resident memory, open descriptors, threads."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ProcessStats:
    rss_mib: float
    fds: int
    threads: int

    @classmethod
    def of(cls, pid: int) -> ProcessStats:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":" in line)
        rss_kib = int(fields["VmRSS"].split()[0])
        return cls(rss_kib / 1024, len(os.listdir(f"/proc/{pid}/fd")), int(fields["Threads"]))
