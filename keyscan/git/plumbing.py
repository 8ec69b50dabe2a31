"""Safe git plumbing: the ONE module of keyscan that starts git (or any process). It builds
git command lines and streams object contents.

Nothing here runs code from the repository being scanned:

* ``GIT_CONFIG_NOSYSTEM=1``, ``GIT_TERMINAL_PROMPT=0``, no pager, no replace objects;
* ``-c core.fsmonitor=false -c core.hooksPath=/dev/null`` and friends on every command, so a
  planted fsmonitor or hook in the scanned repository's config never runs;
* only plumbing that runs no hooks (rev-list, cat-file, log --raw, ls-tree, diff-index,
  for-each-ref, rev-parse); ``cat-file`` without ``--textconv``/``--filters``, ``log`` with
  ``--no-textconv --no-ext-diff`` and signatures off (no gpg).

Nothing the caller's environment says redirects git either: ``GIT_DIR``, ``GIT_WORK_TREE``,
``GIT_OBJECT_DIRECTORY``, ``GIT_CONFIG_COUNT``/``KEY_n``/``VALUE_n`` and friends (set inside every
git hook) are dropped; ``GIT_INDEX_FILE`` is kept only for the staged scan, when asked.

No git command can hang keyscan: every one runs under a watchdog that kills it (and its
children) once it has made no progress (no output read, no CPU used) for ``git_timeout()``
seconds while keyscan waits on it: a FIFO under ``.git`` (a config include, ``packed-refs``,
``objects/info/alternates``, ``shallow``) or a hung mount. ``KEYSCAN_GIT_TIMEOUT`` sets it.

Objects are read through one persistent ``git cat-file --batch`` per worker, fed object ids
by a writer thread; memory is bounded by the largest object.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import threading
import weakref
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import IO, Any, NamedTuple, TypeVar, cast

from keyscan.errors import KeyscanError
from keyscan.records import dataclass

# Overrides on every git command line: the scanned repository's config cannot make git run a
# program (fsmonitor, hooks, gpg, external diff, textconv) or ask a question.
SAFE_CONFIG: tuple[str, ...] = (
    "-c", "core.fsmonitor=false",
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.untrackedCache=false",
    "-c", "core.splitIndex=false",
    "-c", "core.pager=cat",
    "-c", "core.askPass=",
    "-c", "credential.helper=",
    "-c", "diff.external=",
    "-c", "log.showSignature=false",
    "-c", "protocol.ext.allow=never",
    "-c", "gc.auto=0",
    "-c", "maintenance.auto=false",
)  # fmt: skip

# How git reads objects, for speed (never safety): a delta base cache of 256 MiB instead of
# git's 96 MiB. A history's objects are mostly deltas whose bases are reconstructed again
# once evicted; with the larger cache git's own floor (cat-file of every object) took
# 4.17 -> 3.25 s on sqlalchemy and 7.28 -> 6.88 s on numpy (README "Performance"); 512 MiB
# and more gained little and grew each process. A bound, not an allocation: small jobs
# never fill it.
READ_CONFIG: tuple[str, ...] = ("-c", "core.deltaBaseCacheLimit=256m")

# Variables of the caller's environment that would point git at another repository, object
# store or index, add configuration, or run a program. They are set inside every git hook
# (GIT_DIR, GIT_INDEX_FILE, GIT_OBJECT_DIRECTORY in a quarantine...): a scan must not follow.
_DROP_ENV = frozenset({
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_COMMON_DIR",
    "GIT_INDEX_FILE",  # kept only for the staged scan of its own repository (git_env)
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_QUARANTINE_PATH",
    "GIT_SHALLOW_FILE",
    "GIT_GRAFT_FILE",
    "GIT_NAMESPACE",
    "GIT_REPLACE_REF_BASE",
    "GIT_ATTR_SOURCE",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_ALLOW_PROTOCOL",  # clone() sets its own allow-list
    "GIT_EXTERNAL_DIFF",
    "GIT_PAGER",
    "GIT_ASKPASS",
    "GIT_SSH_COMMAND_UNSAFE",
    "GIT_EDITOR",
    "GIT_SEQUENCE_EDITOR",
    # How git reads pathspecs: keyscan's own (``:(literal)`` names) mean what they say.
    "GIT_LITERAL_PATHSPECS",
    "GIT_GLOB_PATHSPECS",
    "GIT_NOGLOB_PATHSPECS",
    "GIT_ICASE_PATHSPECS",
})  # fmt: skip
_DROP_ENV_PREFIXES = ("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_")

# For the stdin of ``GitRepo.popen``: a pipe keyscan writes to (callers need no subprocess).
PIPE = subprocess.PIPE

# How long a git command may make no progress while keyscan waits on it (seconds).
DEFAULT_GIT_TIMEOUT = 600.0
TIMEOUT_ENV = "KEYSCAN_GIT_TIMEOUT"

NULL_OID_CHARS = frozenset("0")

# Long-running git processes started by GitRepo.popen, so that an interrupted run can stop
# those no ``finally`` block stopped (a history walk in a helper thread): kill_running().
_RUNNING: weakref.WeakSet[subprocess.Popen[bytes]] = weakref.WeakSet()


def kill_running() -> None:
    """Kill (and reap) every git process started by ``GitRepo.popen`` that still runs."""
    for proc in list(_RUNNING):
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


class GitError(KeyscanError):
    """A git command failed. ``where`` names the repository, revision or object."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (worker processes)
        return (type(self), (self.where, self.message))


