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
   many commits and paths hold it; binary blobs are scanned too.
4. **Provenance, only for blobs that hold a key.** One ``git log --raw -c -z`` pass over the
   same scope finds, for those blobs only, every commit and path that introduced them
   (combined diff: content that only a merge resolution introduced is attributed to the
   merge). The earliest is the location; the rest go to ``Finding.extra``. Refs that reach
   the key (``for-each-ref --contains``) and whether HEAD still holds it are added.

Nothing from the repository is executed: see ``keyscan.sources.gitobjects``.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from keyscan.content import ContentOptions, scan_buffer
from keyscan.detector import Detector
from keyscan.findings import Hit, aggregate, is_binary
from keyscan.models import CommitInfo, Finding, Location, Rule, ScanError, ScanResult
from keyscan.sources.files import name_hits
from keyscan.sources.gitobjects import (
    GitError,
    GitRepo,
    GitTimeout,
    ObjectReader,
    ObjectRef,
    batch_check,
    discover,
    iter_chunks,
    last_line,
    lines_of,
    parse_person,
    split_commit,
    split_z,
)

# Below this many bytes a scan stays in one process (worker start-up is not free).
PARALLEL_MIN_BYTES = 24 * 1024 * 1024
# Up to this many blobs with hits, provenance asks git to filter (--find-object).
FIND_OBJECT_MAX = 2000
EMPTY_TREE_SHA1 = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


@dataclass
class GitScanOptions:
    """What to scan in a repository. Picklable."""

    # Revisions whose history is scanned; None: all refs plus HEAD.
    scope: list[str] | None = None
    all_objects: bool = False  # also objects no ref reaches (reported as unreachable)
    since: str | None = None  # only what is not reachable from this revision
    range: str | None = None  # "A..B" (or "A...B")
    branch: str | None = None  # only this revision's history
    staged: bool = False  # the index instead of history
    paths: list[str] | None = None  # staged: only these paths (as in the index); None: all
    all_locations: bool = False  # list every commit/path carrying a key in Finding.extra
    jobs: int | None = None  # worker processes (None: every core, for large repositories)
    content: ContentOptions = field(default_factory=ContentOptions)
    # Skip everything reachable from these commits (incremental re-scans: pass the previous
    # scan's stats["heads"]).
    exclude_commits: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)  # path globs (as --exclude)


def is_url(target: str) -> bool:
    """A URL to clone rather than a local path (any scheme: unsupported ones are refused
    when cloning, never taken for a path)."""
    from keyscan.sources.gitobjects import is_remote

    return is_remote(target)


def public_url(target: str) -> str:
    """A URL fit for reports: credentials in it (``https://user:token@host``) are masked."""
    scheme, sep, rest = target.partition("://")
    if not sep:
        return target
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    return f"{scheme}://{netloc}{slash}{path}"


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
            tmp = tempfile.mkdtemp(prefix="keyscan-clone-")
            path = os.path.join(tmp, "repo.git")
            clone(target, path)
            repo = discover(path)
        else:
            repo = discover(target)
        if options.staged:
            scan_staged(repo, options, rules, result)
        else:
            scan_history(repo, options, rules, result)
    except GitError as exc:
        where, message = exc.where, exc.message
        if shown != target:
            where, message = where.replace(target, shown), message.replace(target, shown)
        result.errors.append(ScanError(where, message))
    except OSError as exc:  # cannot start git, no more processes, disk full...
        result.errors.append(ScanError(shown, f"cannot run git: {exc.strerror or exc}"))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    result.duration = time.perf_counter() - started
    return result


def clone(url: str, dest: str) -> None:
    """Mirror-clone ``url`` (bare, every ref): ``keyscan.sources.gitobjects.clone``, which
    allows only https, http, ssh, git and file transports; hooks and fsmonitor stay off."""
    from keyscan.sources import gitobjects

    gitobjects.clone(url, dest)


# --------------------------------------------------------------------------------------------
# Scope


