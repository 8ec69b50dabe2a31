"""Files, directories and stdin: walk, read in bounded memory, detect, locate.

* Directories are walked without following symlinks (a symlink named on the command line is
  followed); ``.git`` folders are skipped; ``--exclude`` globs prune files and folders.
* Every file is read in chunks of ``CHUNK`` bytes that overlap by ``OVERLAP`` bytes, so memory
  stays bounded and a key across a chunk boundary is still found exactly once.
* Large trees are split across worker processes; small scans stay in one process so that a
  pre-commit run on a few files starts instantly.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import stat
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from keyscan.content import ContentOptions, scan_buffer, scan_special_file
from keyscan.detector import MAX_MATCH_SPAN, Detector
from keyscan.findings import Hit, is_binary
from keyscan.models import Location, Rule, ScanError

CHUNK = 8 * 1024 * 1024
OVERLAP = 2 * MAX_MATCH_SPAN
# A scan goes to worker processes once its first files add up to this many bytes, or once
# the walk has found PARALLEL_MIN_FILES * 16 files; otherwise it stays in one process.
PARALLEL_MIN_BYTES = 32 * 1024 * 1024
PARALLEL_MIN_FILES = 64
# Files handed to a worker at a time (dynamic scheduling keeps both cores busy to the end).
BATCH_FILES = 256


@dataclass
class FileTask:
    display: str  # the path as reported
    path: str  # the path to open
    size: int


@dataclass
class FileScan:
    hits: list[Hit] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    files: int = 0
    bytes: int = 0


def _glob_match(rel: str, name: str, patterns: Sequence[str]) -> bool:
    for pat in patterns:
        pat = pat.rstrip("/")
        if "/" not in pat:
            if fnmatch.fnmatchcase(name, pat):
                return True
        else:
            p = pat[3:] if pat.startswith("**/") else pat
            if fnmatch.fnmatchcase(rel, pat) or fnmatch.fnmatchcase(rel, p):
                return True
            if p.startswith("./") and fnmatch.fnmatchcase(rel, p[2:]):
                return True
    return False


def walk(
    targets: Sequence[str], excludes: Sequence[str] = ()
) -> tuple[list[FileTask], list[ScanError], list[str]]:
    """Files to scan under targets. Returns (tasks, errors, notes)."""
    errors: list[ScanError] = []
    notes: list[str] = []
    tasks = list(iter_walk(targets, excludes, errors, notes))
    return tasks, errors, notes


def iter_walk(
    targets: Sequence[str],
    excludes: Sequence[str],
    errors: list[ScanError],
    notes: list[str],
) -> Iterator[FileTask]:
    """Yield files to scan under targets as the walk finds them (sizes are not known yet:
    no stat per file; the reader learns the size from the open file)."""
    seen: set[tuple[int, int]] = set()
    for target in targets:
        try:
            st = os.stat(target)  # follows a symlink named explicitly
        except FileNotFoundError:
            errors.append(ScanError(target, "no such file or directory"))
            continue
        except OSError as exc:
            errors.append(ScanError(target, exc.strerror or str(exc)))
            continue
        if stat.S_ISREG(st.st_mode):
            ident = (st.st_dev, st.st_ino)
            if ident not in seen:
                seen.add(ident)
                yield FileTask(target, target, st.st_size)
        elif stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(target, excludes, errors, notes)
        else:
            notes.append(f"{target}: skipped, not a regular file")


def _walk_dir(
    root: str,
    excludes: Sequence[str],
    errors: list[ScanError],
    notes: list[str],
) -> Iterator[FileTask]:
    strip = root in (".", "./")
    stack = [("", root)]
    while stack:
        rel_dir, dir_path = stack.pop()
        try:
            with os.scandir(dir_path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            errors.append(ScanError(dir_path, f"cannot list directory: {exc.strerror or exc}"))
            continue
        subdirs: list[tuple[str, str]] = []
        for entry in entries:
            rel = f"{rel_dir}{entry.name}"
            if excludes and _glob_match(rel, entry.name, excludes):
                continue
            try:
                if entry.is_symlink():
                    continue  # never followed inside a tree: no loops, no escapes
                if entry.is_dir(follow_symlinks=False):
                    if entry.name == ".git":
                        continue
                    subdirs.append((rel + "/", entry.path))
                elif entry.is_file(follow_symlinks=False):
                    yield FileTask(rel if strip else entry.path, entry.path, -1)
                else:
                    notes.append(f"{entry.path}: skipped, not a regular file")
            except OSError as exc:
                errors.append(ScanError(entry.path, exc.strerror or str(exc)))
        stack.extend(reversed(subdirs))


def scan_stream(
    detector: Detector,
    stream: BinaryIO,
    template: Location,
    options: ContentOptions | None = None,
    chunk: int = CHUNK,
    errors: list[ScanError] | None = None,
) -> tuple[list[Hit], int]:
    """Scan a binary stream in overlapping chunks. Returns (hits, bytes read)."""
    hits: list[Hit] = []
    buf = stream.read(chunk)
    template.binary = is_binary(buf)
    base = 0  # absolute offset of buf[0]
    line = 1  # line number at buf[0]
    column = 0  # characters of that line before buf[0] (a long line spans chunks)
    total = len(buf)
    while True:
        more = stream.read(chunk) if len(buf) >= chunk else b""
        last = not more
        # Matches that start in the overlap are left for the next buffer, which re-reads it.
        limit = len(buf) if last else len(buf) - OVERLAP
        if buf:
            found = scan_buffer(detector, buf, template, options, base, line, limit, errors)
            if column:  # hits on the chunk's first line: count the line from its start
                first_nl = buf.find(b"\n")
                first_line_end = len(buf) if first_nl < 0 else first_nl
                for h in found:
                    if h.location.offset - base < first_line_end:
                        h.location.column += column
            hits.extend(found)
        if last:
            return hits, total
        line += buf.count(b"\n", 0, limit)
        nl = buf.rfind(b"\n", 0, limit)
        tail = buf[nl + 1 : limit].decode("utf-8", "replace")
        column = len(tail) if nl >= 0 else column + len(tail)
        base += limit
        buf = buf[limit:] + more
        total += len(more)


def _read_small(fd: int, size: int) -> bytes | None:
    """The whole file if it still holds at most CHUNK bytes, else None (stream it)."""
    parts: list[bytes] = []
    total = 0
    want = size + 1  # one byte more tells a file that grew since fstat
    while True:
        ask = max(want - total, 65536)
        part = os.read(fd, ask)
        parts.append(part)
        total += len(part)
        if total > CHUNK:
            return None
        if len(part) < ask:  # a short read of a regular file is its end: no extra syscall
            return b"".join(parts)


def scan_file(
    detector: Detector, task: FileTask, out: FileScan, options: ContentOptions | None = None
) -> None:
    try:
        # O_NONBLOCK: a FIFO swapped in since the walk must not hang the scan.
        fd = os.open(task.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        out.errors.append(ScanError(task.display, f"cannot read: {exc.strerror or exc}"))
        return
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            out.errors.append(ScanError(task.display, "cannot read: not a regular file"))
            return
        data = _read_small(fd, st.st_size) if st.st_size <= CHUNK else None
        template = Location(path=task.display, line=0, column=0, offset=0)
        if data is not None:
            template.binary = is_binary(data)
            hits = scan_buffer(detector, data, template, options, errors=out.errors)
            size = len(data)
        else:
            os.lseek(fd, 0, os.SEEK_SET)
            with open(fd, "rb", buffering=0, closefd=False) as fh:
                # Archives and notebooks are read whole (archives as a seekable file).
                opts = options or ContentOptions()
                special = scan_special_file(detector, fh, template, opts, st.st_size, out.errors)
                hits, size = special or scan_stream(
                    detector, fh, template, options, errors=out.errors
                )
        after = os.fstat(fd)
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            out.errors.append(ScanError(task.display, "changed while being scanned: scan again"))
    except OSError as exc:
        out.errors.append(ScanError(task.display, f"cannot read: {exc.strerror or exc}"))
        return
    finally:
        os.close(fd)
    out.hits.extend(hits)
    out.files += 1
    out.bytes += size


def scan_tasks(
    detector: Detector, tasks: Iterable[FileTask], options: ContentOptions | None = None
) -> FileScan:
    out = FileScan()
    for task in tasks:
        scan_file(detector, task, out, options)
    return out


def _worker(job: tuple[Sequence[Rule], ContentOptions | None, list[FileTask]]) -> FileScan:
    rules, options, tasks = job
    return scan_tasks(Detector(rules), tasks, options)


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _known_size(task: FileTask) -> int:
    if task.size < 0:
        try:
            task.size = os.stat(task.path).st_size
        except OSError:
            task.size = 0
    return task.size


def scan_files(
    rules: Sequence[Rule],
    tasks: Iterable[FileTask],
    jobs: int | None = None,
    options: ContentOptions | None = None,
) -> FileScan:
    """Scan files, in worker processes when the work is large enough to pay for them.

    ``tasks`` may be a lazy walk: the first files are looked at to decide; a large scan then
    hands batches to the workers while the walk goes on.
    """
    jobs = default_jobs() if jobs is None else jobs
    it = iter(tasks)
    head: list[FileTask] = []
    head_bytes = 0
    if jobs > 1:
        for task in it:
            head.append(task)
            head_bytes += _known_size(task) if len(head) <= PARALLEL_MIN_FILES else 0
            if len(head) >= PARALLEL_MIN_FILES * 16 or head_bytes >= PARALLEL_MIN_BYTES:
                break
        else:
            jobs = 1
    if jobs <= 1:
        return scan_tasks(Detector(rules), [*head, *it], options)
    import multiprocessing

    method = "fork" if sys.platform.startswith("linux") else "spawn"
    ctx = multiprocessing.get_context(method)

    def batches() -> Iterator[tuple[Sequence[Rule], ContentOptions | None, list[FileTask]]]:
        batch: list[FileTask] = []
        for task in itertools.chain(head, it):
            batch.append(task)
            if len(batch) >= BATCH_FILES:
                yield rules, options, batch
                batch = []
        if batch:
            yield rules, options, batch

    from keyscan.interrupts import worker_signals

    result = FileScan()
    with ctx.Pool(jobs, initializer=worker_signals) as pool:
        for part in pool.imap_unordered(_worker, batches()):
            result.hits.extend(part.hits)
            result.errors.extend(part.errors)
            result.files += part.files
            result.bytes += part.bytes
    return result


def scan_stdin(
    rules: Sequence[Rule], stream: BinaryIO | None = None, options: ContentOptions | None = None
) -> FileScan:
    out = FileScan()
    src = stream if stream is not None else sys.stdin.buffer
    template = Location(path="<stdin>", line=0, column=0, offset=0, source="stdin")
    try:
        hits, size = scan_stream(Detector(rules), src, template, options)
    except OSError as exc:
        out.errors.append(ScanError("<stdin>", f"cannot read: {exc.strerror or exc}"))
        return out
    out.hits.extend(hits)
    out.files = 1
    out.bytes = size
    return out