class GitTimeout(GitError):
    """A git command made no progress within the deadline and was killed. Not an error of one
    object: the scan of this repository stops."""


def git_timeout() -> float:
    """Seconds a git command may go without progress: ``KEYSCAN_GIT_TIMEOUT`` or 600."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_GIT_TIMEOUT
    except ValueError:
        value = DEFAULT_GIT_TIMEOUT
    return value if value > 0 else DEFAULT_GIT_TIMEOUT


def own_index(index: str, git_dir: str, cwd: str) -> bool:
    """Whether a ``GIT_INDEX_FILE`` may be this repository's: a file in its git dir (git
    commit's ``index.lock``, ``next-index-*.lock``) or anywhere that is not another
    repository's git dir. A hook of one repository that runs keyscan on another passes its
    own index along: that index names objects of the other repository."""
    folder = os.path.dirname(os.path.realpath(os.path.join(cwd, index)))
    if folder == os.path.realpath(git_dir):
        return True
    head = os.path.join(folder, "HEAD")
    other_repo = os.path.isfile(head) and (
        os.path.isdir(os.path.join(folder, "objects"))
        or os.path.isfile(os.path.join(folder, "commondir"))
    )
    return not other_repo


# git's quarantine during a pre-receive hook: the pushed objects live in a temporary object
# directory that git names only through these variables. Kept for ``keyscan hook
# pre-receive`` alone (``keep_quarantine``); every other command drops them.
QUARANTINE_ENV = ("GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH")
_quarantine: dict[str, str] = {}


def keep_quarantine(env: dict[str, str]) -> dict[str, str]:
    """Keep git's quarantine variables of ``env`` (the pre-receive hook's own environment)
    on every later git command of this process (and of its forked workers). Returns them."""
    _quarantine.clear()
    _quarantine.update({k: env[k] for k in QUARANTINE_ENV if env.get(k)})
    return dict(_quarantine)


def git_env(
    keep_index: bool = False, git_dir: str | None = None, cwd: str | None = None
) -> dict[str, str]:
    """The environment of every git command: the caller's, minus whatever redirects git or
    runs a program, plus safe settings. ``keep_index``: keep ``GIT_INDEX_FILE`` (the staged
    scan in a hook), unless it is another repository's index (``own_index``)."""
    index = os.environ.get("GIT_INDEX_FILE") if keep_index else None
    if index is not None and git_dir is not None and not own_index(index, git_dir, cwd or "."):
        index = None
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _DROP_ENV and not k.startswith(_DROP_ENV_PREFIXES)
    }
    if index is not None:
        env["GIT_INDEX_FILE"] = index
    env.update(_quarantine)
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_NO_REPLACE_OBJECTS="1",
        GIT_OPTIONAL_LOCKS="0",
        GIT_NO_LAZY_FETCH="1",  # a partial clone must not reach the network while scanned
        GIT_PAGER="cat",
        PAGER="cat",
        LC_ALL="C",
    )
    return env


class Watchdog:
    """Kills a git process (with its children) that makes no progress while keyscan waits on
    it: a deadline on being stuck, never a cap on total time.

    Progress is any read answered (``enter``/``leave`` around each blocking call), CPU used by
    the process tree (``/proc``, on Linux) or ``extra_progress`` changing (a growing stderr
    log). Time is counted only while a call is waiting and ``busy()`` says git has something
    to do: a slow consumer (scanning a large blob) never looks like a stuck git."""

    def __init__(
        self,
        what: str,
        where: str,
        procs: Sequence[subprocess.Popen[bytes]],
        timeout: float | None = None,
        extra_progress: Callable[[], int] | None = None,
        thread: bool = True,
    ) -> None:
        """``thread=False``: no thread of its own; the reader calls :meth:`tick` every
        ``interval`` seconds it waits (``_read_to_end``: a small job's git command then
        costs no thread start, several milliseconds on a loaded machine)."""
        self.what = what
        self.where = where
        self.procs = list(procs)
        self.timeout = git_timeout() if timeout is None else timeout
        self.interval = max(0.05, min(1.0, self.timeout / 4))
        self.extra_progress = extra_progress
        self.busy: Callable[[], bool] | None = None
        self.waiting = 0  # blocking calls in progress (one thread uses a watchdog)
        self.progress = 0  # blocking calls answered
        self.fired = False
        self._idle = 0.0
        self._last: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if thread:
            self._thread = threading.Thread(
                target=self._run, daemon=True, name="keyscan-git-watch"
            )
            self._thread.start()

    def enter(self) -> None:
        self.waiting += 1

    def leave(self) -> None:
        self.waiting -= 1
        self.progress += 1

    def stop(self) -> None:
        """Stop watching; the watchdog's thread, if any, has ended when this returns (no
        thread outlives its git command: a worker pool forked next forks one thread)."""
        self._stop.set()
        watch = self._thread
        if watch is not None and watch is not threading.current_thread():
            watch.join()

    def error(self) -> GitTimeout:
        return GitTimeout(
            self.where,
            f"git {self.what} made no progress for {self.timeout:g} s and was stopped "
            f"(a FIFO or a hung file system in the repository?); {TIMEOUT_ENV} sets the limit",
        )

    def check(self) -> None:
        if self.fired:
            raise self.error()

    def _mark(self) -> tuple[int, int, int]:
        cpu = sum(_tree_cpu(p.pid) for p in self.procs if p.poll() is None)
        extra = self.extra_progress() if self.extra_progress is not None else 0
        return self.progress, cpu, extra

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.tick():
                return

    def tick(self) -> bool:
        """One look, ``interval`` seconds after the last: git is killed once it has made no
        progress for ``timeout`` seconds while waited on. True: nothing left to watch (every
        process ended, or the watchdog fired)."""
        if all(p.poll() is not None for p in self.procs):
            return True
        try:
            mark = self._mark()
        except OSError:  # pragma: no cover - a process vanished between two reads
            return False
        waiting = self.waiting > 0 and (self.busy is None or self.busy())
        if not waiting or mark != self._last:
            self._idle, self._last = 0.0, mark
            return False
        self._idle += self.interval
        if self._idle >= self.timeout:
            self.fired = True
            for p in self.procs:
                _kill_tree(p.pid)
            return True
        return False


