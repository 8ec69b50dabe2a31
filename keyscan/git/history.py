"""Git history: every blob and every commit message reachable from the scope, each read once.

How a scan goes (``scan_repository``):

1. **Scope.** All refs (branches, tags, remotes, stash, notes) plus HEAD, or ``--branch``,
   ``--range A..B``, ``--since REF``, minus ``exclude_commits``. Resolved to commit ids with
   ``git rev-parse`` / ``git for-each-ref`` (the tips land in ``stats["heads"]``).
2. **Objects.** ``git rev-list --objects`` piped straight into ``git cat-file
   --batch-check`` lists every reachable object once with its type and size; with
   ``all_objects`` the objects no ref reaches are added (``--batch-all-objects``).
3. **Fast scan.** Blobs, commits and tag objects are read by a persistent ``git cat-file
   --batch`` (one per worker process when the repository is large) and every buffer goes
   through ``keyscan.content.scan_buffer``. Each unique blob is scanned exactly once, however
   many commits and paths hold it; binary blobs are scanned too. A scan of every ref reads
   in pack order instead (``scan_pack_order``: one ``cat-file --batch-all-objects --batch
   --unordered``, the floor's own command; with workers, pack-order runs each read by its
   own ``cat-file``) and scans every object of the repository as it comes; its walk is one
   ``rev-list --objects --missing=print`` (``walk_reachable``: no ``--batch-check``, types
   and sizes come from what is read) that says at the end which objects the refs reach
   (only those are reported and counted), which are missing, and the path of the few
   objects that need one. An object without any keyword, gate needle, archive or UTF-16
   text stops at one Hyperscan pass (``nothing_to_find``).
4. **Provenance, only for blobs that hold a key.** One ``git log --raw -c -z`` pass over the
   same scope finds, for those blobs only, every commit and path that introduced them
   (combined diff: content that only a merge resolution introduced is attributed to the
   merge). The earliest is the location; the rest go to ``Finding.git``. Refs that reach
   the key (``for-each-ref --contains``) and whether HEAD still holds it are added.

Nothing from the repository is executed: every git command goes through
``keyscan.git.plumbing``. Scope is ``keyscan.git.scope``, provenance ``keyscan.git.provenance``,
the staged scan ``keyscan.git.staged``.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from keyscan.content import ContentOptions, load_readers, nothing_to_find, scan_buffer
from keyscan.detector import Detector
from keyscan.findings import Hit, is_binary
from keyscan.git.options import GitScanOptions
from keyscan.git.plumbing import (
    PIPE,
    GitError,
    GitRepo,
    GitTimeout,
    Listing,
    ObjectReader,
    ObjectRef,
    Started,
    batch_check,
    discover,
    iter_chunks,
    last_line,
    lines_of,
    object_in,
    pack_order_runs,
    parse_person,
    split_commit,
)
from keyscan.git.provenance import attribute, head_tree
from keyscan.git.remote import clone, is_url, public_url, shown_error
from keyscan.git.scope import Objects, Scope, resolve_scope, revs_input
from keyscan.models import CommitInfo, Location, Rule, ScanError, ScanResult
from keyscan.records import dataclass, field

if TYPE_CHECKING:  # loaded by a scan of every ref only (the range and the hook never need it)
    from keyscan.git import packs

# Below this many bytes a scan stays in one process (worker start-up is not free).
PARALLEL_MIN_BYTES = 24 * 1024 * 1024

# A scan of every ref reads the objects in pack order (``scan_pack_order``): False reads
# them by id in the walk's order, as a scope (branch, range, exclusions) does.
PACK_ORDER = True

# A scan of every ref reads the repository's packs in keyscan's own processes
# (``scan_packs``, ``keyscan.git.packs``: no pipe from git) where it can; False, or where it
# cannot (no dulwich, alternates, many loose objects...), git reads them (``scan_pack_order``).
PACKS_IN_PROCESS = True

# A scan read in one process by id (a range, a branch...) takes its objects from the walk's
# own output, types and sizes from what ``cat-file --batch`` reads (``_walk_untyped``):
# False puts ``cat-file --batch-check`` behind the walk again, as before (tests compare).
UNTYPED_WALK = True


# --------------------------------------------------------------------------------------------
# Entry point


def scan_repository(target: str, options: GitScanOptions, rules: Sequence[Rule]) -> ScanResult:
    """Scan a repository (path or URL) as ``options`` say. Errors land in ``result.errors``."""
    started = time.perf_counter()
    kind = "staged" if options.staged else "git"
    shown = public_url(target)
    result = ScanResult(kind=kind, targets=[shown])
    tmp: str | None = None
    try:
        if is_url(target):
            if options.staged:
                raise GitError(target, "--staged needs a local repository")
            import tempfile  # lazy: shutil and tempfile import bz2, lzma, random

            tmp = tempfile.mkdtemp(prefix="keyscan-clone-")
            path = os.path.join(tmp, "repo.git")
            clone(target, path)
            repo = discover(path)
        else:
            # A range is resolved by discover's own rev-parse (one git process fewer).
            rev = options.range if options.range and not options.staged else None
            repo = discover(target, rev)
        if options.staged:
            from keyscan.git.staged import scan_staged  # a range or history never needs it

            scan_staged(repo, options, rules, result)
        else:
            scan_history(repo, options, rules, result)
    except GitError as exc:
        result.errors.append(ScanError(*shown_error(exc, target, shown)))
    except OSError as exc:  # cannot start git, no more processes, disk full...
        result.errors.append(ScanError(shown, f"cannot run git: {exc.strerror or exc}"))
    finally:
        if tmp is not None:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    result.duration = time.perf_counter() - started
    return result


# --------------------------------------------------------------------------------------------
# Enumeration


def enumerate_objects(
    repo: GitRepo,
    scope: Scope,
    all_objects: bool,
    on_object: Callable[[ObjectRef], None] | None = None,
    typed: bool = True,
) -> Objects:
    """Objects to scan. A history walk that fails part-way (corrupt tree or commit) or an
    object that cannot be read is an error in ``Objects.errors``; the rest is still scanned.

    ``typed`` False (a reader that learns types from what it reads; not with
    ``all_objects``): the walk's own output, no ``cat-file --batch-check`` behind it
    (``_walk_untyped``)."""
    if not typed and not all_objects:
        return _walk_untyped(repo, scope, on_object)
    scan: list[ObjectRef] = []
    reachable: set[str] = set()
    errors: list[ScanError] = []
    if scope.include:
        revlist = repo.popen(
            "rev-list",
            "--objects",  # with names: a path hint for notebooks
            "--missing=print",
            "--stdin",
            stdin=PIPE,
        )
        assert revlist.stdin is not None and revlist.stderr is not None
        revlist.send(revs_input(scope.include, scope.exclude))
        stderr: list[bytes] = []
        drain = threading.Thread(target=lambda: stderr.append(revlist.stderr.read()))  # type: ignore[union-attr]
        drain.start()
        try:
            for item in batch_check(repo, revlist, trees=True):
                if isinstance(item, ObjectRef):
                    if all_objects:
                        reachable.add(item.oid)
                    scan.append(item)
                    if on_object is not None:
                        on_object(item)
                else:
                    errors.append(
                        ScanError(item[0].lstrip("?"), "corrupt or missing object: cannot read it")
                    )
        except GitTimeout:
            raise  # the repository cannot be read: no point going on
        except GitError as exc:
            errors.append(ScanError(exc.where, exc.message))
        finally:
            code = revlist.wait()
            drain.join()
            revlist.stderr.close()
        if code != 0:
            err = b"".join(stderr)
            errors.append(
                ScanError(
                    object_in(err) or "history",
                    f"history walk stopped ({last_line(err) or 'git rev-list failed'}); "
                    "what it reached was scanned",
                )
            )
    unreachable: set[str] = set()
    unreachable_commits: list[str] = []
    if all_objects:
        try:
            for item in batch_check(repo, all_objects=True, trees=True):
                if isinstance(item, ObjectRef) and item.oid not in reachable:
                    unreachable.add(item.oid)
                    scan.append(item)
                    if on_object is not None:
                        on_object(item)
                    if item.type == "commit":
                        unreachable_commits.append(item.oid)
        except GitTimeout:
            raise
        except GitError as exc:
            errors.append(ScanError(exc.where, exc.message))
    return Objects(scan, reachable, unreachable, unreachable_commits, errors)


def _walk_untyped(
    repo: GitRepo, scope: Scope, on_object: Callable[[ObjectRef], None] | None
) -> Objects:
    """``enumerate_objects`` without ``cat-file --batch-check`` (one git process fewer):
    ``rev-list --objects --missing=print``'s lines, each an ObjectRef of unknown type
    (``""``) and size (0) whose hint is the walk's path, raw (``scan_objects`` keeps what
    a typed walk keeps: a tree's path, a notebook's). The same objects, in the same order,
    and the same errors (a missing object, a walk that stops) as the typed walk."""
    scan: list[ObjectRef] = []
    errors: list[ScanError] = []
    if not scope.include:
        return Objects(scan, set(), set(), [], errors)
    proc = repo.run(
        "rev-list", "--objects", "--missing=print", "--stdin",
        input=revs_input(scope.include, scope.exclude), check=False,
    )  # fmt: skip
    for line in proc.stdout.split(b"\n"):
        if not line:
            continue
        oid, _, path = line.partition(b" ")
        if oid.startswith(b"?"):
            errors.append(ScanError(oid[1:].decode("ascii", "replace"), UNREADABLE))
            continue
        ref = ObjectRef(
            oid.decode("ascii", "replace"), "", 0, path.decode("utf-8", "surrogateescape")
        )
        scan.append(ref)
        if on_object is not None:
            on_object(ref)
    if proc.returncode != 0:
        errors.append(_walk_stopped(proc.stderr))
    return Objects(scan, set(), set(), [], errors)


# --------------------------------------------------------------------------------------------
# Fast scan


@dataclass
class ChunkResult:
    hits: list[Hit] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    blobs: int = 0
    commits: int = 0
    tags: int = 0
    bytes: int = 0


def _walk_stopped(err: bytes) -> ScanError:
    """The error of a walk git stopped: what and why, and that what it reached was scanned."""
    return ScanError(
        object_in(err) or "history",
        f"history walk stopped ({last_line(err) or 'git rev-list failed'}); "
        "what it reached was scanned",
    )


def scan_objects(
    repo: GitRepo,
    detector: Detector,
    oids: Iterable[str],
    content: ContentOptions,
    hints: dict[str, str] | None = None,
) -> ChunkResult:
    """Scan objects; ``hints``: a path for blobs whose name matters to the content layer."""
    out = ChunkResult()
    hints = {} if hints is None else hints  # may still be filling (streamed walk)
    for oid, kind, data in ObjectReader(repo).read(oids):
        scan_object(detector, oid, kind, data, content, hints.get(oid, ""), out)
    return out


def _hint_of(kind: str, path: str) -> str:
    """The hint a typed walk (``batch_check``) gives an object met at ``path``: a tree's
    path, a notebook blob's path, nothing else."""
    if kind == "tree":
        return path
    return path if kind == "blob" and path.lower().endswith(".ipynb") else ""


