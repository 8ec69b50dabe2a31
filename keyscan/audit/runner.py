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
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keyscan.git.remote import is_url, public_target
from keyscan.models import CommitInfo, Finding, Rule

if TYPE_CHECKING:
    from keyscan.git.plumbing import GitRepo


def normalize_target(target: str) -> str:
    """The name under which a repository is stored: a URL as given, a path made absolute."""
    target = target.strip()
    if is_url(target):
        return target.rstrip("/")
    return os.path.realpath(os.path.expanduser(target))


def redact_repo_result(result: RepoResult, rules: Sequence[Rule]) -> None:
    """The one metadata redaction step (keyscan.redaction) over what goes to the store."""
    from keyscan.redaction import Redactor

    redactor = Redactor(rules)
    result.target = redactor.text(result.target)
    result.errors = [redactor.text(e) for e in result.errors]
    result.warnings = [redactor.text(w) for w in result.warnings]
    for f in result.findings:
        redactor.finding(f)
    for state in result.key_states.values():
        state.head_paths = [redactor.text(p) for p in state.head_paths]
        state.removed_by = redactor.commit(state.removed_by)
    result.stats = redactor.value(result.stats)


@dataclass(frozen=True)
class AuditTask:
    """Everything a worker needs to scan one repository. Picklable."""

    target: str
    rules: tuple[Rule, ...]
    # Keyword arguments for keyscan.git.options.GitScanOptions (unknown names are ignored).
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


def _git_options(task: AuditTask, exclude: Sequence[str]) -> Any:
    from keyscan.git.options import GitScanOptions

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
    """Scan one repository (cloning it first if it is a URL). Never raises.

    Every git command goes through ``keyscan.git`` (safe configuration and environment, a
    deadline, clones limited to https/http/ssh/git/file): this module runs none itself."""
    from keyscan.git.plumbing import GitError, discover
    from keyscan.git.remote import clone

    started = time.perf_counter()
    shown = public_target(task.target)
    result = RepoResult(target=shown, status="ok", started_at=_now())
    tmp: str | None = None
    path = task.target
    try:
        if is_url(task.target):
            tmp = tempfile.mkdtemp(prefix="keyscan-audit-")
            path = os.path.join(tmp, "repo.git")
            clone(task.target, path, batch=True)
        elif not os.path.exists(path):
            raise GitError(path, "no such file or directory")
        _scan_local(task, discover(path), path, result)
    except GitError as exc:
        result.status = "error"
        # The target is already on the error line: no need to say it twice.
        same = exc.where in (task.target, path)
        result.errors.append((exc.message if same else str(exc)) or "git failed")
    except OSError as exc:  # cannot start git, no more processes, disk full...
        result.status = "error"
        result.errors.append(f"cannot run git: {exc.strerror or exc}")
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
    redact_repo_result(result, task.rules)
    result.duration = time.perf_counter() - started
    return result


def _scan_local(task: AuditTask, repo: GitRepo, path: str, result: RepoResult) -> None:
    from keyscan.git.history import scan_repository
    from keyscan.git.provenance import head_blobs, removals
    from keyscan.git.scope import count_commits, existing_commits, repo_heads

    heads, head = repo_heads(repo)
    result.heads, result.head = heads, head
    # Commits seen before may be gone (a deleted branch, a rewritten history, a fresh clone
    # that no longer carries them): exclude only those that still exist.
    exclude = existing_commits(repo, [c for c in task.exclude_commits if c])
    result.commits_scanned = count_commits(repo, heads, exclude)
    result.commits_skipped = count_commits(repo, exclude, []) if exclude else 0
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
    at_head = head_blobs(repo, set().union(*blobs_by_key.values())) if head else {}
    gone: dict[str, set[str]] = {}
    for fp, blobs in blobs_by_key.items():
        paths = sorted({p for b in blobs for p in at_head.get(b, [])})
        result.key_states[fp] = KeyState(fp, bool(paths), paths)
        if not paths:
            gone[fp] = blobs
    for fp in message_only:
        result.key_states[fp] = KeyState(fp, None)
    if head:
        for fp, commit in removals(repo, gone, exclude).items():
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
        # Wait for the pool's manager thread too (its workers are gone: it ends at once). Left
        # running, it closes its wake-up pipe while the interpreter's exit writes to that pipe
        # without the pool's lock (concurrent.futures.process._python_exit): a traceback
        # after the run's one line, or a byte written to a reused descriptor.
        pool.shutdown(wait=True, cancel_futures=True)
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
