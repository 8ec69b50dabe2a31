"""Private files: reports, caches, stores and logs that may hold what a leak is made of.

* ``write_private(path, text)``: the whole file at once. Written to a temporary file in the
  same folder (created 0600 with ``O_EXCL``), then ``os.replace``-d onto ``path``: a symlink
  at ``path`` is replaced, never followed; a pre-existing 0644 file becomes a 0600 one; a
  reader (or an interrupted run) never sees a half-written file. A device, pipe or socket
  named as ``path`` (``/dev/stdout``, ``/dev/null``, a FIFO) is written into, never replaced.
* ``open_private(path, flags)`` / ``ensure_private(path)``: files kept open or appended to
  (an audit log, a SQLite database). Opened with ``O_NOFOLLOW`` (and ``O_NONBLOCK``, so a
  FIFO cannot block), refused unless a regular file, and restricted to 0600.

Every refusal is a ``PrivateFileError`` (an ``OSError``) with one line naming the file and why.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from keyscan.errors import KeyscanError

PRIVATE_MODE = 0o600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class PrivateFileError(KeyscanError, OSError):
    """A private file that cannot be written safely; ``str()`` is one line."""

    def __init__(self, path: str | os.PathLike[str], why: str) -> None:
        super().__init__(f"{os.fspath(path)}: {why}")
        self.path = os.fspath(path)
        self.why = why

    def __str__(self) -> str:
        return f"{self.path}: {self.why}"


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def write_private(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8, LF) to ``path`` as a new 0600 file that replaces the old one."""
    target = os.fspath(path)
    if os.path.isdir(target):
        raise PrivateFileError(target, "is a directory")
    if _is_stream(target):
        _write_stream(target, text)
        return
    folder = os.path.dirname(target) or "."
    base = os.path.basename(target)
    fd = -1
    tmp = ""
    for attempt in range(100):
        tmp = os.path.join(folder, f".{base}.{os.getpid()}.{attempt}.tmp")
        try:
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, PRIVATE_MODE
            )
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise PrivateFileError(target, f"cannot create: {_why(exc)}") from None
    if fd < 0:
        raise PrivateFileError(target, "cannot create a temporary file next to it")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            os.fchmod(fh.fileno(), PRIVATE_MODE)  # whatever the umask
            fh.write(text)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise PrivateFileError(target, f"cannot write: {_why(exc)}") from None
        raise


def _is_stream(target: str) -> bool:
    """A device, pipe or socket the user named (``/dev/stdout``, ``/dev/null``, a FIFO): it is
    written into, never replaced by a file (as root, a rename would replace the device node)."""
    try:
        mode = os.stat(target).st_mode  # follows /dev/stdout -> /proc/self/fd/1 -> the pipe
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _write_stream(target: str, text: str) -> None:
    try:
        fd = os.open(target, os.O_WRONLY | _CLOEXEC)
    except OSError as exc:
        raise PrivateFileError(target, f"cannot open: {_why(exc)}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
    except OSError as exc:
        raise PrivateFileError(target, f"cannot write: {_why(exc)}") from None


def open_private(path: str | os.PathLike[str], flags: int) -> int:
    """``os.open`` for a private file that stays open: no symlink, a regular file, mode 0600
    (created so, or tightened). Returns the descriptor."""
    target = os.fspath(path)
    try:
        fd = os.open(target, flags | _NOFOLLOW | _NONBLOCK | _CLOEXEC, PRIVATE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(target):
            raise PrivateFileError(target, "is a symbolic link: refusing to write through it") \
                from None
        if exc.errno == errno.ENXIO:
            raise PrivateFileError(target, "is not a regular file: refusing to write") from None
        raise PrivateFileError(target, f"cannot open: {_why(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PrivateFileError(target, "is not a regular file: refusing to write")
        if stat.S_IMODE(info.st_mode) != PRIVATE_MODE:
            try:
                os.fchmod(fd, PRIVATE_MODE)
            except OSError as exc:
                raise PrivateFileError(
                    target, f"cannot restrict to mode 0600: {_why(exc)}"
                ) from None
        if _NONBLOCK:
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def ensure_private(path: str | os.PathLike[str]) -> None:
    """Create ``path`` 0600 if missing, or check an existing one is a regular file (no
    symlink) and tighten it to 0600: before a library (sqlite3) opens it by name."""
    os.close(open_private(path, os.O_RDWR | os.O_CREAT))


def private_dir(path: str | os.PathLike[str]) -> None:
    """Create a folder (and its parents) 0700 when missing."""
    Path(path).mkdir(parents=True, exist_ok=True, mode=0o700)