@dataclass
class Scope:
    include: list[str]  # commit (or object) ids to walk from
    exclude: list[str]  # ids whose history is left out
    refs: dict[str, str]  # refname -> object id (all refs, for the report)
    head: str | None
    warnings: list[str] = field(default_factory=list)
    # Tips that are not refs but history all the same: older stash entries ("stash@{1}").
    reflog_tips: dict[str, str] = field(default_factory=dict)


def _check_rev(rev: str) -> str:
    if not rev or rev.startswith("-") or "\n" in rev or "\0" in rev:
        raise GitError(rev or "''", "not a valid revision")
    return rev


def _resolve(repo: GitRepo, rev: str) -> list[str]:
    """``git rev-parse`` of a revision or range: ids, excluded ones prefixed with ^."""
    proc = repo.run("rev-parse", "--revs-only", "--end-of-options", _check_rev(rev), check=False)
    out = lines_of(proc.stdout)
    if proc.returncode == 0 and out:
        # rev-parse passes any full-length hex through: check that the objects exist.
        check = repo.run("cat-file", "--batch-check", input="".join(
            f"{o.lstrip('^')}\n" for o in out).encode(), check=False)  # fmt: skip
        if check.returncode == 0 and b" missing" not in check.stdout:
            return out
    raise GitError(rev, "unknown revision (not a commit, branch, tag or range here)")


def list_refs(repo: GitRepo) -> dict[str, str]:
    proc = repo.run("for-each-ref", "--format=%(objectname) %(refname)")
    refs: dict[str, str] = {}
    for line in lines_of(proc.stdout):
        oid, _, name = line.partition(" ")
        refs[name] = oid
    return refs


