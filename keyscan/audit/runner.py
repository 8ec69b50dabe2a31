"""The per-repository scan of an audit: a plain, picklable function ``scan_one(task) -> result``.

Because it is a plain function of picklable values, the same scan runs in-process, in a pool
of worker processes (``--jobs``) or on a Dask cluster (``--scheduler``, see
``keyscan.audit.dask``). It never raises: a repository that cannot be scanned (unreachable
URL, corrupt repository, not a repository) comes back as a result with ``status="error"``,
so that the other repositories go on.

Besides the findings, a result says which commits were the tips of the repository when the
scan began (the next audit skips everything reachable from them), how many commits were
scanned and skipped, and, for every key known in the repository, whether a blob holding it is
still in HEAD's tree and, if not, which commit removed it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from keyscan.models import CommitInfo, Finding, Rule

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^[\w.-]+@[\w.-]+:")


def is_url(target: str) -> bool:
    return bool(_URL.match(target))


def normalize_target(target: str) -> str:
    """The name under which a repository is stored: a URL as given, a path made absolute."""
    target = target.strip()
    if is_url(target):
        return target.rstrip("/")
    return os.path.realpath(os.path.expanduser(target))


def public_target(target: str) -> str:
    """The name under which a repository is stored and shown: credentials in a URL (a token
    as user name or a password) are replaced by ``***``."""
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/@]*)@(.*)$", target)
    if not m:
        return target
    scheme, userinfo, rest = m.groups()
    user, sep, _ = userinfo.partition(":")
    if scheme.lower().startswith(("http", "ftp")) or sep:
        shown = "***" if not sep or scheme.lower().startswith(("http", "ftp")) else f"{user}:***"
        return f"{scheme}{shown}@{rest}"
    return target


@dataclass(frozen=True)
class AuditTask:
    """Everything a worker needs to scan one repository. Picklable."""

    target: str
    rules: tuple[Rule, ...]
    # Keyword arguments for keyscan.sources.git.GitScanOptions (unknown names are ignored).
    git_options: tuple[tuple[str, Any], ...] = ()
    # Skip everything reachable from these commits (the tips seen by earlier audits).
    exclude_commits: tuple[str, ...] = ()
    # (fingerprint, blob id) of keys the store already knows in this repository, so that
    # "still at HEAD?" and "removed by" are answered for them too.
    known_blobs: tuple[tuple[str, str], ...] = ()
    # Raw keys travel back only when they are needed (--verify); otherwise they are blanked
    # in the worker, before the result is pickled.
    keep_secrets: bool = False


@dataclass
class KeyState:
    """Where a key stands in one repository after a scan."""

    fingerprint: str
    present_at_head: bool | None  # None: only in commit messages / no blob to check
    head_paths: list[str] = field(default_factory=list)
    removed_by: CommitInfo | None = None


@dataclass
class RepoResult:
    target: str
    status: str  # ok | partial | error
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    objects: int = 0
    bytes: int = 0
    duration: float = 0.0
    started_at: str = ""
    heads: list[str] = field(default_factory=list)
    head: str | None = None
    commits_scanned: int = 0
    commits_skipped: int = 0
    key_states: dict[str, KeyState] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


class GitError(Exception):
    pass


def _git(
    repo: str | None, *args: str, check: bool = True, timeout: float = 3600, group: bool = False
) -> str:
    cmd = ["git"]
    if repo is not None:
        cmd += ["-C", repo]
    env = dict(os.environ)
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_SSH_COMMAND=env.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
        LC_ALL="C",
    )
    if group:  # a clone: killed with its helpers if interrupted, before its folder goes
        from keyscan.sources.gitobjects import run_group

        proc = run_group([*cmd, *args], env, timeout)
    else:
        proc = subprocess.run(
            [*cmd, *args],
            capture_output=True,
            env=env,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    if check and proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        why = lines[-1] if lines else f"git {args[0]} exited {proc.returncode}"
        raise GitError(why.removeprefix("fatal: ").removeprefix("error: "))
    return proc.stdout.decode("utf-8", "surrogateescape")


def repo_heads(repo: str) -> tuple[list[str], str | None]:
    """(commit ids at the tips of every ref plus HEAD, HEAD's commit or None)."""
    out = _git(
        repo,
        "for-each-ref",
        "--format=%(objecttype) %(objectname) %(*objecttype) %(*objectname)",
    )
    heads: set[str] = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "commit":
            heads.add(parts[1])
        elif len(parts) >= 4 and parts[2] == "commit":
            heads.add(parts[3])
    head = _git(repo, "rev-parse", "-q", "--verify", "HEAD^{commit}", check=False).strip()
    if head:
        heads.add(head)
    return sorted(heads), (head or None)


def existing_commits(repo: str, shas: Sequence[str]) -> list[str]:
    if not shas:
        return []
    proc = subprocess.run(
        ["git", "-C", repo, "cat-file", "--batch-check=%(objectname) %(objecttype)"],
        input="".join(f"{s}\n" for s in shas).encode(),
        capture_output=True,
        env=dict(os.environ, LC_ALL="C", GIT_TERMINAL_PROMPT="0"),
        timeout=600,
    )
    found = []
    for line in proc.stdout.decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == "commit":
            found.append(parts[0])
    return found


def _count(repo: str, include: Sequence[str], exclude: Sequence[str]) -> int:
    if not include:
        return 0
    args = ["rev-list", "--count", "--ignore-missing", *include]
    if exclude:
        args += ["--not", *exclude]
    out = _git(repo, *args, check=False).strip()
    return int(out) if out.isdigit() else 0


def _head_blobs(repo: str, wanted: set[str]) -> dict[str, list[str]]:
    """blob id -> paths in HEAD's tree, for the blobs in ``wanted``."""
    if not wanted:
        return {}
    out = _git(repo, "ls-tree", "-r", "-z", "--full-tree", "HEAD", check=False)
    found: dict[str, list[str]] = {}
    for entry in out.split("\0"):
        meta, _, path = entry.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob" and parts[2] in wanted:
            found.setdefault(parts[2], []).append(path)
    return found


def _removals(
    repo: str, blobs_by_key: dict[str, set[str]], exclude: Sequence[str]
) -> dict[str, CommitInfo]:
    """For each key, the newest commit on HEAD's history that replaced or deleted a blob
    holding it with one that does not (only commits not reachable from ``exclude``)."""
    if not blobs_by_key:
        return {}
    args = [
        "log",
        "HEAD",
        "--no-renames",
        "--raw",
        "--no-abbrev",
        "--format=@@%H%x1f%an%x1f%ae%x1f%aI%x1f%s",
    ]
    if exclude:
        args += ["--not", *exclude]
    out = _git(repo, *args, check=False)
    owners: dict[str, set[str]] = {}
    for fp, blobs in blobs_by_key.items():
        for b in blobs:
            owners.setdefault(b, set()).add(fp)
    removed: dict[str, CommitInfo] = {}
    commit: CommitInfo | None = None
    for line in out.splitlines():
        if line.startswith("@@"):
            sha, name, email, date, subject = (line[2:].split("\x1f") + [""] * 5)[:5]
            commit = CommitInfo(sha, name, email, date, subject)
        elif line.startswith(":") and commit is not None:
            parts = line.split("\t", 1)[0].split()
            if len(parts) < 4:
                continue
            old, new = parts[2], parts[3]
            for fp in owners.get(old, ()):
                if fp not in removed and new not in blobs_by_key[fp]:
                    removed[fp] = commit
    return removed


def _git_options(task: AuditTask, exclude: Sequence[str]) -> Any:
    from keyscan.sources.git import GitScanOptions

    known = {f.name for f in dataclasses.fields(GitScanOptions)}
    kwargs = {k: v for k, v in task.git_options if k in known}
    if "exclude_commits" in known:
        kwargs["exclude_commits"] = list(exclude)
    # Parallelism is across repositories: one process per repository scan.
    if "jobs" in known:
        kwargs["jobs"] = 1
    return GitScanOptions(**kwargs)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def scan_one(task: AuditTask) -> RepoResult:
    """Scan one repository (cloning it first if it is a URL). Never raises."""
    started = time.perf_counter()
    shown = public_target(task.target)
    result = RepoResult(target=shown, status="ok", started_at=_now())
    tmp: str | None = None
    try:
        path = task.target
        if is_url(task.target):
            tmp = tempfile.mkdtemp(prefix="keyscan-audit-")
            path = os.path.join(tmp, "repo.git")
            _git(None, "-c", "protocol.ext.allow=never", "clone", "--mirror", "--quiet", "--",
                 task.target, path, group=True)
        elif not os.path.exists(path):
            raise GitError("no such file or directory")
        _git(path, "rev-parse", "--git-dir")
        _scan_local(task, path, result)
    except GitError as exc:
        result.status = "error"
        result.errors.append(str(exc) or "git failed")
    except subprocess.TimeoutExpired:
        result.status = "error"
        result.errors.append("git timed out")
    except Exception as exc:  # a bug or an unexpected failure: report it, let others go on
        result.status = "error"
        result.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if shown != task.target:
        result.errors = [e.replace(task.target, shown) for e in result.errors]
        result.warnings = [w.replace(task.target, shown) for w in result.warnings]
    if not task.keep_secrets:
        for f in result.findings:
            f.secret = ""
    result.duration = time.perf_counter() - started
    return result


def _scan_local(task: AuditTask, path: str, result: RepoResult) -> None:
    from keyscan.sources.git import scan_repository

    heads, head = repo_heads(path)
    result.heads, result.head = heads, head
    # Commits seen before may be gone (a deleted branch, a rewritten history, a fresh clone
    # that no longer carries them): exclude only those that still exist.
    exclude = existing_commits(path, [c for c in task.exclude_commits if c])
    result.commits_scanned = _count(path, heads, exclude)
    result.commits_skipped = _count(path, exclude, []) if exclude else 0
    scanned = scan_repository(path, _git_options(task, exclude), list(task.rules))
    result.findings = list(scanned.findings)
    result.warnings = list(scanned.warnings)
    result.errors = [str(e) for e in scanned.errors]
    if result.errors:
        result.status = "partial"
    result.stats = {k: v for k, v in scanned.stats.items() if _jsonable(v)}
    result.objects = int(scanned.stats.get("blobs", scanned.files) or 0)
    result.bytes = scanned.bytes
    # Where does each key stand at HEAD? Known blobs from earlier audits + this scan's.
    blobs_by_key: dict[str, set[str]] = {}
    message_only: set[str] = set()
    for fp, blob in task.known_blobs:
        blobs_by_key.setdefault(fp, set()).add(blob)
    for f in result.findings:
        blobs = {loc.blob for loc in f.locations if loc.blob}
        if blobs:
            blobs_by_key.setdefault(f.fingerprint, set()).update(blobs)
        elif f.fingerprint not in blobs_by_key:
            message_only.add(f.fingerprint)
    at_head = _head_blobs(path, set().union(*blobs_by_key.values())) if head else {}
    gone: dict[str, set[str]] = {}
    for fp, blobs in blobs_by_key.items():
        paths = sorted({p for b in blobs for p in at_head.get(b, [])})
        result.key_states[fp] = KeyState(fp, bool(paths), paths)
        if not paths:
            gone[fp] = blobs
    for fp in message_only:
        result.key_states[fp] = KeyState(fp, None)
    if head:
        for fp, commit in _removals(path, gone, exclude).items():
            result.key_states[fp].removed_by = commit


def _jsonable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, list, dict, type(None)))