def scan_walked_objects(
    repo: GitRepo,
    detector: Detector,
    oids: Iterable[str],
    content: ContentOptions,
    paths: dict[str, str],
    missing: set[str] | None = None,
) -> ChunkResult:
    """``scan_objects`` of an untyped walk (``_walk_untyped``): ``paths`` holds the walk's
    path of each object (may still be filling), made a hint once the read says the type.
    An object ``cat-file --batch`` cannot find (missing, or a header it cannot parse) is
    the error a typed walk's ``--batch-check`` names it with, and is added to ``missing``
    (a typed walk does not count it among the objects in scope)."""
    out = ChunkResult()
    for oid, kind, data in ObjectReader(repo).read(oids):
        if kind == "error" and data == b"object is missing":
            out.errors.append(ScanError(oid, UNREADABLE))
            if missing is not None:
                missing.add(oid)
            continue
        scan_object(detector, oid, kind, data, content, _hint_of(kind, paths.get(oid, "")), out)
    return out


def scan_object(
    detector: Detector,
    oid: str,
    kind: str,
    data: bytes,
    content: ContentOptions,
    hint: str,
    out: ChunkResult,
) -> None:
    """Scan one object read from git into ``out`` (hits, errors, counts)."""
    if kind == "blob":
        out.blobs += 1
        out.bytes += len(data)
        if not hint and nothing_to_find(detector, data, content):
            return  # most blobs: no location built, no content layer
        template = Location(
            path=hint, line=0, column=0, offset=0, source="git-blob", blob=oid,
            binary=is_binary(data),
        )  # fmt: skip
        problems: list[ScanError] = []
        found = scan_buffer(detector, data, template, content, errors=problems)
        # Named by the blob (its path is known only after provenance), member kept.
        out.errors.extend(ScanError(f"blob {oid}{e.where[len(hint):]}", e.message)
                          for e in problems)  # fmt: skip
        if hint:  # the path comes from provenance (an archive member stays in .member)
            for h in found:
                h.location.path = ""
        out.hits.extend(found)
    elif kind in ("commit", "tag"):
        if kind == "commit":
            out.commits += 1
        else:
            out.tags += 1
        out.bytes += len(data)
        out.hits.extend(_scan_message(detector, oid, kind, data, content, out.errors))
    elif kind == "tree":
        out.hits.extend(_scan_tree(detector, oid, data, hint))
    elif kind == "error":
        out.errors.append(ScanError(oid, data.decode("utf-8", "replace")))


def tree_entries(data: bytes, id_size: int) -> Iterator[tuple[bytes, bytes, str]]:
    """(mode, name, object id) of each entry of a raw tree object."""
    at = 0
    while at < len(data):
        space = data.find(b" ", at)
        nul = data.find(b"\0", space + 1)
        if space < 0 or nul < 0 or nul + 1 + id_size > len(data):
            return
        yield data[at:space], data[space + 1 : nul], data[nul + 1 : nul + 1 + id_size].hex()
        at = nul + 1 + id_size