def head_commit(repo: GitRepo) -> str | None:
    proc = repo.run("rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
    out = lines_of(proc.stdout)
    return out[0] if proc.returncode == 0 and out else None


def stash_entries(repo: GitRepo) -> dict[str, str]:
    """``stash@{n}`` -> commit for every entry of the stash reflog, newest first. Only the
    newest is ``refs/stash``; the others are history that no ref reaches."""
    proc = repo.run("rev-list", "--walk-reflogs", "refs/stash", "--", check=False)
    return {f"stash@{{{n}}}": oid for n, oid in enumerate(lines_of(proc.stdout))}


def resolve_scope(repo: GitRepo, options: GitScanOptions) -> Scope:
    refs = list_refs(repo)
    head = head_commit(repo)
    include: list[str] = []
    exclude: list[str] = []
    reflog_tips: dict[str, str] = {}
    if options.range:
        rev_range = options.range
        left, dots, right = rev_range.partition("..")
        if dots and left and set(left) == {"0"}:
            # A pre-push hook's "remote side" of a new branch is the null id: no base.
            rev_range = right.lstrip(".") or "HEAD"
        for item in _resolve(repo, rev_range):
            (exclude if item.startswith("^") else include).append(item.lstrip("^"))
    elif options.branch or options.scope:
        for rev in ([options.branch] if options.branch else []) + list(options.scope or []):
            for item in _resolve(repo, rev):
                (exclude if item.startswith("^") else include).append(item.lstrip("^"))
    else:
        include = list(dict.fromkeys(refs.values()))
        if head is not None and head not in include:
            include.append(head)
        if "refs/stash" in refs:  # every stash entry, with its index and untracked parents
            reflog_tips = {n: c for n, c in stash_entries(repo).items() if n != "stash@{0}"}
            include.extend(c for c in dict.fromkeys(reflog_tips.values()) if c not in include)
    warnings: list[str] = []
    if options.since:
        exclude.extend(i for i in _resolve(repo, options.since) if not i.startswith("^"))
    for rev in options.exclude_commits:
        try:
            exclude.extend(i for i in _resolve(repo, rev) if not i.startswith("^"))
        except GitError:
            # An earlier scan's head that is gone (force-push, gc): what it reached is no
            # longer known, so it is scanned again rather than failing the scan.
            warnings.append(f"{rev}: excluded commit not in the repository any more, ignored")
    return Scope(include=list(dict.fromkeys(include)), exclude=list(dict.fromkeys(exclude)),
                 refs=refs, head=head, warnings=warnings, reflog_tips=reflog_tips)  # fmt: skip


def _revs_input(include: Sequence[str], exclude: Sequence[str]) -> bytes:
    return "".join([f"{i}\n" for i in include] + [f"^{e}\n" for e in exclude]).encode()


# --------------------------------------------------------------------------------------------
# Enumeration


@dataclass
class Objects:
    scan: list[ObjectRef]  # blobs, commits, tags to read, in a read-friendly order
    reachable: set[str]  # reachable blobs, commits and tags (only kept for all_objects)
    unreachable: set[str]  # scanned although unreachable (all_objects)
    unreachable_commits: list[str]
    errors: list[ScanError] = field(default_factory=list)


def enumerate_objects(
    repo: GitRepo,
    scope: Scope,
    all_objects: bool,
    on_object: Callable[[ObjectRef], None] | None = None,
) -> Objects:
    """Objects to scan. A history walk that fails part-way (corrupt tree or commit) or an
    object that cannot be read is an error in ``Objects.errors``; the rest is still scanned."""
    import subprocess
    import threading

    scan: list[ObjectRef] = []
    reachable: set[str] = set()
    errors: list[ScanError] = []
    if scope.include:
        revlist = repo.popen(
            "rev-list",
            "--objects",  # with names: a path hint for notebooks
            "--missing=print",
            "--stdin",
            stdin=subprocess.PIPE,
        )
        assert revlist.stdin is not None and revlist.stderr is not None
        revlist.send(_revs_input(scope.include, scope.exclude))
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
                    _object_in(err) or "history",
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


def _object_in(stderr: bytes) -> str | None:
    import re

    m = re.search(rb"\b([0-9a-f]{40}|[0-9a-f]{64})\b", stderr)
    return m.group(1).decode() if m else None


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
    errors = out.errors
    for oid, kind, data in ObjectReader(repo).read(oids):
        if kind == "blob":
            out.blobs += 1
            out.bytes += len(data)
            hint = hints.get(oid, "")
            template = Location(
                path=hint, line=0, column=0, offset=0, source="git-blob", blob=oid,
                binary=is_binary(data),
            )  # fmt: skip
            problems: list[ScanError] = []
            found = scan_buffer(detector, data, template, content, errors=problems)
            # Named by the blob (its path is known only after provenance), member kept.
            errors.extend(ScanError(f"blob {oid}{e.where[len(hint):]}", e.message)
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
            out.hits.extend(_scan_message(detector, oid, kind, data, content, errors))
        elif kind == "tree":
            out.hits.extend(_scan_tree(detector, oid, data, hints.get(oid, "")))
        elif kind == "error":
            out.errors.append(ScanError(oid, data.decode("utf-8", "replace")))
    return out


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


def _scan_message(
    detector: Detector,
    oid: str,
    kind: str,
    data: bytes,
    content: ContentOptions,
    errors: list[ScanError],
) -> list[Hit]:
    headers, start = split_commit(data)
    message = data[start:]
    where = "(commit message)" if kind == "commit" else "(tag message)"
    template = Location(path="", line=0, column=0, offset=0, source="git-message", blob=None)
    found: list[ScanError] = []
    hits = scan_buffer(detector, message, template, content, errors=found)
    errors.extend(ScanError(f"{where[1:-1]} {oid}{e.where}", e.message) for e in found)
    if not hits:
        return hits
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


def _merge(into: ChunkResult, part: ChunkResult) -> None:
    into.hits.extend(part.hits)
    into.errors.extend(part.errors)
    into.blobs += part.blobs
    into.commits += part.commits
    into.tags += part.tags
    into.bytes += part.bytes


def estimate_bytes(repo: GitRepo) -> int:
    """Packed plus loose size of the object store (what ``git count-objects -v`` says)."""
    proc = repo.run("count-objects", "-v", check=False)
    total = 0
    for line in lines_of(proc.stdout):
        key, _, value = line.partition(": ")
        if key in ("size", "size-pack") and value.strip().isdigit():
            total += int(value) * 1024
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
) -> tuple[Objects, ChunkResult, int]:
    """Enumerate and scan.

    In one process (the default on 2 cores, and for small repositories) the scan streams:
    one ``cat-file --batch`` reads objects while the history walk (a thread) still finds
    them. With workers, the walk comes first, then the objects are split between them."""
    jobs = default_jobs() if options.jobs is None else options.jobs
    scoped = bool(scope.exclude) or bool(options.branch or options.range or options.scope)
    if jobs > 1 and (scoped or estimate_bytes(repo) >= PARALLEL_MIN_BYTES // 4):
        objects = enumerate_objects(repo, scope, options.all_objects)
        if sum(o.size for o in objects.scan) >= PARALLEL_MIN_BYTES:
            return objects, scan_in_pool(repo, rules, objects.scan, options.content, jobs), jobs
        known = {o.oid: o.hint for o in objects.scan if o.hint}
        oids = [o.oid for o in objects.scan]
        scanned = scan_objects(repo, Detector(rules), oids, options.content, known)
        return objects, scanned, 1

    found: queue.Queue[list[ObjectRef] | None] = queue.Queue()
    batch: list[ObjectRef] = []

    def collect(ref: ObjectRef) -> None:
        batch.append(ref)
        if len(batch) >= 256:
            found.put(batch.copy())
            batch.clear()

    box: list[Objects | BaseException] = []

    def walk() -> None:
        try:
            box.append(enumerate_objects(repo, scope, options.all_objects, collect))
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
    scanned = scan_objects(repo, Detector(rules), stream(), options.content, hints)
    thread.join()
    outcome = box[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome, scanned, 1


# --------------------------------------------------------------------------------------------
# Provenance


@dataclass(frozen=True)
class Intro:
    """A commit that introduced a blob at a path (differs from every parent there)."""

    commit: str
    path: str
    time: int
    order: int  # position in log output; later = older


def introductions(
    repo: GitRepo,
    blobs: set[str],
    include: Sequence[str],
    exclude: Sequence[str],
    infos: dict[str, CommitInfo],
) -> dict[str, list[Intro]]:
    """Every (commit, path) that introduced one of ``blobs``, from one ``git log`` pass."""
    import subprocess

    found: dict[str, list[Intro]] = {}
    if not blobs or not include:
        return found
    proc = repo.popen(
        "log", "--stdin", "--raw", "-c", "--root", "--no-abbrev", "--no-renames", "-z",
        "--no-textconv", "--no-ext-diff", "--no-color", "--no-show-signature",
        "--format=%x01%H%x00%P%x00%an%x00%ae%x00%aI%x00%ct%x00%s",
        # git itself keeps only the commits and paths that add or remove these blobs.
        *([f"--find-object={b}" for b in sorted(blobs)] if len(blobs) <= FIND_OBJECT_MAX else []),
        stdin=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.send(_revs_input(include, exclude))
    tokens = split_z(proc.stdout)
    commit = ""
    ctime = 0
    order = 0
    header: list[bytes] = []
    for tok in tokens:
        if tok.startswith(b"\x01"):
            header = [tok[1:]]
            for _ in range(6):
                header.append(next(tokens, b""))
            commit = header[0].decode()
            ctime = int(header[5] or b"0")
            order += 1
            continue
        tok = tok.lstrip(b"\n")
        if not tok.startswith(b":"):
            continue
        path = next(tokens, b"")
        fields = tok.lstrip(b":").split(b" ")
        # ":m1 m2 o1 o2 S" or "::m1 m2 m3 o1 o2 o3 SS": the last id is the result.
        oid = fields[-2].decode() if len(fields) >= 2 else ""
        if oid in blobs:
            found.setdefault(oid, []).append(
                Intro(commit, path.decode("utf-8", "surrogateescape"), ctime, order)
            )
            if commit not in infos:
                infos[commit] = CommitInfo(
                    sha=commit,
                    author_name=header[2].decode("utf-8", "replace"),
                    author_email=header[3].decode("utf-8", "replace"),
                    date=header[4].decode("utf-8", "replace"),
                    subject=header[6].decode("utf-8", "replace"),
                )
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    if proc.wait() != 0:
        raise GitError(_object_in(err) or "log", last_line(err) or "cannot read history")
    return found


def head_tree(
    repo: GitRepo, head: str | None
) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """Blob id -> paths at HEAD, and the submodules (path, commit) HEAD records."""
    blobs: dict[str, list[str]] = {}
    submodules: list[tuple[str, str]] = []
    if head is None:
        return blobs, submodules
    proc = repo.run("ls-tree", "-r", "-z", "--full-tree", head)
    for entry in proc.stdout.split(b"\0"):
        meta, _, path = entry.partition(b"\t")
        parts = meta.split(b" ")
        if len(parts) != 3:
            continue
        name = path.decode("utf-8", "surrogateescape")
        if parts[1] == b"blob":
            blobs.setdefault(parts[2].decode(), []).append(name)
        elif parts[1] == b"commit":
            submodules.append((name, parts[2].decode()))
    return blobs, submodules


class RefIndex:
    """Which refs reach which of a few commits, from ONE history walk.

    ``git for-each-ref --contains`` walks the history once per question: with thousands of
    refs (pull-request refs of a mirror) and a few dozen findings that is minutes. Here one
    ``git rev-list --all --topo-order --reverse --parents`` pass (parents before children)
    carries a bitmask of the commits asked about down to every descendant; a ref reaches a
    commit when its (peeled) tip has that commit's bit."""

    def __init__(
        self, repo: GitRepo, commits: set[str], extra_tips: dict[str, str] | None = None
    ) -> None:
        self.by_commit: dict[str, list[str]] = {c: [] for c in commits}
        # Refs whose (peeled) tip is the object itself: a tag on a blob or a tree.
        self.by_object: dict[str, list[str]] = {}
        tips = repo.run(
            "for-each-ref", "--format=%(objectname) %(*objectname) %(refname)", check=False
        )
        peeled_tips: list[tuple[str, str]] = []
        for ref_line in lines_of(tips.stdout):
            oid, peeled, name = [*ref_line.split(" ", 2), "", ""][:3]
            peeled_tips.append((peeled or oid, name))
            self.by_object.setdefault(peeled or oid, []).append(name)
        extra = extra_tips or {}
        peeled_tips.extend((oid, name) for name, oid in extra.items())
        if not commits:
            return
        order = sorted(commits)
        bits = {c: 1 << i for i, c in enumerate(order)}
        import subprocess

        proc = repo.popen(
            "rev-list", "--all", "--topo-order", "--reverse", "--parents", "--stdin",
            stdin=subprocess.PIPE,
        )  # fmt: skip
        proc.send("".join(f"{oid}\n" for oid in dict.fromkeys(extra.values())).encode())
        assert proc.stdout is not None and proc.stderr is not None
        masks: dict[bytes, int] = {}
        bits_b = {c.encode(): bit for c, bit in bits.items()}
        for line in proc.stdout:
            ids = line.split()
            if not ids:
                continue
            mask = bits_b.get(ids[0], 0)
            for parent in ids[1:]:
                mask |= masks.get(parent, 0)
            if mask:
                masks[ids[0]] = mask
        proc.stdout.close()
        proc.stderr.close()
        proc.wait()
        for tip, name in peeled_tips:
            mask = masks.get(tip.encode(), 0)
            if not mask:
                continue
            for commit in order:
                if mask & bits[commit]:
                    self.by_commit[commit].append(name)

    def refs(self, commits: Sequence[str], objects: Sequence[str] = ()) -> list[str]:
        """Refs that reach any of ``commits``, or point right at one of ``objects``."""
        names = {r for c in commits for r in self.by_commit.get(c, [])}
        names.update(r for o in objects for r in self.by_object.get(o, []))
        return sorted(names)


def _excluded(path: str, patterns: Sequence[str]) -> bool:
    if not patterns or not path:
        return False
    from keyscan.sources.files import _glob_match

    # As the file walker prunes folders: each leading folder, then the path itself.
    parts = path.split("/")
    return any(_glob_match("/".join(parts[: i + 1]), parts[i], patterns) for i in range(len(parts)))


def _intro_json(intro: Intro, blob: str, infos: dict[str, CommitInfo]) -> dict[str, Any]:
    info = infos.get(intro.commit)
    return {
        "commit": intro.commit,
        "path": intro.path,
        "blob": blob,
        "date": info.date if info else "",
        "author": info.author_name if info else "",
    }


def attribute(
    repo: GitRepo,
    hits: list[Hit],
    scope: Scope,
    objects: Objects,
    options: GitScanOptions,
    head_blobs: dict[str, list[str]],
) -> list[Finding]:
    """Provenance for the hits, then one finding per secret with its git extras."""
    blob_hits = [h for h in hits if h.location.source == "git-blob"]
    blobs = {h.location.blob for h in blob_hits if h.location.blob}
    infos: dict[str, CommitInfo] = {}
    intros = introductions(repo, blobs, scope.include, scope.exclude, infos)
    lost = {b for b in blobs if b not in intros and b in objects.unreachable}
    if lost and objects.unreachable_commits:
        more = introductions(
            repo, lost, objects.unreachable_commits, scope.include + scope.exclude, infos
        )
        for blob, items in more.items():
            intros[blob] = items
    unreachable_commit_set = set(objects.unreachable_commits)

    kept: list[Hit] = []
    # (commit, path, blob) of the introduction each kept location reports.
    primary: set[tuple[str, str, str]] = set()
    named: set[tuple[bytes, str, str]] = set()  # a name is in many trees: report it once
    for h in hits:
        loc = h.location
        if loc.source == "git-message":
            sha = loc.commit.sha if loc.commit else ""
            loc.extra["unreachable"] = sha in objects.unreachable
            kept.append(h)
            continue
        if loc.extra.get("file_name"):
            if _excluded(loc.path, options.excludes):
                continue
            tree = str(loc.extra.pop("tree", ""))
            loc.extra["unreachable"] = tree in objects.unreachable
            base = loc.path.rsplit("/", 1)[-1]
            # The commits that brought this blob in under this name.
            items = [i for i in intros.get(loc.blob or "", [])
                     if i.path.rsplit("/", 1)[-1] == base
                     and not _excluded(i.path, options.excludes)]  # fmt: skip
            items.sort(key=lambda i: (i.time, -i.order))
            if items:
                loc.path = items[0].path
                loc.commit = infos.get(items[0].commit)
                primary.add((items[0].commit, items[0].path, loc.blob or ""))
            ident = (h.secret, loc.path, loc.commit.sha if loc.commit else "")
            if ident not in named:
                named.add(ident)
                kept.append(h)
            continue
        blob = loc.blob or ""
        items = [i for i in intros.get(blob, []) if not _excluded(i.path, options.excludes)]
        if intros.get(blob) and not items:
            continue  # every path that carried it is excluded
        items.sort(key=lambda i: (i.time, -i.order))
        unreachable = blob in objects.unreachable
        loc.extra["unreachable"] = unreachable
        # Hits inside an archive blob keep their member chain in loc.member.
        if items:
            first = items[0]
            loc.path = first.path
            loc.commit = infos.get(first.commit)
            if first.commit in unreachable_commit_set:
                loc.extra["unreachable"] = True
            primary.add((first.commit, first.path, blob))
        elif unreachable:
            loc.path = f"(unreachable blob {blob[:12]})"
        else:
            loc.path = f"(blob {blob[:12]}, reachable from a tag or tree, no commit)"
        kept.append(h)

    findings = aggregate(kept)
    asked = {i.commit for items in intros.values() for i in items}
    asked.update(h.location.commit.sha for h in kept if h.location.commit is not None)
    ref_index = RefIndex(repo, asked, scope.reflog_tips)
    for f in findings:  # oldest introduction first
        f.locations.sort(key=lambda loc: (loc.commit.date if loc.commit else "~", loc.sort_key()))
    for f in findings:
        all_carriers: list[tuple[Intro, str]] = []
        seen_blobs: set[str] = set()
        commits: list[str] = []
        for loc in f.locations:
            if loc.commit is not None:
                commits.append(loc.commit.sha)
        # A key in a file name is carried by that name only, not by the blob's content.
        names = {loc.path.rsplit("/", 1)[-1] for loc in f.locations if loc.extra.get("file_name")}

        def carries(path: str, names: set[str] = names) -> bool:
            return not names or path.rsplit("/", 1)[-1] in names

        for loc in f.locations:
            if loc.blob and loc.blob not in seen_blobs:
                seen_blobs.add(loc.blob)
                all_carriers.extend((i, loc.blob) for i in intros.get(loc.blob, [])
                                    if not _excluded(i.path, options.excludes)
                                    and carries(i.path))  # fmt: skip
        others = [(i, b) for i, b in all_carriers if (i.commit, i.path, b) not in primary]
        commits.extend(i.commit for i, _ in all_carriers)
        distinct = list(dict.fromkeys(commits))
        head_paths = sorted(
            {p for b in seen_blobs for p in head_blobs.get(b, []) if carries(p)}
        )
        f.extra["git"] = {
            "first_commit": _first_commit(f),
            "commits": len(distinct),
            "other_locations_count": len(others),
            "refs": ref_index.refs(distinct, sorted(seen_blobs)),
            "present_at_head": bool(head_paths),
            "head_paths": head_paths,
            "unreachable": all(loc.extra.get("unreachable") for loc in f.locations),
        }
        if options.all_locations:
            f.extra["git"]["other_locations"] = [_intro_json(i, b, infos) for i, b in others]
    return findings


def _first_commit(f: Finding) -> str | None:
    dated = [loc.commit for loc in f.locations if loc.commit is not None]
    if not dated:
        return None
    return min(dated, key=lambda c: c.date).sha


# --------------------------------------------------------------------------------------------
# History


def scan_history(
    repo: GitRepo, options: GitScanOptions, rules: Sequence[Rule], result: ScanResult
) -> None:
    if options.all_objects and (options.since or options.range or options.branch or options.scope):
        raise GitError("--all-objects", "scans the whole repository: not with a range or branch")
    t0 = time.perf_counter()
    scope = resolve_scope(repo, options)
    result.warnings.extend(scope.warnings)
    stats: dict[str, Any] = result.stats
    stats.update(
        refs=len(scope.refs),
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
        stats.update(commits=0, blobs=0, tags=0, objects=0, unreachable=0)
        return
    objects, scanned, workers = enumerate_and_scan(repo, scope, options, rules)
    result.errors.extend(objects.errors)
    t2 = time.perf_counter()
    result.errors.extend(scanned.errors)
    result.files = scanned.blobs
    result.bytes = scanned.bytes
    head_blobs, submodules = head_tree(repo, scope.head)
    hits = scanned.hits
    result.findings = attribute(repo, hits, scope, objects, options, head_blobs) if hits else []
    for path, sha in submodules:
        result.warnings.append(
            f"submodule {path} (commit {sha[:12]}) not entered: scan its repository separately"
        )
    stats.update(
        commits=scanned.commits,
        blobs=scanned.blobs,
        tags=scanned.tags,
        objects=len(objects.scan),
        bytes=scanned.bytes,
        unreachable=len(objects.unreachable),
        submodules=len(submodules),
        workers=workers,
        seconds={
            "enumerate_and_scan": round(t2 - t0, 3),
            "provenance": round(time.perf_counter() - t2, 3),
        },
    )


# --------------------------------------------------------------------------------------------
# Staged


def scan_staged(
    repo: GitRepo, options: GitScanOptions, rules: Sequence[Rule], result: ScanResult
) -> None:
    """What the next commit will hold that HEAD does not: every added or modified entry of
    the index, scanned whole (line numbers of the staged content, paths as in the index).
    Works before the first commit. Plain plumbing only: no GitPython, no hooks."""
    if repo.bare:
        raise GitError(repo.git_dir, "--staged needs a work tree (this repository is bare)")
    head = head_commit(repo)
    base = head if head is not None else _empty_tree(repo)
    proc = repo.run(
        "diff-index", "--cached", "--raw", "-z", "--no-renames", "--no-abbrev",
        "--ignore-submodules=none", base, keep_index=True,
    )  # fmt: skip
    entries: list[tuple[str, str]] = []  # (blob, path)
    unmerged: list[str] = []
    submodules: list[str] = []
    tokens = iter(proc.stdout.split(b"\0"))
    for tok in tokens:
        if not tok.startswith(b":"):
            continue
        path = next(tokens, b"").decode("utf-8", "surrogateescape")
        fields = tok[1:].split(b" ")
        if len(fields) < 5:
            continue
        mode, oid, status = fields[1], fields[3].decode(), fields[4][:1]
        if status == b"D" or (options.paths is not None and path not in options.paths):
            continue
        if status == b"U" or set(oid) == {"0"}:
            unmerged.append(path)
            continue
        if mode == b"160000":
            submodules.append(path)
            continue
        if _excluded(path, options.excludes):
            continue
        entries.append((oid, path))
    detector = Detector(rules)
    hits: list[Hit] = []
    for oid, path in entries:
        hits.extend(name_hits(detector, path, Location(
            path=path, line=0, column=0, offset=0, source="staged", blob=oid)))  # fmt: skip
    for path in unmerged:
        result.warnings.append(f"{path}: unmerged, not scanned (resolve the conflict first)")
    for path in submodules:
        result.warnings.append(f"submodule {path} not entered: scan its repository separately")
    paths: dict[str, list[str]] = {}
    for oid, path in entries:
        paths.setdefault(oid, []).append(path)
    blobs = 0
    for oid, kind, data in ObjectReader(repo).read(list(paths)):
        if kind == "error":
            result.errors.append(ScanError(oid, data.decode("utf-8", "replace")))
            continue
        blobs += 1
        result.bytes += len(data)
        # The content layer reads the name of notebooks (cells); other paths are set below.
        named = next((p for p in paths.get(oid, []) if p.lower().endswith(".ipynb")), "")
        problems: list[ScanError] = []
        found = scan_buffer(detector, data, Location(
            path=named, line=0, column=0, offset=0, source="staged", blob=oid,
            binary=is_binary(data)), options.content, errors=problems)  # fmt: skip
        staged_as = paths.get(oid, [named])[0]
        result.errors.extend(ScanError(f"{staged_as}{e.where[len(named):]}", e.message)
                             for e in problems)  # fmt: skip
        for path in paths.get(oid, []):
            for h in found:
                loc = Location(**{**h.location.__dict__, "extra": dict(h.location.extra)})
                loc.path = path  # an archive member's chain stays in loc.member
                hits.append(Hit(h.rule_id, h.description, h.family, h.confidence, h.secret, loc))
    result.files = len(entries)
    result.findings = aggregate(hits)
    result.stats.update(staged_files=len(entries), blobs=blobs, bytes=result.bytes, head=head)


def _empty_tree(repo: GitRepo) -> str:
    proc = repo.run("hash-object", "-t", "tree", "--stdin", input=b"", check=False)
    out = lines_of(proc.stdout)
    return out[0] if out else EMPTY_TREE_SHA1
