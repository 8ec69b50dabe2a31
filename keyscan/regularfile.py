"""Policy files (config, baseline, rule files) are read only when they are regular files of
bounded size: a FIFO cannot block the scan, ``/dev/zero`` cannot exhaust memory."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from keyscan.errors import KeyscanError

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024
CONFIG_MAX_BYTES = 1 * MIB
BASELINE_MAX_BYTES = 64 * MIB
RULES_MAX_BYTES = 1 * MIB  # per rule file


CONFIG_NAMES = (".keyscan.yaml", ".keyscan.yml")


def find_config(start: str | os.PathLike[str] | None = None) -> Path | None:
    """``.keyscan.yaml`` in ``start`` (default: cwd) or a parent, up to the repository root.
    (Here, not in keyscan.config: a run without one never imports that module; nor pathlib,
    unless one is found.)"""
    folder = os.path.realpath(os.getcwd() if start is None else os.fspath(start))
    while True:
        for name in CONFIG_NAMES:
            candidate = os.path.join(folder, name)
            # Not only regular files: a FIFO or device here is refused by load_config with
            # one line, not skipped in silence.
            if os.path.lexists(candidate) and not os.path.isdir(candidate):
                from pathlib import Path

                return Path(candidate)
        if os.path.exists(os.path.join(folder, ".git")):
            return None
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


class PolicyFileError(KeyscanError, ValueError):
    """A config, baseline or rule file that is not a regular file of bounded size."""


def read_regular(path: str | os.PathLike[str], limit: int, what: str) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes.

    Opened with O_NONBLOCK, so a FIFO cannot block the open, then checked with fstat on the
    open descriptor: a FIFO, device (/dev/zero) or folder is refused, and so is a file larger
    than ``limit`` (a file growing while read is cut at ``limit + 1`` and refused). OSError
    (FileNotFoundError, permissions) propagates for the caller's message."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PolicyFileError(f"{path}: {what} is not a regular file: refusing to read it")
        too_big = f"{path}: {what} is larger than {size_text(limit)}: refusing to read it"
        if info.st_size > limit:
            raise PolicyFileError(too_big)
        chunks: list[bytes] = []
        got = 0
        while got <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > limit:
            raise PolicyFileError(too_big)
        return b"".join(chunks)
    finally:
        os.close(fd)


def size_text(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit % MIB == 0 else f"{limit} bytes"


