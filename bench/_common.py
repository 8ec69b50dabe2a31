"""Helpers shared by the benchmarks (not a test; nothing here is timed)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    """The machine a benchmark ran on, for its table."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores {model}".strip()