def _scan_tree(detector: Detector, oid: str, data: bytes, folder: str) -> list[Hit]:
    """Keys in the names of a tree's entries (file and folder names): findings located at
    the path itself (line 0, ``extra["file_name"]``). Only parsed when a keyword occurs."""
    if not detector.prefilter(data):
        return []
    from keyscan.sources.files import name_hits  # only for a tree with a keyword in it

    hits: list[Hit] = []
    for mode, raw_name, entry in tree_entries(data, len(oid) // 2):
        name = raw_name.decode("utf-8", "surrogateescape")
        path = f"{folder}/{name}" if folder else name
        is_blob = mode not in (b"40000", b"160000")
        template = Location(
            path=path, line=0, column=0, offset=0,
            source="git-blob" if is_blob else "git-tree", blob=entry if is_blob else None,
            extra={"tree": oid},
        )  # fmt: skip
        hits.extend(name_hits(detector, name, template))
    return hits


# A gitlink entry of ``ls-tree -r -z``: "160000 commit <id>\t<path>".
_GITLINK = re.compile(rb"(?:^|\0)160000 commit ([0-9a-f]+)\t([^\0]*)")
# HEAD's folders and gitlinks, not its files: ``-d`` leaves out blobs only (a gitlink is
# listed as a full listing lists it, in the same order), so the submodules HEAD records
# come from a hundredth of the output on a 10,000-file tree of 100 folders.
_FOLDERS_AND_GITLINKS = ("ls-tree", "-r", "-d", "-z", "--full-tree")


def _submodules_at(
    repo: GitRepo, head: str | None, listing: bytes | None = None
) -> list[tuple[str, str]]:
    """``head_tree(repo, head)[1]`` (path, commit of each submodule HEAD records) without
    building the map of every blob at HEAD: a scan without findings needs only these, and a
    10,000-file tree costs several milliseconds to parse in Python."""
    if head is None:
        return []
    out = repo.run(*_FOLDERS_AND_GITLINKS, head).stdout if listing is None else listing
    return [
        (path.decode("utf-8", "surrogateescape"), sha.decode())
        for sha, path in _GITLINK.findall(out)
    ]


class _HeadListing:
    """``git ls-tree -r -d -z --full-tree HEAD`` (HEAD's folders and gitlinks) in a thread of
    its own. ``result()``: its output, or None when it failed (the caller then runs it
    again and reports the error as before)."""

    def __init__(self, repo: GitRepo, head: str | None) -> None:
        self._out: list[bytes] = []
        self._thread: threading.Thread | None = None
        if head is not None:
            self._thread = threading.Thread(
                target=self._run, args=(repo, head), name="keyscan-head-tree", daemon=True
            )
            self._thread.start()

    def _run(self, repo: GitRepo, head: str) -> None:
        with contextlib.suppress(Exception):  # asked again in the caller's thread
            self._out.append(repo.run(*_FOLDERS_AND_GITLINKS, head).stdout)

    def result(self) -> bytes | None:
        if self._thread is None:
            return None
        self._thread.join()
        return self._out[0] if self._out else None


def _scan_message(
    detector: Detector,
    oid: str,
    kind: str,
    data: bytes,
    content: ContentOptions,
    errors: list[ScanError],
) -> list[Hit]:
    # The message starts after the first blank line (split_commit's offset); the headers
    # are parsed only for a message with a finding (most have none).
    end = data.find(b"\n\n")
    message = data[end + 2 :] if end >= 0 else b""
    if nothing_to_find(detector, message, content):
        return []
    where = "(commit message)" if kind == "commit" else "(tag message)"
    template = Location(path="", line=0, column=0, offset=0, source="git-message", blob=None)
    found: list[ScanError] = []
    hits = scan_buffer(detector, message, template, content, errors=found)
    errors.extend(ScanError(f"{where[1:-1]} {oid}{e.where}", e.message) for e in found)
    if not hits:
        return hits
    headers = split_commit(data)[0]
    person = headers.get(b"author") or headers.get(b"tagger") or b""
    name, email, date = parse_person(person)
    subject = message.split(b"\n", 1)[0].decode("utf-8", "replace")
    info = CommitInfo(sha=oid, author_name=name, author_email=email, date=date, subject=subject)
    for h in hits:
        h.location.commit = info
        h.location.path = "(commit message)" if kind == "commit" else "(tag message)"
        if kind == "tag":
            h.location.extra["tag"] = headers.get(b"tag", b"").decode("utf-8", "replace")
    return hits


def _chunk_worker(
    repo: GitRepo,
    rules: Sequence[Rule],
    oids: list[str],
    content: ContentOptions,
    hints: dict[str, str],
) -> ChunkResult:
    return scan_objects(repo, Detector(rules), oids, content, hints)


def default_jobs() -> int:
    """Half the cores: each scanning worker keeps its own ``git cat-file`` busy on another
    core. Measured on 2 cores (README): one worker with git alongside beats two."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // 2)


def pack_order_jobs() -> int:
    """Workers for a whole history read in pack order: every core. Pack-order runs keep
    delta chains whole, so each worker's ``cat-file`` inflates no more than its share of
    the floor, and decompression (git's part, the larger one) runs on every core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _merge(into: ChunkResult, part: ChunkResult) -> None:
    into.hits.extend(part.hits)
    into.errors.extend(part.errors)
    into.blobs += part.blobs
    into.commits += part.commits
    into.tags += part.tags
    into.bytes += part.bytes


def estimate_bytes(repo: GitRepo) -> int:
    """Packed plus loose size of the object store (what ``git count-objects -v`` says), from
    the file system where the repository keeps its objects in its own ``objects`` folder:
    one git process fewer on every scan of a whole history (names and sizes only: nothing
    in the folder is opened). Elsewhere (a linked worktree's git dir), git is asked."""
    objects = os.path.join(repo.git_dir, "objects")
    if os.path.isdir(objects) and not os.path.islink(objects):
        try:
            return _store_bytes(objects)
        except OSError:
            pass  # git says
    proc = repo.run("count-objects", "-v", check=False)
    total = 0
    for line in lines_of(proc.stdout):
        key, _, value = line.partition(": ")
        if key in ("size", "size-pack") and value.strip().isdigit():
            total += int(value) * 1024
    return total


def _store_bytes(objects: str) -> int:
    """Bytes of the regular files in ``objects/pack/`` (packs and their indexes, as
    ``size-pack`` counts them) and ``objects/[0-9a-f]{2}/`` (loose objects)."""
    total = 0
    with os.scandir(objects) as top:
        for folder in top:
            name = folder.name
            if name == "pack" or (len(name) == 2 and all(c in "0123456789abcdef" for c in name)):
                if not folder.is_dir(follow_symlinks=False):
                    continue
                with os.scandir(folder.path) as inner:
                    for entry in inner:
                        if name == "pack" and not entry.name.endswith((".pack", ".idx")):
                            continue
                        if entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
    return total


def scan_in_pool(
    repo: GitRepo,
    rules: Sequence[Rule],
    objects: Sequence[ObjectRef],
    content: ContentOptions,
    workers: int,
) -> ChunkResult:
    """Scan objects in worker processes: contiguous runs of about equal size (two per
    worker, for balance), each read by its own ``git cat-file``. Called once the walk is
    over, so no pipe is open when the workers are forked."""
    import multiprocessing

    from keyscan.interrupts import worker_signals

    method = "fork" if sys.platform.startswith("linux") else "spawn"
    merged = ChunkResult()
    pool = multiprocessing.get_context(method).Pool(workers, initializer=worker_signals)
    try:
        pending = [
            pool.apply_async(
                _chunk_worker,
                (
                    repo,
                    rules,
                    [o.oid for o in run],
                    content,
                    {o.oid: o.hint for o in run if o.hint},
                ),
            )
            for run in iter_chunks(objects, workers, pieces_per_job=2)
        ]
        for job in pending:
            _merge(merged, job.get())
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return merged


def enumerate_and_scan(
    repo: GitRepo,
    scope: Scope,
    options: GitScanOptions,
    rules: Sequence[Rule],
    before_fork: Callable[[], object] = lambda: None,
) -> tuple[Objects, ChunkResult, int]:
    """Enumerate and scan.

    Every ref (no branch, range, exclusion or ``--all-objects``): in pack order
    (``scan_pack_order``; ``scan_pack_order_pool`` with one worker per core for a
    repository of ``PARALLEL_MIN_BYTES`` or more). Otherwise, in one process (the default
    on 2 cores, and for small repositories) the scan streams: one ``cat-file --batch``
    reads objects while the history walk (a thread) still finds them. With workers, the
    walk comes first, then the objects are split between them. ``before_fork``: called
    before a worker pool is forked (the caller's threads end there: a pool forks a process
    with one thread)."""
    jobs = default_jobs() if options.jobs is None else options.jobs
    scoped = bool(scope.exclude) or bool(options.branch or options.range or options.scope)
    if PACK_ORDER and not scoped and not options.all_objects:  # every ref: pack order
        workers = pack_order_jobs() if options.jobs is None else options.jobs
        parallel = workers > 1 and estimate_bytes(repo) >= PARALLEL_MIN_BYTES
        store = _pack_store(repo, scope) if PACKS_IN_PROCESS else None
        if store is not None:
            if parallel:
                before_fork()
            return scan_packs(repo, scope, options, rules, workers if parallel else 0, *store)
        if parallel:
            before_fork()
            return (*scan_pack_order_pool(repo, scope, options, rules, workers), workers)
        return (*scan_pack_order(repo, scope, options, rules), 1)
    if jobs > 1 and (scoped or estimate_bytes(repo) >= PARALLEL_MIN_BYTES // 4):
        objects = enumerate_objects(repo, scope, options.all_objects)
        if sum(o.size for o in objects.scan) >= PARALLEL_MIN_BYTES:
            before_fork()
            return objects, scan_in_pool(repo, rules, objects.scan, options.content, jobs), jobs
        known = {o.oid: o.hint for o in objects.scan if o.hint}
        oids = [o.oid for o in objects.scan]
        scanned = scan_objects(repo, Detector(rules), oids, options.content, known)
        return objects, scanned, 1

    import queue

    found: queue.Queue[list[ObjectRef] | None] = queue.Queue()
    batch: list[ObjectRef] = []

    def collect(ref: ObjectRef) -> None:
        batch.append(ref)
        if len(batch) >= 256:
            found.put(batch.copy())
            batch.clear()

    box: list[Objects | BaseException] = []

    # The reader learns each object's type from what it reads: no --batch-check.
    typed = options.all_objects or not UNTYPED_WALK
    missing: set[str] = set()

    def walk() -> None:
        try:
            box.append(enumerate_objects(repo, scope, options.all_objects, collect, typed))
            if batch:
                found.put(batch.copy())
        except BaseException as exc:  # handed to the main thread
            box.append(exc)
        finally:
            found.put(None)

    hints: dict[str, str] = {}

    def stream() -> Iterator[str]:  # runs in the cat-file feeder thread
        while (refs := found.get()) is not None:
            for ref in refs:
                if ref.hint:
                    hints[ref.oid] = ref.hint
                yield ref.oid

    thread = threading.Thread(target=walk, name="keyscan-git-walk", daemon=True)
    thread.start()
    if typed:
        scanned = scan_objects(repo, Detector(rules), stream(), options.content, hints)
    else:  # hints holds the walk's raw paths
        scanned = scan_walked_objects(
            repo, Detector(rules), stream(), options.content, hints, missing
        )
    thread.join()
    outcome = box[0]
    if isinstance(outcome, BaseException):
        raise outcome
    if missing:  # listed by the walk, not found by the reader: not counted, as before
        outcome.scan = [ref for ref in outcome.scan if ref.oid not in missing]
    return outcome, scanned, 1


# What ``rev-list --objects`` prints: an id (and a path) per reachable object; ``?<id>`` for
# one the repository lacks (``--missing=print``).
_WALK_MISSING = re.compile(rb"(?m)^\?([0-9a-f]{40,64})")
UNREADABLE = "corrupt or missing object: cannot read it"
_TYPE_NAMES = {"blob": b"blob", "commit": b"commit", "tag": b"tag", "tree": b"tree"}


@dataclass
class Reach:
    """What the history walk of a scan of every ref says (``walk_reachable``): which objects
    the refs reach (``ids``: hex ids as bytes), the walk's own output (``listing``: the path
    each object was first met at, looked up only for the few objects that need one) and its
    errors (missing objects, a walk that stopped)."""

    ids: set[bytes]
    listing: bytes
    errors: list[ScanError]

    def path_of(self, oid: str) -> str:
        """The path the walk first met ``oid`` at ("" for a commit, a tag, a root tree)."""
        raw = oid.encode()
        if self.listing.startswith(raw + b" "):
            at = 0
        else:
            at = self.listing.find(b"\n" + raw + b" ") + 1
            if at == 0:
                return ""
        end = self.listing.find(b"\n", at)
        name = self.listing[at + len(raw) + 1 : end if end >= 0 else len(self.listing)]
        return name.decode("utf-8", "surrogateescape")

    def paths_of(self, oids: set[bytes]) -> dict[str, str]:
        """id -> the path the walk first met it at, for each of ``oids`` (one pass over
        the walk's output; ``path_of`` searches it once per id)."""
        if len(oids) <= 8:
            return {oid.decode(): self.path_of(oid.decode()) for oid in oids}
        found: dict[str, str] = {}
        for line in self.listing.split(b"\n"):
            oid, _, path = line.partition(b" ")
            if oid in oids:
                found[oid.decode()] = path.decode("utf-8", "surrogateescape")
        return found

    def notebooks(self) -> dict[bytes, str]:
        """id -> path of every reachable object met at a ``.ipynb`` path (the content layer
        reads notebooks by cell: these are scanned with their path). One lower-cased copy
        and ``bytes.find`` (a regular expression over every line cost 0.17 s on
        sqlalchemy's 16 MB walk)."""
        found: dict[bytes, str] = {}
        listing = self.listing
        lowered = listing.lower()
        at = lowered.find(b".ipynb\n")
        while at >= 0:
            start = listing.rfind(b"\n", 0, at) + 1
            line = listing[start : at + 6]
            oid, _, path = line.partition(b" ")
            if path and not oid.startswith(b"?"):
                found[oid] = path.decode("utf-8", "surrogateescape")
            at = lowered.find(b".ipynb\n", at + 7)
        return found


def start_walk(repo: GitRepo, scope: Scope) -> Started:
    """``walk_reachable``'s git process, started now and answered later: it runs beside the
    reading (no thread: its input and output are files, so worker pools may fork while it
    runs)."""
    return repo.start(
        "rev-list", "--objects", "--missing=print", "--stdin",
        input=revs_input(scope.include, scope.exclude),
    )  # fmt: skip


def walk_reachable(repo: GitRepo, scope: Scope, started: Started | None = None) -> Reach:
    """Every object the scope's tips reach: ONE ``git rev-list --objects --missing=print``,
    no ``cat-file --batch-check`` behind it (a scan of every ref learns types and sizes from
    what it reads), its output parsed by regular expressions, no Python object per object
    beyond its id (sqlalchemy: 0.56 s of git instead of 0.94 s plus 0.44 s of Python). A
    missing object or a walk that stops is an error; what the walk reached is still
    scanned. ``started``: the walk ``start_walk`` started (else it starts here)."""
    proc = (start_walk(repo, scope) if started is None else started).result()
    out = proc.stdout
    if not out.endswith(b"\n"):
        out += b"\n"  # every line ends with one (``path_of``, ``notebooks``)
    lines = out.split(b"\n")
    width = len(lines[0].split(b" ", 1)[0].lstrip(b"?"))  # 40 (SHA-1) or 64 (SHA-256)
    ids = set(map(itemgetter(slice(0, width)), lines))
    ids.discard(b"")
    del lines
    errors: list[ScanError] = []
    if out.startswith(b"?") or b"\n?" in out:  # --missing=print: "?<id>"
        missing = _WALK_MISSING.findall(out)
        ids.difference_update((b"?" + m)[:width] for m in missing)
        errors.extend(ScanError(m.decode(), UNREADABLE) for m in missing)
    if proc.returncode != 0:
        errors.append(_walk_stopped(proc.stderr))
    return Reach(ids, out, errors)


def _reach_of(thread: threading.Thread, box: list[Reach | BaseException]) -> Reach:
    thread.join()
    outcome = box[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _positions(ids: list[bytes], wanted: set[bytes]) -> list[int]:
    """Where each of ``wanted`` stands in ``ids`` (a listing: each id once), in order: a
    C-speed ``list.index`` per id when they are few (the usual handful of notebooks and
    objects with a hit: one pass over numpy's 481k ids less), one pass when many."""
    if len(wanted) <= 16:
        found: list[int] = []
        for oid in wanted:
            with contextlib.suppress(ValueError):
                found.append(ids.index(oid))
        return sorted(found)
    from itertools import compress, count

    return list(compress(count(), map(wanted.__contains__, ids)))


class _Tally:
    """The objects in scope a pack-order scan read, and what they hold: counts, sizes, the
    hits and errors of those with any, and what must be read again by id (not delivered, or
    scanned without the path it needs).

    A listing (``add``, one or several parts): every object delivered (read, or asked of a
    worker), in scope or not, with its type and size; ``found``: id -> (type, results) of
    every object read with a hit or an error (those of a part are in it when the part is
    added). Counts are taken over each part at C speed (``bytes.count``, ``map``), then
    corrected for the few objects that are not plain: out of scope, with a hit or an error,
    or needing a path (on sqlalchemy, a method call per object cost the parent 0.3-0.6 s
    after the last object was read). Parts added while workers still read cost nothing at
    the end: the reader of the packs adds its own and each worker's as they come."""

    def __init__(
        self,
        reach: Reach,
        found: dict[str, tuple[str, ChunkResult]],
        listing: Listing | None = None,
    ) -> None:
        self.reach = reach
        self.found = found
        self.late: list[str] = []
        self.hints: dict[str, str] = {}
        self.failed = 0  # objects in scope git could not read
        self.out = ChunkResult()
        self.reached = 0  # objects in scope delivered
        self.notebooks = reach.notebooks()
        if listing is not None:
            self.add(listing)

    def add(self, listing: Listing) -> None:
        """Count one part of the listing (each object is in one part only)."""
        from itertools import compress, count
        from operator import not_

        reach, notebooks = self.reach, self.notebooks
        ids, types, sizes = listing
        scope = reach.ids
        out = self.out
        out.blobs += types.count(b"blob")
        out.commits += types.count(b"commit")
        out.tags += types.count(b"tag")
        out.bytes += sum(map(int, compress(sizes, map(b"tree".__ne__, types))))
        self.reached += len(ids)

        def drop(at: int) -> None:  # one object of the listing not counted as plain
            kind = types[at]
            if kind == b"blob":
                out.blobs -= 1
            elif kind == b"commit":
                out.commits -= 1
            elif kind == b"tag":
                out.tags -= 1
            if kind != b"tree":
                out.bytes -= int(sizes[at])

        # No ref reaches these: not reported (``--all-objects`` scans those).
        for at in compress(count(), map(not_, map(scope.__contains__, ids))):
            drop(at)
            self.reached -= 1
        wanted = {oid.encode(): item for oid, item in self.found.items()}
        special = {oid for oid in (*wanted, *notebooks) if oid in scope}
        for at in _positions(ids, special):
            oid = ids[at]
            seen = wanted.get(oid)
            notebook = notebooks.get(oid)
            if notebook is not None or (seen is not None and seen[1].hits and types[at] == b"tree"):
                drop(at)  # scanned without the path it needs: again, with it
                name = oid.decode()
                self.late.append(name)
                self.hints[name] = notebook if notebook is not None else reach.path_of(name)
                continue
            if seen is None:
                continue
            got, own = seen
            out.hits.extend(own.hits)
            if got == "error":  # git could not read it (a corrupt object)
                drop(at)
                out.errors.append(ScanError(oid.decode(), UNREADABLE))
                self.failed += 1
            else:
                out.errors.extend(own.errors)

    def unread(self, delivered: Callable[[], set[bytes]]) -> list[bytes]:
        """Objects in scope that nobody delivered (``delivered``: every id read or asked,
        built only when some are missing)."""
        if self.reached >= len(self.reach.ids):
            return []
        return sorted(self.reach.ids - delivered())

    def finish(
        self, repo: GitRepo, detector: Detector, content: ContentOptions, unread: list[bytes]
    ) -> tuple[Objects, ChunkResult]:
        """Read again by id what needs it (``unread``: objects in scope nobody delivered);
        the walk's view as ``Objects`` (its count: the objects in scope git could read)."""
        late = self.late + [o.decode() for o in unread]
        if late:
            asked = set(late)
            # Only what needs it: each reader is a git process (none for an empty list).
            again = (
                scan_objects(repo, detector, self.late, content, self.hints)
                if self.late
                else ChunkResult()
            )
            if unread:  # read with the path the walk met them at (a notebook, a tree)
                paths = self.reach.paths_of(set(unread))
                rest = scan_walked_objects(repo, detector, late[len(self.late) :], content, paths)
                _merge(again, rest)
            # An object git cannot read is named as the walk names a missing one.
            errors = []
            for e in again.errors:
                if e.where in asked:
                    self.failed += 1
                    e = ScanError(e.where, UNREADABLE)
                errors.append(e)
            again.errors = errors
            _merge(self.out, again)
        count = len(self.reach.ids) - self.failed
        objects = Objects([], set(), set(), [], list(self.reach.errors), count=count)
        return objects, self.out


def scan_pack_order(
    repo: GitRepo,
    scope: Scope,
    options: GitScanOptions,
    rules: Sequence[Rule],
) -> tuple[Objects, ChunkResult]:
    """The whole history (every ref), read the way git reads fastest: ONE ``git cat-file
    --batch-all-objects --batch --unordered`` (the floor: pack order, nothing to feed it)
    scans every object of the repository as it comes, while the history walk
    (``walk_reachable``: ``rev-list --objects`` alone, ``start_walk``) runs beside it and
    says, at the end, which objects the refs reach.

    * Only what the refs reach is reported and counted: the hits and errors of an object
      no ref reaches are dropped (``--all-objects`` reports those, as unreachable).
    * An object that needs its path (a notebook; a tree whose entry names hold a key) is
      scanned again by id with it, from the walk's output.
    * Whatever the walk reached and the reader did not deliver (git stopped on a corrupt
      object) is then read by id, where every error is named."""
    detector = Detector(rules)
    content = options.content
    walk = start_walk(repo, scope)
    found: dict[str, tuple[str, ChunkResult]] = {}
    read: list[str] = []
    types: list[bytes] = []
    sizes: list[bytes] = []
    scratch = ChunkResult()
    try:
        with contextlib.closing(ObjectReader(repo).read_all()) as stream:
            for oid, kind, data in stream:
                scan_object(detector, oid, kind, data, content, "", scratch)
                if scratch.hits or scratch.errors:
                    found[oid] = (kind, scratch)
                    scratch = ChunkResult()
                read.append(oid)
                types.append(_TYPE_NAMES.get(kind, b"tree"))
                sizes.append(b"%d" % len(data))
    except BaseException:  # an interrupt does not wait for the walk
        walk.stop()
        raise
    reach = walk_reachable(repo, scope, walk)
    ids = [o.encode() for o in read]
    del read
    tally = _Tally(reach, found, Listing(ids, types, sizes))
    unread = tally.unread(lambda: set(ids))
    return tally.finish(repo, detector, content, unread)


def _pack_worker(
    repo: GitRepo, detector: Detector, oids: list[str], content: ContentOptions
) -> list[tuple[str, str, ChunkResult]]:
    """Scan a run of objects (pack order) read by this worker's own ``cat-file``; only the
    objects with a hit or an error come back (the parent keeps those in scope)."""
    kept: list[tuple[str, str, ChunkResult]] = []
    own = ChunkResult()  # one per object with a hit or an error, not one per object
    for oid, kind, data in ObjectReader(repo).read(oids):
        scan_object(detector, oid, kind, data, content, "", own)
        if own.hits or own.errors:
            kept.append((oid, kind, own))
            own = ChunkResult()
    return kept


# Pieces of a pool's pack-order listing per process (workers + this one): this process
# reads pieces from the front, the workers take them from the back, each claiming one
# before reading it, so nobody waits while a piece is left (the pieces' costs differ:
# PDFs, archives, a loaded core). Two, not three: each piece starts its cat-file with a cold
# delta base cache; with 3 the CPU went up enough to cost more than the balance gained
# (alternating runs: sqlalchemy 4.74 -> 4.59 s, numpy 9.01 -> 8.72 s; 1 piece: 4.49 / 8.83 s).
PIECES_PER_PROCESS = 2

# The same for the pack reader (``scan_packs``), whose pieces shrink towards the middle
# (``Store.pieces(taper=True)``): a piece that starts cold costs the reader little, and the
# processes meet on small pieces. numpy, alternating runs: 7.90 s with 2 equal pieces per
# process, 7.79 tapered, 7.60 with 4 tapered (6: 7.60); sqlalchemy unchanged (3.80 s).
PACK_PIECES_PER_PROCESS = 4
# The pieces this process reads first (the front half) at half the size of the workers'
# (the back half): this process also parses the walk's output and gathers the workers'
# answers. numpy, alternating runs: 8.13 s -> 7.90 s (three pairs, each faster).
PACK_FRONT_WEIGHT = 0.5

# The pool's claim flags (one byte per piece) and rules, inherited by each worker
# (``_pool_init``), and the worker's one Detector for all its pieces: the parent's, forked
# (``_for_workers``), or built on first use (Hyperscan compiles its database once per
# Detector).
_CLAIMS: Any = None
_RULES: Sequence[Rule] = ()
_DETECTOR: Detector | None = None


def _pool_init(claims: Any, rules: Sequence[Rule], detector: Detector | None = None) -> None:
    global _CLAIMS, _RULES, _DETECTOR
    _CLAIMS, _RULES, _DETECTOR = claims, rules, detector
    from keyscan.interrupts import worker_signals

    worker_signals()


def _for_workers(detector: Detector, content: ContentOptions, method: str) -> Detector | None:
    """What a pool's workers start from, readied in this process before the pool forks:
    ``detector`` with its Hyperscan database compiled and the format readers imported
    (``load_readers``), which each forked worker inherits instead of building its own (about
    30 ms of CPU per worker: on psf/requests the workers' CPU 0.76 -> 0.70 s, the whole
    run 0.67 -> 0.66 s in alternating runs; numpy unchanged within noise). Spawned workers
    (not Linux) import and build their own: None."""
    if method != "fork":
        return None
    detector.prepare()
    load_readers(content)
    return detector


def _claim(claims: Any, piece: int) -> bool:
    """Take ``piece`` unless another process took it first."""
    with claims.get_lock():
        if claims[piece]:
            return False
        claims[piece] = 1
        return True


def _piece_worker(
    repo: GitRepo, piece: int, oids: list[str], content: ContentOptions
) -> list[tuple[str, str, ChunkResult]]:
    """``_pack_worker`` on one piece, unless the parent (or another worker) claimed it."""
    global _DETECTOR
    if not _claim(_CLAIMS, piece):
        return []
    if _DETECTOR is None:
        _DETECTOR = Detector(_RULES)
    return _pack_worker(repo, _DETECTOR, oids, content)


def scan_pack_order_pool(
    repo: GitRepo,
    scope: Scope,
    options: GitScanOptions,
    rules: Sequence[Rule],
    workers: int,
) -> tuple[Objects, ChunkResult]:
    """``scan_pack_order`` on several cores: every object of the repository, listed in pack
    order (``cat-file --batch-all-objects --batch-check --unordered``: no inflating), cut
    into contiguous pieces (pack order keeps delta chains within a piece: git's total work
    stays close to the floor's, on every core), while the history walk (``walk_reachable``)
    runs in this process and says, at the end, which objects are in scope.

    This process reads from the FIRST object, from the moment it starts: the floor's own
    ``cat-file --batch-all-objects --batch --unordered``, never stopped while a piece is
    left that nobody claimed. The listing runs in a thread, cuts ``PIECES_PER_PROCESS *
    (workers + 1)`` pieces of about equal size and hands them to the workers from the LAST
    one back (each with its own ``cat-file --batch``); this process claims each piece as
    its stream enters it and stops at the first one a worker took: whoever is ahead (the
    pieces' costs differ: PDFs, archives, a loaded core) keeps going, and all finish
    together. Whatever nobody read (git stopped on a corrupt object, or the stream's order
    differs from the listing's) is read by id afterwards, where each error is named; an
    object read twice is reported once.

    Workers know no paths: objects in scope that need one (a notebook; a tree whose entries
    hold a key) are scanned again here with it. Counts come from the listing (types and
    sizes) of the objects in scope: the walk lists ids only."""
    import multiprocessing
    from itertools import compress
    from multiprocessing.pool import AsyncResult

    method = "fork" if sys.platform.startswith("linux") else "spawn"
    context = multiprocessing.get_context(method)
    pieces = PIECES_PER_PROCESS * (workers + 1)
    claims = context.Array("b", pieces)  # shared: who reads which piece
    detector = Detector(rules)
    forked = _for_workers(detector, options.content, method)
    # Forked before the walk starts any git process: no worker holds a pipe of ours.
    pool = context.Pool(workers, initializer=_pool_init, initargs=(claims, rules, forked))
    try:
        box: list[Reach | BaseException] = []  # the walk's outcome
        plan: list[list[list[str]] | BaseException] = []  # the pieces, once listed
        facts: list[Listing] = []  # the whole listing: ids, types, sizes
        handed: list[int] = []  # the pieces offered to workers
        pending: list[AsyncResult[list[tuple[str, str, ChunkResult]]]] = []
        listed = threading.Event()
        reading = threading.Event()  # set while this process still reads
        reading.set()

        def split() -> None:
            try:
                runs = pack_order_runs(repo, pieces, facts)
                if reading.is_set():  # else this process read everything already
                    for at in range(len(runs) - 1, 0, -1):  # the last piece first
                        handed.append(at)
                        pending.append(pool.apply_async(
                            _piece_worker, (repo, at, runs[at], options.content)))  # fmt: skip
                plan.append(runs)
            except BaseException as exc:  # handed to the main thread
                plan.append(exc)
                return
            finally:
                listed.set()
            # Then the walk: the workers wait for the listing, nobody for the walk (its
            # answer is needed at the end), so its git process does not compete with the
            # listing's for the cores.
            try:
                box.append(walk_reachable(repo, scope))
            except BaseException as exc:  # handed to the main thread
                box.append(exc)

        lister = threading.Thread(target=split, name="keyscan-git-list", daemon=True)
        lister.start()
        found: dict[str, tuple[str, ChunkResult]] = {}
        mine: list[str] = []
        ends: list[int] = []  # where each piece ends (objects), once listed
        owned = 0  # pieces [0, owned) are this process's
        edge = 0  # where the next piece starts (advance() only there)

        def advance(at: int) -> bool:
            """Own the piece holding object ``at`` (and those before it); False: a worker
            has it (this process stops)."""
            nonlocal owned, edge
            owned = max(owned, 1)  # the first piece is nobody else's
            while owned < len(ends) and ends[owned - 1] <= at:
                if not _claim(claims, owned):
                    return False
                owned += 1
            edge = ends[owned - 1] if owned < len(ends) else 1 << 62  # all owned
            return True

        def pieces_listed(runs: list[list[str]]) -> None:
            """Where each piece ends (one piece when nobody else reads)."""
            if not handed:
                ends.append(sum(map(len, runs)))
                return
            total = 0
            for run in runs:
                total += len(run)
                ends.append(total)

        own = ChunkResult()
        with contextlib.closing(ObjectReader(repo).read_all()) as stream:
            for oid, kind, data in stream:
                mine.append(oid)
                scan_object(detector, oid, kind, data, options.content, "", own)
                if own.hits or own.errors:
                    found[oid] = (kind, own)
                    own = ChunkResult()
                if not ends and listed.is_set():
                    first = plan[0]
                    if isinstance(first, BaseException):
                        break
                    pieces_listed(first)
                if ends and len(mine) >= edge and not advance(len(mine)):
                    break
        reading.clear()
        listed.wait()
        runs = plan[0]
        if isinstance(runs, BaseException):
            raise runs
        if not ends:  # listed after this process's stream ended
            pieces_listed(runs)
            advance(len(mine))
        for job in pending:
            for oid, kind, got in job.get():
                found[oid] = (kind, got)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    reach = _reach_of(lister, box)
    listing = facts[0]
    # Listed objects nobody read: the tail of this process's pieces when git stopped early
    # (or of the whole listing when this process was to read everything).
    own_run = [o for run in runs[:owned] for o in run] if handed else [
        o.decode() for o in listing.ids]  # fmt: skip
    if mine[: len(own_run)] != own_run:  # rare: compared at C speed, sets only then
        mine_set = {o.encode() for o in mine}
        skipped = {o.encode() for o in own_run} - mine_set
        keep = [o not in skipped for o in listing.ids]
        listing = Listing(*(list(compress(column, keep)) for column in listing))
    del mine, own_run
    handed.clear()
    tally = _Tally(reach, found, listing)
    unread = tally.unread(lambda: set(listing.ids))
    return tally.finish(repo, detector, options.content, unread)


def _pack_store(repo: GitRepo, scope: Scope) -> tuple[packs.Store, packs.ApplyDelta] | None:
    """The repository's packs, to be read in keyscan's processes, or None (git reads)."""
    from keyscan.git import packs

    apply = packs.apply_delta_function()
    if apply is None or not scope.include:
        return None
    store = packs.open_store(repo.git_dir, len(scope.include[0]) // 2)
    return None if store is None else (store, apply)


# A pack-store pool's shared state, inherited by each forked worker (``_packs_pool_init``):
# the store (indexes parsed once, before the fork) and the worker's own reader.
_STORE: packs.Store | None = None
_APPLY: packs.ApplyDelta | None = None
_READER: packs.Reader | None = None


def _packs_pool_init(
    claims: Any,
    rules: Sequence[Rule],
    store: packs.Store,
    apply: packs.ApplyDelta,
    detector: Detector | None,
) -> None:
    global _STORE, _APPLY, _READER
    _STORE, _APPLY, _READER = store, apply, None
    _pool_init(claims, rules, detector)


_PieceOut = tuple[list[tuple[str, str, ChunkResult]], Listing]


def _packs_piece_worker(piece_at: int, piece: packs.Piece, content: ContentOptions) -> _PieceOut:
    """One piece of the store, read and scanned by this worker, unless another process
    claimed it: (objects with a hit or an error, the listing of what was read). What the
    reader leaves to git is not in the listing: the parent reads it by id."""
    global _DETECTOR, _READER
    listing = Listing([], [], [])
    if not _claim(_CLAIMS, piece_at):
        return [], listing
    if _DETECTOR is None:
        _DETECTOR = Detector(_RULES)
    if _READER is None:
        from keyscan.git.packs import Reader

        assert _STORE is not None and _APPLY is not None
        _READER = Reader(_STORE, _APPLY)
    found: dict[str, tuple[str, ChunkResult]] = {}
    _scan_piece(_READER, _DETECTOR, piece, content, found, listing)
    _READER.skipped.clear()
    return [(oid, kind, got) for oid, (kind, got) in found.items()], listing


def _scan_piece(
    reader: packs.Reader,
    detector: Detector,
    piece: packs.Piece,
    content: ContentOptions,
    found: dict[str, tuple[str, ChunkResult]],
    listing: Listing,
) -> None:
    """Scan every object of ``piece``: those with a hit or an error into ``found``, every
    one read into ``listing`` (id, type, size: what the tally counts)."""
    ids, types, sizes = listing
    names = _TYPE_NAMES
    own = ChunkResult()
    for oid, kind, data in reader.read(piece):
        scan_object(detector, oid, kind, data, content, "", own)
        if own.hits or own.errors:
            found[oid] = (kind, own)
            own = ChunkResult()
        ids.append(oid.encode())
        types.append(names[kind])
        sizes.append(b"%d" % len(data))


def scan_packs(
    repo: GitRepo,
    scope: Scope,
    options: GitScanOptions,
    rules: Sequence[Rule],
    workers: int,
    store: packs.Store,
    apply: packs.ApplyDelta,
) -> tuple[Objects, ChunkResult, int]:
    """Every ref, read from the repository's packs by keyscan's own processes
    (``keyscan.git.packs``): what ``scan_pack_order_pool`` does, without git's pipe.

    The store (the pack indexes, parsed before any worker is forked) is cut into
    ``PACK_PIECES_PER_PROCESS * (workers + 1)`` pack-order pieces that shrink towards the
    middle, the front half at ``PACK_FRONT_WEIGHT``; this process reads them from the first,
    the workers from the last back, each claiming a piece before reading it, so all finish
    together. The history walk (``walk_reachable``, git's ``rev-list``) starts first
    (``start_walk``: it runs on the other core while this process readies the workers and
    forks them) and says, at the end, which objects are in scope; only those are counted
    and reported. What the reader leaves to git (loose objects, an entry it
    does not read, a pack that went away) is read by id afterwards, where git names every
    error. ``workers`` 0: this process reads everything. Returns the objects in scope, what
    they hold, and the workers that read them (1: none, this process read everything)."""
    import multiprocessing

    from keyscan.git.packs import Reader

    count = PACK_PIECES_PER_PROCESS * (workers + 1) if workers else 1
    pieces = store.pieces(count, taper=True, front=PACK_FRONT_WEIGHT)
    pool = None
    claims: Any = None
    detector = Detector(rules)
    walk = start_walk(repo, scope)
    found: dict[str, tuple[str, ChunkResult]] = {}
    listing = Listing([], [], [])
    reader = Reader(store, apply)
    try:
        if workers and len(pieces) > 1:
            method = "fork" if sys.platform.startswith("linux") else "spawn"
            context = multiprocessing.get_context(method)
            claims = context.Array("b", len(pieces))  # shared: who reads which piece
            forked = _for_workers(detector, options.content, method)
            # The walk's git runs already: its files, not pipes, are what a worker inherits.
            pool = context.Pool(
                workers,
                initializer=_packs_pool_init,
                initargs=(claims, rules, store, apply, forked),
            )
        pending = [
            pool.apply_async(_packs_piece_worker, (at, pieces[at], options.content))
            for at in range(len(pieces) - 1, 0, -1)
        ] if pool is not None else []  # fmt: skip
        reach: Reach | None = None
        try:
            for at, piece in enumerate(pieces):
                if claims is not None and not _claim(claims, at):
                    break  # a worker has it, and every piece after it
                _scan_piece(reader, detector, piece, options.content, found, listing)
                if reach is None and walk.ended():  # its output parsed while others read
                    reach = walk_reachable(repo, scope, walk)
        finally:
            reader.close()
        if reach is None:
            reach = walk_reachable(repo, scope, walk)
        # This process's part of the tally, then each worker's as it comes: counted while
        # the workers still read their last pieces, not after them.
        tally = _Tally(reach, found, listing)
        delivered = [listing.ids]
        for job in pending:
            kept, part = job.get()
            for oid, kind, got in kept:
                found[oid] = (kind, got)
            tally.add(part)
            delivered.append(part.ids)
        if pool is not None:
            pool.close()
    except BaseException:
        walk.stop()
        if pool is not None:
            pool.terminate()
        raise
    finally:
        if pool is not None:
            pool.join()
    # What no reader delivered (``reader.skipped``, loose objects) and the walk reached is
    # read by id here, where git names every error.
    unread = tally.unread(lambda: {oid for ids in delivered for oid in ids})
    return (*tally.finish(repo, detector, options.content, unread), workers if pool else 1)


# --------------------------------------------------------------------------------------------
# History


def scan_history(
    repo: GitRepo, options: GitScanOptions, rules: Sequence[Rule], result: ScanResult
) -> None:
    if options.all_objects and (options.since or options.range or options.branch or options.scope):
        raise GitError("--all-objects", "scans the whole repository: not with a range or branch")
    t0 = time.perf_counter()
    # A range discover resolved: the refs (for the report) are listed beside the scan.
    scope = resolve_scope(repo, options, later_refs=True)
    result.warnings.extend(scope.warnings)
    stats: dict[str, Any] = result.stats
    stats.update(
        refs=0,  # below, once listed
        heads=list(scope.include),
        excluded=list(scope.exclude),
        head=scope.head,
        shallow=repo.shallow,
        bare=repo.bare,
    )
    if repo.shallow:
        result.warnings.append(
            f"{repo.git_dir}: shallow clone: history is partial, commits before the shallow "
            "boundary are not in the repository and were not scanned"
        )
    if not scope.include and not options.all_objects:
        stats.update(refs=len(scope.wait_refs()), commits=0, blobs=0, tags=0, objects=0,
                     unreachable=0)  # fmt: skip
        return
    # HEAD's submodules are listed while the history is read: its git process overlaps the
    # scan instead of following it. Only a scan with findings lists HEAD's files (where
    # findings still are: head_tree), after the scan.
    listing = _HeadListing(repo, scope.head)

    def settle() -> None:  # before a pool forks: the listings' threads have ended
        listing.result()
        with contextlib.suppress(GitError):  # raised again below, where it is reported
            scope.wait_refs()

    try:
        objects, scanned, workers = enumerate_and_scan(repo, scope, options, rules, settle)
    finally:
        head_listing = listing.result()
    stats["refs"] = len(scope.wait_refs())
    result.errors.extend(objects.errors)
    t2 = time.perf_counter()
    result.errors.extend(scanned.errors)
    result.files = scanned.blobs
    result.bytes = scanned.bytes
    hits = scanned.hits
    if hits:
        head_blobs, submodules = head_tree(repo, scope.head)
        result.findings = attribute(repo, hits, scope, objects, options, head_blobs)
    else:  # nothing to attribute: only the submodules HEAD records (the warnings below)
        submodules = _submodules_at(repo, scope.head, head_listing)
        result.findings = []
    for path, sha in submodules:
        result.warnings.append(
            f"submodule {path} (commit {sha[:12]}) not entered: scan its repository separately"
        )
    stats.update(
        commits=scanned.commits,
        blobs=scanned.blobs,
        tags=scanned.tags,
        objects=len(objects.scan) if objects.count is None else objects.count,
        bytes=scanned.bytes,
        unreachable=len(objects.unreachable),
        submodules=len(submodules),
        workers=workers,
        seconds={
            "enumerate_and_scan": round(t2 - t0, 3),
            "provenance": round(time.perf_counter() - t2, 3),
        },
    )
