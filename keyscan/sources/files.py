"""Files, directories and stdin: walk, read in bounded memory, detect, locate.

* Directories are walked without following symlinks (a symlink named on the command line is
  followed); ``.git`` folders are skipped; ``--exclude`` globs prune files and folders.
* A walk never opens FIFOs or devices. A path named on the command line is read whatever it
  is: a pipe (``<(cmd)``, ``/dev/stdin``, a named FIFO), a terminal or a block device is read
  as a stream, in chunks like a file (a FIFO waits for its writer, as ``cat`` would); a
  character device that never ends (``/dev/zero``) is an error, never silently skipped.
* Every file is read in chunks of ``CHUNK`` bytes that overlap by ``OVERLAP`` bytes, so memory
  stays bounded and a key across a chunk boundary is still found exactly once (the chunked
  reader, ``scan_stream``, is in keyscan.content: archives use it for big members too).
* Large scans are split across worker processes; smaller ones stay in one process (see
  ``scan_files``: with Hyperscan, workers pay only for hundreds of megabytes).
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import stat
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO, cast

from keyscan.content import (
    CHUNK,
    ContentOptions,
    scan_buffer,
    scan_image_dir,
    scan_special_file,
    scan_stream,
)
from keyscan.detector import Detector, accelerated_plan
from keyscan.findings import Hit, HitSink, is_binary
from keyscan.models import Location, Rule, ScanError
from keyscan.records import dataclass, field

# With the pure-Python keyword plan, or when the caller asks for a number of workers
# (``--jobs N``), a scan goes to worker processes once its first files add up to this many
# bytes, or once the walk has found PARALLEL_MIN_FILES * 16 files; otherwise it stays in one
# process.
PARALLEL_MIN_BYTES = 32 * 1024 * 1024
PARALLEL_MIN_FILES = 64
# With the Hyperscan plan and the default number of workers, the scan runs in this process
# and hands what is left to workers only once it has read this many bytes. Measured on 2
# cores (issue 16): with Hyperscan a byte costs ~1 ns in all (read and keyword pass), so a
# file costs mostly its ~12 us of open/read/Python, which workers do not share out (the
# parent walks, pickles and merges every batch): 10,000 files of 4 KB took 0.20 s in one process and 0.26 s with two
# workers, 200 files of 1 MB 0.19 s and 0.23 s, the 208 MB bench tree 0.47 and 0.50 s.
PARALLEL_MIN_BYTES_ACCELERATED = 256 * 1024 * 1024
# ... or once it has spent this much CPU (seconds): content that costs far more than its
# bytes (PDFs, Office files, archives) is shared out all the same. The 10,000-file bench
# tree costs ~0.1 s, the 208 MB one ~0.4 s (on a machine twice slower, still below).
# Looked at every HAND_OFF_CHECK_FILES files or HAND_OFF_CHECK_BYTES bytes (reading the CPU
# clock is a system call).
PARALLEL_AFTER_CPU = 1.0
HAND_OFF_CHECK_FILES = 64
HAND_OFF_CHECK_BYTES = 1024 * 1024
# ... and only if other work leaves the workers this many cores (``jobs`` less the 1-minute
# load average): on a busy machine workers only slow the scan down. Measured on 2 shared cores
# at load 3.5: 964 MB in one process 1.91 s, handed off 2.69 s, workers from the start 2.90 s.
HAND_OFF_MIN_FREE_CORES = 1.5
# Files handed to a worker at a time (dynamic scheduling keeps both cores busy to the end).
BATCH_FILES = 256


@dataclass
class FileTask:
    display: str  # the path as reported
    path: str  # the path to open
    size: int
    # The part of the path the scan chose (below a folder given on the command line, or the
    # file's own name): a key in it is a finding. None: the whole display path.
    name: str | None = None
    # Named on the command line and not a regular file (a pipe, a terminal, a block device):
    # opened blocking, read as a stream, never in a worker process.
    stream: bool = False
    # A folder holding an OCI image layout (oci-layout, index.json, blobs/): read as one image.
    image: bool = False


@dataclass
class FileScan(HitSink):
    """Hits (bounded per secret: see keyscan.findings.HitSink), errors and counts."""

    errors: list[ScanError] = field(default_factory=list)
    files: int = 0
    bytes: int = 0


def _stream_kind(st: os.stat_result) -> str | None:
    """Why a file named explicitly can be read as a stream, or None if it cannot."""
    mode = st.st_mode
    if stat.S_ISFIFO(mode):
        return "pipe"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISCHR(mode):
        try:
            if st.st_rdev == os.stat(os.devnull).st_rdev:
                return "null device"
        except OSError:  # pragma: no cover - no /dev/null
            pass
        return "terminal" if _is_terminal(st) else None
    return None


def _is_terminal(st: os.stat_result) -> bool:
    """A character device that is a terminal: it ends when the user types Ctrl-D."""
    for fd in (0, 1, 2):
        try:
            other = os.fstat(fd)
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino) and os.isatty(fd):
            return True
    return os.major(st.st_rdev) in (4, 5, 136, 137, 138, 139, 140, 141, 142, 143)


def is_named_stream(target: str) -> bool:
    """A path named on the command line that is read as a stream (not a file or folder)."""
    try:
        st = os.stat(target)
    except OSError:
        return False
    return not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode))


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
                yield FileTask(target, target, st.st_size, os.path.basename(target))
        elif stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(target, excludes, errors, notes)
        elif _stream_kind(st) is not None:
            yield FileTask(target, target, -1, stream=True)  # named explicitly: read it
        else:
            what = "a socket" if stat.S_ISSOCK(st.st_mode) else "a device that never ends"
            errors.append(
                ScanError(target, f"cannot scan {what}: name a file, a folder, a pipe or -")
            )


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
        if _is_oci_layout(entries):
            display = rel_dir.rstrip("/") if strip and rel_dir else dir_path.rstrip("/") or "/"
            yield FileTask(display, dir_path, -1, rel_dir.rstrip("/"), image=True)
            continue
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
                    yield FileTask(rel if strip else entry.path, entry.path, -1, rel)
                else:
                    notes.append(f"{entry.path}: skipped, not a regular file")
            except OSError as exc:
                errors.append(ScanError(entry.path, exc.strerror or str(exc)))
        stack.extend(reversed(subdirs))


def _is_oci_layout(entries: Sequence[os.DirEntry[str]]) -> bool:
    """A folder holding an OCI image layout: its files are read as one image
    (keyscan.formats.images), not one by one."""
    found = 0
    for e in entries:
        if e.name in ("oci-layout", "index.json") and e.is_file(follow_symlinks=False):
            found += 1
    return found == 2


def name_hits(detector: Detector, name: str, template: Location) -> list[Hit]:
    """Keys in a file name (or any path component in ``name``): one hit each, located at the
    path itself with line 0, column 0 and ``extra["file_name"] = True``."""
    data = name.encode("utf-8", "surrogateescape")
    hits: list[Hit] = []
    for m in detector.scan(data):
        loc = Location(
            path=template.path, line=0, column=0, offset=0, source=template.source,
            commit=template.commit, blob=template.blob,
            extra={**template.extra, "file_name": True},
        )  # fmt: skip
        hits.append(Hit(m.rule.id, m.rule.description, m.family, m.rule.confidence, m.secret, loc))
    return hits


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)


def _read_small(fd: int, size: int, first: bytes = b"") -> bytes | None:
    """The whole file if it still holds at most CHUNK bytes, else None (stream it).
    ``first``: what was already read from the start of the file."""
    parts: list[bytes] = [first]
    total = len(first)
    if total > CHUNK:
        return None
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
    if task.stream:
        scan_named_stream(detector, task, out, options)
        return
    try:
        _scan_content(detector, task, out, options)
    finally:  # the name holds a key whether or not the content could be read
        name = task.display if task.name is None else task.name
        # One keyword pass first: most names hold no keyword, and then no key.
        if detector.finds_keywords(name.encode("utf-8", "surrogateescape")):
            template = Location(path=task.display, line=0, column=0, offset=0)
            out.add(name_hits(detector, name, template))


def _scan_content(
    detector: Detector, task: FileTask, out: FileScan, options: ContentOptions | None
) -> None:
    if task.image:
        template = Location(path=task.display, line=0, column=0, offset=0)
        out.add(scan_image_dir(detector, task.path, template, options, out.errors))
        out.files += 1
        return
    try:
        # O_NONBLOCK: a FIFO swapped in since the walk must not hang the scan.
        fd = os.open(task.path, _OPEN_FLAGS)
    except OSError as exc:
        out.errors.append(ScanError(task.display, f"cannot read: {exc.strerror or exc}"))
        return
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            out.errors.append(ScanError(task.display, "cannot read: not a regular file"))
            return
        data = None
        if st.st_size <= CHUNK:
            # Most files: one read of at least 64 KiB; shorter than asked is the end.
            ask = max(st.st_size + 1, 65536)
            data = os.read(fd, ask)
            if len(data) >= ask:  # grew since fstat: read on, as the general case does
                data = _read_small(fd, st.st_size, data)
        template = Location(path=task.display, line=0, column=0, offset=0)
        if data is not None:
            template.binary = is_binary(data)
            hits = scan_buffer(detector, data, template, options, errors=out.errors)
            if hits:
                out.add(hits)
            size = len(data)
        else:
            os.lseek(fd, 0, os.SEEK_SET)
            with open(fd, "rb", buffering=0, closefd=False) as fh:
                # Archives and notebooks are read whole (archives as a seekable file).
                opts = options or ContentOptions()
                special = scan_special_file(detector, fh, template, opts, st.st_size, out.errors)
                if special is not None:
                    out.add(special[0])
                    size = special[1]
                else:
                    _, size = scan_stream(
                        detector, fh, template, options, errors=out.errors, sink=out
                    )
        after = os.fstat(fd)
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            out.errors.append(ScanError(task.display, "changed while being scanned: scan again"))
    except OSError as exc:
        out.errors.append(ScanError(task.display, f"cannot read: {exc.strerror or exc}"))
        return
    finally:
        os.close(fd)
    out.files += 1
    out.bytes += size


def scan_named_stream(
    detector: Detector, task: FileTask, out: FileScan, options: ContentOptions | None = None
) -> None:
    """A pipe, terminal or block device named on the command line: opened blocking (a FIFO
    waits for its writer) and read as a stream, in chunks."""
    try:
        fd = os.open(task.path, os.O_RDONLY)
    except OSError as exc:
        out.errors.append(ScanError(task.display, f"cannot read: {exc.strerror or exc}"))
        return
    with open(fd, "rb", buffering=0) as fh:
        try:
            st = os.fstat(fd)
        except OSError as exc:  # pragma: no cover - fstat of an open fd
            out.errors.append(ScanError(task.display, f"cannot read: {exc.strerror or exc}"))
            return
        if stat.S_ISREG(st.st_mode):  # /dev/stdin redirected from a file, or a swap
            fh.close()
            scan_file(detector, FileTask(task.display, task.path, st.st_size), out, options)
            return
        if _stream_kind(st) is None:
            out.errors.append(ScanError(task.display, "cannot read: a device that never ends"))
            return
        read = _Counting(fh)
        template = Location(path=task.display, line=0, column=0, offset=0)
        try:
            scan_stream(
                detector, cast(BinaryIO, read), template, options, errors=out.errors, sink=out
            )
        except OSError as exc:
            out.errors.append(ScanError(task.display, f"cannot read: {exc.strerror or exc}"))
        out.files += 1
        out.bytes += read.total


class _Counting:
    """A binary stream that counts what was read (bytes scanned even if reading fails)."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.total = 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.total += len(data)
        return data


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
    hands batches to the workers while the walk goes on. ``jobs`` None (the default: every
    core) with the Hyperscan keyword plan: the scan starts in this process and hands the rest
    to workers once it has read ``PARALLEL_MIN_BYTES_ACCELERATED`` bytes or spent
    ``PARALLEL_AFTER_CPU`` seconds of CPU. ``jobs`` given (``--jobs N``), or the pure-Python
    plan: workers as soon as the first files reach ``PARALLEL_MIN_BYTES`` or the walk
    ``PARALLEL_MIN_FILES * 16`` files. ``jobs`` 1: one process. Streams named on the command line (pipes, ``/dev/stdin``) are read here, never
    in a worker (workers have no stdin).
    """
    explicit = jobs is not None
    jobs = default_jobs() if jobs is None else jobs
    it = iter(tasks)
    head: list[FileTask] = []
    streams: list[FileTask] = []
    head_bytes = 0
    if jobs > 1:
        for task in it:
            if task.stream:
                streams.append(task)
                continue
            head.append(task)
            head_bytes += _known_size(task) if len(head) <= PARALLEL_MIN_FILES else 0
            if len(head) >= PARALLEL_MIN_FILES * 16 or head_bytes >= PARALLEL_MIN_BYTES:
                break
        else:
            jobs = 1
    if jobs <= 1:
        return scan_tasks(Detector(rules), itertools.chain(streams, head, it), options)
    if not explicit and accelerated_plan():
        return _scan_then_hand_off(rules, itertools.chain(streams, head, it), jobs, options)
    return _scan_in_pool(rules, itertools.chain(head, it), streams, jobs, options)


def _scan_then_hand_off(
    rules: Sequence[Rule], tasks: Iterator[FileTask], jobs: int, options: ContentOptions | None
) -> FileScan:
    """Scan here until ``PARALLEL_MIN_BYTES_ACCELERATED`` bytes have been read or
    ``PARALLEL_AFTER_CPU`` seconds of CPU spent, then hand what the walk has left to
    ``jobs`` workers, unless other work keeps the cores busy (``free_cores``). Which process
    scans a file never changes what is found."""
    import time

    detector = Detector(rules)
    out = FileScan()
    started = time.process_time()
    check_files, check_bytes = HAND_OFF_CHECK_FILES, HAND_OFF_CHECK_BYTES
    for task in tasks:
        scan_file(detector, task, out, options)
        if out.bytes >= PARALLEL_MIN_BYTES_ACCELERATED:
            break
        if out.files >= check_files or out.bytes >= check_bytes:
            if time.process_time() - started >= PARALLEL_AFTER_CPU:
                break
            check_files = out.files + HAND_OFF_CHECK_FILES
            check_bytes = out.bytes + HAND_OFF_CHECK_BYTES
    else:
        return out
    if free_cores(jobs) < HAND_OFF_MIN_FREE_CORES:  # busy: the rest here too
        for task in tasks:
            scan_file(detector, task, out, options)
        return out
    merge_scan(out, _scan_in_pool(rules, tasks, [], jobs, options))
    return out


def free_cores(jobs: int) -> float:
    """Cores that other work leaves free: ``jobs`` less the 1-minute load average (all of
    them where the system has no load average)."""
    try:
        return jobs - os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - no load average (Windows)
        return float(jobs)


def _scan_in_pool(
    rules: Sequence[Rule],
    tasks: Iterator[FileTask],
    streams: list[FileTask],
    jobs: int,
    options: ContentOptions | None,
) -> FileScan:
    """Batches of tasks scanned by ``jobs`` worker processes (dynamic scheduling); streams,
    those given and those met in tasks, read here after the pool."""
    import multiprocessing

    method = "fork" if sys.platform.startswith("linux") else "spawn"
    ctx = multiprocessing.get_context(method)

    def batches() -> Iterator[tuple[Sequence[Rule], ContentOptions | None, list[FileTask]]]:
        batch: list[FileTask] = []
        for task in tasks:
            if task.stream:
                streams.append(task)  # read after the pool, in this process
                continue
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
            merge_scan(result, part)
    if streams:
        merge_scan(result, scan_tasks(Detector(rules), streams, options))
    return result


def merge_scan(into: FileScan, part: FileScan) -> None:
    into.merge(part)
    into.errors.extend(part.errors)
    into.files += part.files
    into.bytes += part.bytes


def scan_stdin(
    rules: Sequence[Rule], stream: BinaryIO | None = None, options: ContentOptions | None = None
) -> FileScan:
    """Stdin (``-``), read as a stream like a file; archive errors and refusals are reported
    (a partial scan never exits 0)."""
    out = FileScan()
    src = _Counting(stream if stream is not None else sys.stdin.buffer)
    template = Location(path="<stdin>", line=0, column=0, offset=0, source="stdin")
    try:
        scan_stream(
            Detector(rules), cast(BinaryIO, src), template, options, errors=out.errors, sink=out
        )
    except OSError as exc:
        out.errors.append(ScanError("<stdin>", f"cannot read: {exc.strerror or exc}"))
    out.files = 1
    out.bytes = src.total
    return out
