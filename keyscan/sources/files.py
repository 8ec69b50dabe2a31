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
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from keyscan.content import ContentOptions, scan_buffer
from keyscan.detector import MAX_MATCH_SPAN, Detector
from keyscan.findings import Hit, is_binary
from keyscan.models import Location, Rule, ScanError

CHUNK = 8 * 1024 * 1024
OVERLAP = 2 * MAX_MATCH_SPAN
# Below this many bytes, or this many files, a scan stays in one process.
PARALLEL_MIN_BYTES = 32 * 1024 * 1024
PARALLEL_MIN_FILES = 64
BATCH_BYTES = 8 * 1024 * 1024


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
    tasks: list[FileTask] = []
    errors: list[ScanError] = []
    notes: list[str] = []
    seen: set[tuple[int, int]] = set()

    def add(display: str, st: os.stat_result) -> None:
        ident = (st.st_dev, st.st_ino)
        if ident in seen:
            return
        seen.add(ident)
        tasks.append(FileTask(display, display, st.st_size))

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
            add(target, st)
        elif stat.S_ISDIR(st.st_mode):
            _walk_dir(target, excludes, add, errors, notes)
        else:
            notes.append(f"{target}: skipped, not a regular file")
    return tasks, errors, notes


def _walk_dir(
    root: str,
    excludes: Sequence[str],
    add: Callable[[str, os.stat_result], None],
    errors: list[ScanError],
    notes: list[str],
) -> None:
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
                    display = rel if root in (".", "./") else entry.path
                    add(display, entry.stat(follow_symlinks=False))
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
) -> tuple[list[Hit], int]:
    """Scan a binary stream in overlapping chunks. Returns (hits, bytes read)."""
    hits: list[Hit] = []
    buf = stream.read(chunk)
    template.binary = is_binary(buf)
    base = 0  # absolute offset of buf[0]
    line = 1  # line number at buf[0]
    total = len(buf)
    while True:
        more = stream.read(chunk) if len(buf) >= chunk else b""
        last = not more
        # Matches that start in the overlap are left for the next buffer, which re-reads it.
        limit = len(buf) if last else len(buf) - OVERLAP
        if buf:
            hits.extend(scan_buffer(detector, buf, template, options, base, line, limit))
        if last:
            return hits, total
        line += buf.count(b"\n", 0, limit)
        base += limit
        buf = buf[limit:] + more
        total += len(more)


def scan_file(detector: Detector, task: FileTask, out: FileScan) -> None:
    try:
        with open(task.path, "rb") as fh:
            template = Location(path=task.display, line=0, column=0, offset=0)
            hits, size = scan_stream(detector, fh, template)
    except OSError as exc:
        out.errors.append(ScanError(task.display, f"cannot read: {exc.strerror or exc}"))
        return
    out.hits.extend(hits)
    out.files += 1
    out.bytes += size


def scan_tasks(detector: Detector, tasks: Iterable[FileTask]) -> FileScan:
    out = FileScan()
    for task in tasks:
        scan_file(detector, task, out)
    return out


def _worker(rules: Sequence[Rule], tasks: list[FileTask]) -> FileScan:
    return scan_tasks(Detector(rules), tasks)


def _batches(tasks: Sequence[FileTask], target: int) -> Iterator[list[FileTask]]:
    batch: list[FileTask] = []
    size = 0
    for t in tasks:
        batch.append(t)
        size += t.size + 4096
        if size >= target:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def scan_files(
    rules: Sequence[Rule], tasks: Sequence[FileTask], jobs: int | None = None
) -> FileScan:
    """Scan files, in worker processes when the work is large enough to pay for them."""
    jobs = default_jobs() if jobs is None else jobs
    total = sum(t.size for t in tasks)
    if jobs <= 1 or total < PARALLEL_MIN_BYTES or len(tasks) < PARALLEL_MIN_FILES // 8:
        return scan_tasks(Detector(rules), tasks)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if sys.platform.startswith("linux") else "spawn"
    ctx = multiprocessing.get_context(method)
    # Small batches keep both workers busy to the end; large files go alone.
    target = max(BATCH_BYTES, min(total // (jobs * 8), 64 * BATCH_BYTES))
    result = FileScan()
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        for part in pool.map(_worker, _repeat(rules), _batches(tasks, target)):
            result.hits.extend(part.hits)
            result.errors.extend(part.errors)
            result.files += part.files
            result.bytes += part.bytes
    return result


def _repeat(rules: Sequence[Rule]) -> Iterator[Sequence[Rule]]:
    while True:
        yield rules


def scan_stdin(rules: Sequence[Rule], stream: BinaryIO | None = None) -> FileScan:
    out = FileScan()
    src = stream if stream is not None else sys.stdin.buffer
    template = Location(path="<stdin>", line=0, column=0, offset=0, source="stdin")
    try:
        hits, size = scan_stream(Detector(rules), src, template)
    except OSError as exc:
        out.errors.append(ScanError("<stdin>", f"cannot read: {exc.strerror or exc}"))
        return out
    out.hits.extend(hits)
    out.files = 1
    out.bytes = size
    return out