def _children(pid: int) -> list[int]:
    """Direct children of a process (Linux ``/proc``; empty elsewhere)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                found.extend(int(x) for x in fh.read().split())
        except (OSError, ValueError):
            pass
    return found


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo and len(out) < 1000:
        for child in _children(todo.pop()):
            if child not in out:
                out.append(child)
                todo.append(child)
    return out


def _cpu(pid: int) -> int:
    """User + system CPU ticks of a process (0 when unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def _tree_cpu(pid: int) -> int:
    return sum(_cpu(p) for p in [pid, *_descendants(pid)])


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and its descendants (a clone's upload-pack stuck on a FIFO too)."""
    for target in [*reversed(_descendants(pid)), pid]:
        with contextlib.suppress(OSError):
            os.kill(target, signal.SIGKILL)


_T = TypeVar("_T")


class _Watched:
    """A process's stdout whose blocking reads the watchdog times; after the watchdog killed
    git, a read raises GitTimeout instead of returning a short answer."""

    def __init__(self, raw: IO[bytes], watchdog: Watchdog) -> None:
        self.raw = raw
        self.watchdog = watchdog

    def _timed(self, read: Callable[[int], _T], arg: int) -> _T:
        """One blocking read, timed by the watchdog."""
        wd = self.watchdog
        wd.enter()
        try:
            out = read(arg)
        finally:
            wd.leave()
        wd.check()
        return out

    def read(self, size: int = -1) -> bytes:
        return self._timed(self.raw.read, size)

    def readline(self, size: int = -1) -> bytes:
        return self._timed(self.raw.readline, size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return self._timed(self.raw.readlines, hint)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def fileno(self) -> int:
        return self.raw.fileno()

    def close(self) -> None:
        self.raw.close()

    @property
    def closed(self) -> bool:
        return self.raw.closed


class GitProcess(subprocess.Popen[bytes]):
    """A git process under a watchdog (see ``GitRepo.popen``). Waited on, it has ended:
    its watchdog is stopped too."""

    watchdog: Watchdog

    def wait(self, timeout: float | None = None) -> int:
        code = super().wait(timeout)
        watchdog = getattr(self, "watchdog", None)  # set just after the process starts
        if watchdog is not None:
            watchdog.stop()
        return code

    def send(self, data: bytes) -> None:
        """Write ``data`` to git's stdin and close it; a write blocked on a stuck git is
        timed like a read (GitTimeout)."""
        wd = self.watchdog
        wd.enter()
        try:
            _feed(self.stdin, data)
        finally:
            wd.leave()
        wd.check()


def _start(
    argv: list[str],
    what: str,
    where: str,
    *,
    cwd: str,
    env: dict[str, str],
    stdin: int | IO[bytes] | None,
    stderr: int | IO[bytes],
    also: Sequence[subprocess.Popen[bytes]] = (),
    extra_progress: Callable[[], int] | None = None,
    group: bool = False,
    watch_thread: bool = True,
) -> GitProcess:
    proc = GitProcess(
        argv,
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        cwd=cwd,
        env=env,
        bufsize=1024 * 1024,
        start_new_session=group,
    )
    _RUNNING.add(proc)
    assert proc.stdout is not None
    _grow_pipe(proc.stdout.fileno())
    proc.watchdog = Watchdog(
        what, where, [proc, *also], extra_progress=extra_progress, thread=watch_thread
    )
    proc.stdout = cast(IO[bytes], _Watched(proc.stdout, proc.watchdog))
    return proc


# Where poll() waits on a pipe (POSIX), run_git's watchdog needs no thread.
_POLL = hasattr(select, "poll")


def _read_to_end(raw: IO[bytes], wd: Watchdog) -> bytes:
    """All of a git process's stdout (nothing read from ``raw`` before), the watchdog
    looking in this thread whenever a wait lasts ``wd.interval``: the same deadline on being
    stuck as its thread keeps, without starting one."""
    fd = raw.fileno()
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    chunks: list[bytes] = []
    wd.enter()
    try:
        while True:
            if not poller.poll(wd.interval * 1000):
                wd.tick()  # stuck too long: git is killed, its pipe ends
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            wd.progress += 1
    finally:
        wd.leave()
    wd.check()
    return b"".join(chunks)


def run_git(
    argv: list[str],
    what: str,
    where: str,
    *,
    cwd: str,
    env: dict[str, str],
    input: bytes | None = None,
    check: bool = True,
    group: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    """Run one git command line under the watchdog; stderr goes to a file (never blocks).

    ``group``: git runs in a process group of its own (a clone into a temporary folder); if
    this process is interrupted, the whole group (git, its transport helpers, index-pack) is
    killed and reaped before the exception goes on, so nothing writes into the folder while
    the caller removes it."""
    with _scratch_file() as errlog:
        err_fd = errlog.fileno()
        proc = _start(
            argv, what, where, cwd=cwd, env=env,
            stdin=subprocess.PIPE if input is not None else None, stderr=errlog,
            extra_progress=lambda: os.fstat(err_fd).st_size, group=group,
            watch_thread=not _POLL,
        )  # fmt: skip
        feeder: threading.Thread | None = None
        if input is not None:
            feeder = threading.Thread(target=_feed, args=(proc.stdin, input), daemon=True)
            feeder.start()
        assert proc.stdout is not None
        try:
            if _POLL:
                out = _read_to_end(cast(_Watched, proc.stdout).raw, proc.watchdog)
            else:
                out = proc.stdout.read()
        except BaseException:  # interrupted (or the watchdog fired): stop git before waiting
            if group:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
            else:
                _kill_tree(proc.pid)
            raise
        finally:
            proc.stdout.close()
            if feeder is not None:
                feeder.join()
            code = proc.wait()
            proc.watchdog.stop()
        errlog.seek(0)
        err = errlog.read()
    if check and code != 0:
        raise GitError(what, last_line(err) or f"git {what} failed")
    return subprocess.CompletedProcess(argv, code, out, err)


def _scratch_file(name: str = "keyscan-git-stderr") -> IO[bytes]:
    """An anonymous read-write file (git's stderr): a memfd on Linux, which spares the hook
    path the import of tempfile (and with it shutil, bz2, lzma and random)."""
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None:
        try:
            return os.fdopen(memfd(name, os.MFD_CLOEXEC), "w+b")
        except OSError:
            pass
    import tempfile

    return tempfile.TemporaryFile()


class Started:
    """A git command that runs beside keyscan (``GitRepo.start``) and is asked for its
    answer later (``result``): its input, output and errors are anonymous files, not
    pipes, so it needs no thread to feed or drain it, and a worker pool may fork while it
    runs (a worker holds no pipe end that could keep git waiting). Its watchdog looks while
    ``result`` waits: git's CPU and its output's growth are progress."""

    def __init__(
        self, argv: list[str], what: str, where: str, *, cwd: str, env: dict[str, str],
        input: bytes,
    ) -> None:  # fmt: skip
        self._out = _scratch_file("keyscan-git-out")
        self._err = _scratch_file()
        try:
            with _scratch_file("keyscan-git-in") as feed:
                feed.write(input)
                feed.seek(0)
                self.proc = GitProcess(
                    argv, stdin=feed, stdout=self._out, stderr=self._err, cwd=cwd, env=env
                )
        except BaseException:
            self._out.close()
            self._err.close()
            raise
        _RUNNING.add(self.proc)
        out, err = self._out.fileno(), self._err.fileno()
        self.proc.watchdog = Watchdog(
            what, where, [self.proc], thread=False,
            extra_progress=lambda: os.fstat(out).st_size + os.fstat(err).st_size,
        )  # fmt: skip

    def ended(self) -> bool:
        """Whether git has ended (``result`` would not wait)."""
        return self.proc.poll() is not None

    def result(self) -> subprocess.CompletedProcess[bytes]:
        """Wait for git to end (stopped by the watchdog if it makes no progress for the
        timeout: GitTimeout); its exit status, output and errors. Not checked: the caller
        reads the status."""
        wd = self.proc.watchdog
        wd.enter()
        try:
            while True:
                try:
                    code = self.proc.wait(wd.interval)
                    break
                except subprocess.TimeoutExpired:
                    wd.tick()  # stuck too long: git is killed, the next wait returns
        except BaseException:  # interrupted: stop git before going on
            self.stop()
            raise
        finally:
            wd.leave()
        wd.check()
        try:
            self._out.seek(0)
            out = self._out.read()
            self._err.seek(0)
            err = self._err.read()
        finally:
            self._out.close()
            self._err.close()
        return subprocess.CompletedProcess(self.proc.args, code, out, err)

    def stop(self) -> None:
        """Kill git (its children too) and reap it; its files are closed. For a caller that
        no longer wants the answer (an error or an interrupt elsewhere)."""
        if self.proc.poll() is None:
            _kill_tree(self.proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._out.close()
        self._err.close()


def _git_on_path() -> bool:
    """``shutil.which("git") is not None``, without importing shutil (bz2, lzma...)."""
    for folder in (os.environ.get("PATH") or os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or ".", "git")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return True
    return False


def _feed(stdin: IO[bytes] | None, data: bytes) -> None:
    if stdin is None:
        return
    try:
        stdin.write(data)
        stdin.close()
    except (BrokenPipeError, OSError, ValueError):
        pass


@dataclass(frozen=True)
class GitRepo:
    """A located repository: absolute git dir, work tree (None when bare)."""

    git_dir: str
    work_tree: str | None
    shallow: bool = False
    # HEAD's commit as ``discover`` saw it (its rev-parse answers this too: one git process
    # fewer on every run); ``head_known`` False: not asked (a bare repository), ask git.
    head: str | None = None
    head_known: bool = False
    # A revision or range ``discover`` was asked to resolve in its own rev-parse (a range
    # job's: one git process fewer), with the ids ``rev-parse --revs-only`` printed for it.
    resolved: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def resolved_ids(self, rev: str) -> list[str] | None:
        """The ids ``discover`` resolved ``rev`` to, or None (ask git)."""
        for known, ids in self.resolved:
            if known == rev:
                return list(ids)
        return None

    @property
    def bare(self) -> bool:
        return self.work_tree is None

    def argv(self, *args: str) -> list[str]:
        return ["git", "--git-dir", self.git_dir, *SAFE_CONFIG, *READ_CONFIG, *args]

    @property
    def cwd(self) -> str:
        return self.work_tree or self.git_dir

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        check: bool = True,
        keep_index: bool = False,
    ) -> subprocess.CompletedProcess[bytes]:
        return run_git(
            self.argv(*args), args[0], self.git_dir, cwd=self.cwd,
            env=git_env(keep_index, self.git_dir, self.cwd), input=input, check=check,
        )  # fmt: skip

    def start(self, *args: str, input: bytes) -> Started:
        """Start a git command that runs beside keyscan; ``Started.result`` answers later."""
        return Started(
            self.argv(*args), args[0], self.git_dir, cwd=self.cwd,
            env=git_env(False, self.git_dir, self.cwd), input=input,
        )  # fmt: skip

    def popen(
        self,
        *args: str,
        stdin: int | IO[bytes] | None = None,
        keep_index: bool = False,
        stderr: int | IO[bytes] = subprocess.PIPE,
        also: Sequence[subprocess.Popen[bytes]] = (),
    ) -> GitProcess:
        """A streaming git command. Its stdout raises GitTimeout once the watchdog killed it
        (no progress for ``git_timeout()`` s while read); ``also``: processes feeding it
        (their CPU is progress, and they are killed with it)."""
        return _start(
            self.argv(*args), args[0], self.git_dir, cwd=self.cwd,
            env=git_env(keep_index, self.git_dir, self.cwd),
            stdin=stdin, stderr=stderr, also=also,
        )  # fmt: skip


def _grow_pipe(fd: int) -> None:
    """A 1 MiB pipe instead of 64 KiB: far fewer context switches between git and us."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1024 * 1024)
    except (ImportError, OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size
        pass


def last_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    if not lines:
        return ""
    text = lines[-1]
    for prefix in ("fatal: ", "error: "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return text


# Files git reads in a repository before anything else. A FIFO or a device there would block
# git (and anything that opens it) forever: refused before git runs, with a clear message.
_GIT_FILES = (
    "HEAD", "config", "packed-refs", "shallow", "commondir", "gitdir",
    "objects/info/alternates", "info/grafts", "index",
)  # fmt: skip


def check_git_files(git_dir: str, where: str) -> None:
    """Refuse a repository whose well-known files are not regular files (``stat`` only: a
    FIFO is never opened)."""
    import stat

    for name in _GIT_FILES:
        try:
            st = os.stat(os.path.join(git_dir, name))
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            raise GitError(where, f"{name} in {git_dir} is not a regular file (a FIFO or "
                           "device?): refusing to read this repository")  # fmt: skip


def _candidate_git_dir(start: str) -> str | None:
    dot = os.path.join(start, ".git")
    if os.path.isdir(dot):
        return dot
    if os.path.exists(os.path.join(start, "objects")) and os.path.lexists(
        os.path.join(start, "HEAD")
    ):
        return start  # a bare repository
    return None


def discover(target: str, rev: str | None = None) -> GitRepo:
    """The repository at or above ``target`` (a work tree or a bare repository).

    ``rev`` (a range job's ``A..B``): resolved by the same ``rev-parse`` when git can say it
    there (``GitRepo.resolved``): HEAD's commit, then a fixed line, then the ids
    ``rev-parse --revs-only --end-of-options REV`` prints. Whenever that answer is not
    plain (HEAD not a commit, a failure, a bare repository), nothing is taken from it: the
    usual call (``--verify -q HEAD^{commit}``) runs as before, or, for a bare repository,
    its answer is the usual one and the revision is asked separately, as before."""
    if not os.path.exists(target):
        raise GitError(target, "no such file or directory")
    start = target if os.path.isdir(target) else os.path.dirname(target) or "."
    env = git_env()
    if not _git_on_path():
        raise GitError("git", "not found: install git to scan repositories")
    early = _candidate_git_dir(start)
    if early is not None:
        check_git_files(early, target)
    dot = os.path.join(start, ".git")
    if os.path.lexists(dot) and not os.path.isdir(dot):
        import stat

        try:
            regular = stat.S_ISREG(os.stat(dot).st_mode)
        except OSError:
            regular = True  # a dangling link: git says what is wrong
        if not regular:
            raise GitError(target, ".git is not a regular file (a FIFO or device?): refusing it")
    combined = rev is not None and _combinable(rev)
    if combined:
        assert rev is not None
        # HEAD's commit (nothing, and nothing after it, when it is not one), a fixed line
        # ("true"/"false": never an id), then the revision's ids.
        head_args = ["--revs-only", "HEAD^{commit}", "--is-bare-repository",
                     "--end-of-options", rev]  # fmt: skip
    else:
        # Printed last (after every other answer), nothing when HEAD is unborn (exit 1);
        # a bare repository stops at --show-toplevel (exit 128) and never gets here.
        head_args = ["--verify", "-q", "HEAD^{commit}"]
    proc = run_git(
        [
            "git",
            *SAFE_CONFIG,
            "rev-parse",
            "--absolute-git-dir",
            "--is-bare-repository",
            "--is-shallow-repository",
            "--show-toplevel",
            *head_args,
        ],
        "rev-parse",
        target,
        cwd=start,
        env=env,
        check=False,
    )
    out = proc.stdout.decode("utf-8", "surrogateescape").split("\n")
    resolved: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # A bare repository stops at --show-toplevel (exit 128), before anything that differs
    # from the usual call: its answer is read as the usual one.
    stopped_early = proc.returncode != 0 and len([line for line in out if line]) <= 3
    if combined and not stopped_early:
        assert rev is not None
        answer = _combined_answer(out, proc.returncode)
        if answer is None:
            return discover(target)  # not plain: the usual call, as before
        head_id, ids = answer
        check_git_files(out[0], target)
        if ids:
            resolved = ((rev, tuple(ids)),)
        return GitRepo(
            git_dir=out[0], work_tree=out[3], shallow=out[2] == "true", head=head_id,
            head_known=True, resolved=resolved,
        )  # fmt: skip
    if proc.returncode != 0 and len(out) < 3:
        why = last_line(proc.stderr)
        if b"not a git repository" in proc.stderr:
            why = "not a git repository"
        elif b"dubious ownership" in proc.stderr:
            why = "owned by another user: git refuses it (see git config safe.directory)"
        raise GitError(target, why or "not a git repository")
    git_dir, bare, shallow = out[0], out[1] == "true", out[2] == "true"
    rest = [line for line in out[3:] if line]
    head = rest.pop() if rest and _OBJECT_ID.fullmatch(rest[-1]) else None
    work_tree = None if bare or not rest else rest[0]
    # Exit 0: HEAD's commit printed; exit 1 with nothing said: HEAD is unborn. Anything else
    # (a bare repository, an older git): unknown, asked separately when needed.
    head_known = (head is not None and proc.returncode == 0) or (
        proc.returncode == 1 and not proc.stderr.strip() and len(out) >= 4
    )
    check_git_files(git_dir, target)
    return GitRepo(
        git_dir=git_dir, work_tree=work_tree, shallow=shallow, head=head, head_known=head_known
    )


_OBJECT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_EXCLUDED_ID = re.compile(r"\^?[0-9a-f]{40}(?:[0-9a-f]{24})?")


def _combinable(rev: str) -> bool:
    """Whether ``rev`` can be resolved in ``discover``'s rev-parse and mean the same: a
    revision or range (never an option, no path syntax such as ``HEAD:./x`` that would be
    read from another folder)."""
    return bool(rev) and not rev.startswith("-") and not any(c in rev for c in ":\n\0")


def _combined_answer(out: list[str], code: int) -> tuple[str, list[str]] | None:
    """(HEAD's commit, the revision's ids) from ``discover``'s combined rev-parse, or None
    when the answer is not plain: a failure, HEAD not a commit (rev-parse then prints
    nothing more), anything but ids where ids belong."""
    if code != 0 or len(out) < 6 or out[1] != "false":
        return None  # a failure, or a bare repository (the usual call reads it)
    head, fixed, rest = out[4], out[5], [line for line in out[6:] if line]
    if not _OBJECT_ID.fullmatch(head) or fixed not in ("true", "false"):
        return None
    if not all(_EXCLUDED_ID.fullmatch(line) for line in rest):
        return None
    return head, rest


class ObjectRef(NamedTuple):
    oid: str
    type: str  # blob | commit | tag | tree
    size: int
    # A path the history walk first met the blob at, kept only where the content layer
    # reads the name (notebooks, ``.ipynb``): a hint, the reported path comes from provenance.
    # For a tree: its path (the folder its entries' names are in).
    hint: str = ""


def _hint(name: bytes) -> str:
    return name.decode("utf-8", "surrogateescape") if name.lower().endswith(b".ipynb") else ""


def split_z(stream: IO[bytes], chunk: int = 1 << 20) -> Iterator[bytes]:
    """NUL-separated tokens of a stream, without holding the stream in memory."""
    rest = b""
    while True:
        data = stream.read(chunk)
        if not data:
            break
        parts = (rest + data).split(b"\0")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


class ObjectReader:
    """Contents of objects, streamed from one ``git cat-file --batch`` process.

    ``read(oids)`` yields ``(oid, type, data)``; ``oids`` may be a lazy stream (the history
    walk still going on), fed to git by a writer thread while contents are read. ONE process
    serves the whole stream: its delta-base cache is what makes reading cheap (restarting it
    every few thousand objects costs two thirds more git CPU). An object git cannot read
    yields ``(oid, "error", message)``; if git dies on it, a fresh process takes over with
    the objects sent but not yet read, then the rest of the stream.
    """

    BATCH = 512  # ids per write

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo

    def read(self, oids: Iterable[str]) -> Iterator[tuple[str, str, bytes]]:
        source = _batches(oids, self.BATCH)
        resend: list[str] = []
        while True:
            feed = _Feed(source, resend)
            why = yield from self._one_process(feed)
            if not feed.pending:  # every id sent was answered: the stream is done
                if feed.exhausted:
                    return
                resend = []
                continue
            yield feed.pending.popleft(), "error", why.encode()
            resend = list(feed.pending)
            if feed.exhausted and not resend:
                return

    def _one_process(self, feed: _Feed) -> Generator[tuple[str, str, bytes], None, str]:
        """Read answers until EOF; returns why git stopped (when it died)."""
        # stderr to a file, never a pipe: git's complaints can never block it.
        with _scratch_file() as errlog:
            # --buffer: stdio buffering, not a flush per object (we never wait for one).
            proc = self.repo.popen(
                "cat-file", "--batch", "--buffer", stdin=subprocess.PIPE, stderr=errlog
            )
            assert proc.stdin is not None and proc.stdout is not None
            # git is to blame for a wait only while it has been asked for something.
            proc.watchdog.busy = lambda: bool(feed.pending)
            writer = threading.Thread(
                target=feed.run, args=(proc.stdin,), daemon=True, name="cat-file-feed"
            )
            writer.start()
            out = proc.stdout
            # The hot loop reads the stream under the wrapper, timing each answer once (not
            # each of its three reads); the watchdog is told before every yield that the
            # wait is over, so time spent by the consumer never counts against git.
            raw = cast(_Watched, out).raw
            wd = proc.watchdog
            finished = False
            try:
                while True:
                    wd.enter()
                    try:
                        header = raw.readline()
                        fields = header.split()
                        missing = len(fields) == 2 and fields[1] == b"missing"
                        data = b""
                        if header and feed.pending and not missing and len(fields) == 3:
                            size = int(fields[2])
                            data = raw.read(size)
                            if len(data) == size:
                                raw.read(1)  # the LF after the contents
                    finally:
                        wd.leave()
                    wd.check()
                    if not header or not feed.pending:
                        break  # EOF (or an answer to nothing asked): done, or git died
                    if missing:
                        yield feed.pending.popleft(), "error", b"object is missing"
                        continue
                    if len(fields) != 3 or len(data) != int(fields[2]):
                        break
                    feed.pending.popleft()
                    yield fields[0].decode(), fields[1].decode(), data
                finished = True
            finally:
                if not finished:
                    # Interrupted, or the reader stopped early: stop git now, and do not
                    # wait for the writer (it may wait on a history walk still going on).
                    proc.kill()
                out.close()
                if finished:
                    writer.join()  # after this, pending holds every id taken from the stream
                proc.wait()
                proc.watchdog.stop()
            errlog.seek(0)
            err = errlog.read()
        return last_line(err) or "corrupt object: git cannot read it"


    def read_all(self) -> Generator[tuple[str, str, bytes], None, None]:
        """Every object of the repository (alternates included) once, in pack order:
        ``git cat-file --batch-all-objects --batch --unordered``, exactly what the floor of
        a history scan costs git (no ids to write, no feeder thread, delta bases met in the
        order the pack stores them). Yields ``(oid, type, data)``; if git dies on a corrupt
        object the stream just ends (the caller reads what it still needs by id, where
        each error is named). Raises GitTimeout when git made no progress."""
        with _scratch_file() as errlog:
            proc = self.repo.popen(
                "cat-file", "--batch-all-objects", "--batch", "--unordered", stderr=errlog
            )
            assert proc.stdout is not None
            raw = cast(_Watched, proc.stdout).raw
            wd = proc.watchdog
            finished = False
            try:
                while True:
                    wd.enter()
                    try:
                        header = raw.readline()
                        fields = header.split()
                        data = b""
                        if len(fields) == 3:
                            size = int(fields[2])
                            data = raw.read(size)
                            if len(data) == size:
                                raw.read(1)  # the LF after the contents
                    finally:
                        wd.leave()
                    wd.check()
                    if len(fields) != 3 or len(data) != int(fields[2]):
                        break  # EOF, or git died part-way
                    yield fields[0].decode(), fields[1].decode(), data
                finished = True
            finally:
                if not finished:
                    proc.kill()
                proc.stdout.close()
                proc.wait()
                wd.stop()


class _Feed:
    """Writes ids to one cat-file; ``pending`` holds those sent and not yet answered."""

    def __init__(self, source: Iterator[list[str]], resend: list[str]) -> None:
        self.source = source
        self.resend = resend
        self.pending: deque[str] = deque()
        self.exhausted = False

    def run(self, stdin: IO[bytes]) -> None:
        try:
            if self.resend:
                self._send(stdin, self.resend)
            for batch in self.source:
                self._send(stdin, batch)
            self.exhausted = True
            stdin.close()
        except (BrokenPipeError, ValueError, OSError):
            pass

    def _send(self, stdin: IO[bytes], batch: list[str]) -> None:
        self.pending.extend(batch)  # before writing: an answer may come at once
        stdin.write("".join(f"{oid}\n" for oid in batch).encode())
        stdin.flush()


def _batches(oids: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for oid in oids:
        batch.append(oid)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def batch_check(
    repo: GitRepo,
    source: subprocess.Popen[bytes] | None = None,
    all_objects: bool = False,
    trees: bool = False,
) -> Iterator[ObjectRef | tuple[str, str]]:
    """Type and size of objects: those ``source`` prints (one id per line), or every object
    in the repository. Yields ObjectRef for blobs, commits and tags and ``(oid, "missing")``
    for objects that cannot be read; trees are skipped unless ``trees`` (then their hint is
    the tree's path: the names of its entries are scanned)."""
    args = [
        "cat-file",
        "--buffer",
        "--batch-check=%(objecttype) %(objectname) %(objectsize) %(rest)",
    ]
    if all_objects:
        args += ["--batch-all-objects", "--unordered"]
    proc = repo.popen(
        *args,
        stdin=source.stdout if source is not None else None,
        also=[source] if source is not None else (),
    )
    if source is not None and source.stdout is not None:
        source.stdout.close()  # the pipe now belongs to cat-file
    assert proc.stdout is not None and proc.stderr is not None
    wanted = {b"blob": "blob", b"commit": "commit", b"tag": "tag"}
    while True:
        lines = proc.stdout.readlines(1 << 20)
        if not lines:
            break
        for line in lines:
            if line.startswith(b"tree "):
                if trees:
                    _, oid, size, rest = [*line.rstrip(b"\n").split(b" ", 3), b"", b"", b""][:4]
                    if size != b"missing":
                        path = rest.decode("utf-8", "surrogateescape")
                        yield ObjectRef(oid.decode(), "tree", int(size), path)
                        continue
                else:
                    continue
            kind, oid, size, rest = [*line.rstrip(b"\n").split(b" ", 3), b"", b"", b""][:4]
            name = wanted.get(kind)
            if name is not None:
                yield ObjectRef(oid.decode(), name, int(size), _hint(rest) if rest else "")
            elif oid == b"missing" or size == b"missing":
                yield kind.decode("ascii", "replace"), "missing"
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    code = proc.wait()
    proc.watchdog.stop()
    if code != 0:
        raise GitError("cat-file", last_line(err) or "cannot list objects")


def object_in(stderr: bytes) -> str | None:
    """The first object id git names in an error message, if any."""
    m = re.search(rb"\b([0-9a-f]{40}|[0-9a-f]{64})\b", stderr)
    return m.group(1).decode() if m else None


def lines_of(data: bytes) -> list[str]:
    return [ln for ln in data.decode("utf-8", "surrogateescape").split("\n") if ln]


def parse_person(line: bytes) -> tuple[str, str, str]:
    """``Name <email> 1700000000 +0100`` -> (name, email, ISO 8601 date)."""
    import datetime

    text = line.decode("utf-8", "replace")
    name, _, rest = text.partition(" <")
    email, _, when = rest.partition("> ")
    parts = when.split()
    date = ""
    try:
        ts = int(parts[0])
        tz = parts[1] if len(parts) > 1 else "+0000"
        sign = -1 if tz.startswith("-") else 1
        offset = datetime.timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5])) * sign
        date = datetime.datetime.fromtimestamp(ts, datetime.timezone(offset)).isoformat()
    except (IndexError, ValueError, OverflowError):
        pass
    return name.strip(), email, date


def split_commit(data: bytes) -> tuple[dict[bytes, bytes], int]:
    """Headers of a commit or tag object (first value of each) and the message offset."""
    end = data.find(b"\n\n")
    head = data if end < 0 else data[:end]
    headers: dict[bytes, bytes] = {}
    for line in head.split(b"\n"):
        if line.startswith(b" "):
            continue
        key, _, value = line.partition(b" ")
        headers.setdefault(key, value)
    return headers, (len(data) if end < 0 else end + 2)


class Listing(NamedTuple):
    """Every object of the repository, in pack order: ids, types and sizes as git printed
    them (bytes, one list each: no Python object per object beyond three ``bytes``)."""

    ids: list[bytes]
    types: list[bytes]
    sizes: list[bytes]


def pack_order_runs(
    repo: GitRepo, runs: int, facts: list[Listing] | None = None
) -> list[list[str]]:
    """Every object of the repository once, in pack order (``cat-file --batch-all-objects
    --batch-check --unordered``: nothing inflated), cut into at most ``runs`` contiguous runs
    of about equal size (bytes plus 256 per object, as ``iter_chunks`` weighs them). The
    listing is parsed by one ``bytes.split``: no Python object per object beyond its id (on
    sqlalchemy's 277k objects ``batch_check`` took about 1 s of the parent's time before any
    worker could start). ``facts``: the whole listing (ids, types, sizes) is appended to it
    (what a scan of every ref counts, instead of asking the walk for types and sizes)."""
    out = repo.run(
        "cat-file", "--batch-all-objects", "--unordered",
        "--batch-check=%(objectname) %(objecttype) %(objectsize)",
    ).stdout  # fmt: skip
    if b" missing\n" in out:  # an object git cannot read (corrupt): read later by id
        out = re.sub(rb"(?m)^\S+ missing\n", b"", out)
    tokens = out.split()
    del out
    ids = tokens[0::3]
    sizes = tokens[2::3]
    weights = [int(size) + 256 for size in sizes]
    if facts is not None:
        facts.append(Listing(ids, tokens[1::3], sizes))
    del tokens
    if not ids:
        return []
    n = max(1, runs)
    target = sum(weights) / n
    cuts: list[int] = []
    size = 0
    for i, weight in enumerate(weights):
        size += weight
        if size >= target and len(cuts) < n - 1:
            cuts.append(i + 1)
            size = 0
    starts = [0, *cuts]
    ends = [*cuts, len(ids)]
    return [[oid.decode() for oid in ids[a:b]] for a, b in zip(starts, ends, strict=True) if b > a]


def iter_chunks(
    items: Iterable[ObjectRef], jobs: int, pieces_per_job: int = 4
) -> list[list[ObjectRef]]:
    """Split objects, in order, into contiguous runs of about equal byte size."""
    objs = list(items)
    total = sum(o.size + 256 for o in objs)
    n = max(1, jobs * pieces_per_job)
    target = total / n
    runs: list[list[ObjectRef]] = [[]]
    size = 0.0
    for o in objs:
        runs[-1].append(o)
        size += o.size + 256
        if size >= target and len(runs) < n:
            runs.append([])
            size = 0.0
    return [r for r in runs if r]
