"""What a benchmark ran on (BENCHMARKS.md records it beside every figure): CPU model, cores, memory, Python."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return f"{cpu}, {os.cpu_count()} cores, {memory / 2**30:.1f} GiB, Python {platform.python_version()}"