def run_local(
    tasks: Sequence[AuditTask], jobs: int, on_ready: Callable[[], None] | None = None
) -> Iterator[RepoResult]:
    """Results as they complete: in this process for one job, else in a process pool.

    ``on_ready`` is called once every worker process exists: the coordinator starts threads
    (the progress clock) only then, so that no process is forked while they run.
    """
    if jobs <= 1 or len(tasks) <= 1:
        if on_ready:
            on_ready()
        for task in tasks:
            yield scan_one(task)
        return
    import concurrent.futures as cf
    import multiprocessing

    from keyscan.interrupts import cleanup_worker_signals, run_in_worker

    # "fork" is cheap (no re-import per worker) and safe here: the coordinator runs no thread
    # and holds no store transaction while the pool starts its workers.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    context = multiprocessing.get_context(method)
    # Workers ignore Ctrl-C; if this process is interrupted (or stops reading), they are
    # terminated: each removes its temporary clone and exits (keyscan.interrupts).
    pool = cf.ProcessPoolExecutor(
        max_workers=min(jobs, len(tasks)), mp_context=context, initializer=cleanup_worker_signals
    )
    try:
        futures = {pool.submit(run_in_worker, scan_one, t): t for t in tasks}
        if on_ready:
            on_ready()
        for fut in cf.as_completed(futures):
            try:
                yield fut.result()
            except Exception as exc:  # the worker process died (killed, out of memory)
                task = futures[fut]
                yield RepoResult(
                    target=public_target(task.target),
                    status="error",
                    errors=[f"worker failed: {type(exc).__name__}: {exc}"],
                )
    except BaseException:
        _terminate_workers(pool)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _terminate_workers(pool: Any, grace: float = 10.0) -> None:
    """SIGTERM every worker of a ProcessPoolExecutor, give them ``grace`` seconds to clean up
    (a temporary clone to remove), then SIGKILL those left."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join(1)


def unique_by_fingerprint(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per key across repositories (for --verify: each key checked once)."""
    seen: dict[str, Finding] = {}
    for f in findings:
        if f.fingerprint not in seen and f.secret:
            seen[f.fingerprint] = f
    return list(seen.values())
