"""Safe git plumbing: one place that builds git command lines and streams object contents.

Nothing here runs code from the repository being scanned:

* ``GIT_CONFIG_NOSYSTEM=1``, ``GIT_TERMINAL_PROMPT=0``, no pager, no replace objects;
* ``-c core.fsmonitor=false -c core.hooksPath=/dev/null`` and friends on every command, so a
  planted fsmonitor or hook in the scanned repository's config never runs;
* only plumbing that runs no hooks (rev-list, cat-file, log --raw, ls-tree, diff-index,
  for-each-ref, rev-parse); ``cat-file`` without ``--textconv``/``--filters``, ``log`` with
  ``--no-textconv --no-ext-diff`` and signatures off (no gpg).

Objects are read through one persistent ``git cat-file --batch`` per worker, fed object ids
by a writer thread; memory is bounded by the largest object.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import weakref
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, NamedTuple

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

# Variables that would point git at another repository or run a program.
_DROP_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_EXTERNAL_DIFF",
    "GIT_PAGER",
    "GIT_ASKPASS",
    "GIT_SSH_COMMAND_UNSAFE",
    "GIT_EDITOR",
    "GIT_SEQUENCE_EDITOR",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_NAMESPACE",
    "GIT_REPLACE_REF_BASE",
)

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


class GitError(Exception):
    """A git command failed. ``where`` names the repository, revision or object."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


def git_env(keep_index: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    if not keep_index:
        env.pop("GIT_INDEX_FILE", None)
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


@dataclass(frozen=True)
class GitRepo:
    """A located repository: absolute git dir, work tree (None when bare)."""

    git_dir: str
    work_tree: str | None
    shallow: bool = False

    @property
    def bare(self) -> bool:
        return self.work_tree is None

    def argv(self, *args: str) -> list[str]:
        return ["git", "--git-dir", self.git_dir, *SAFE_CONFIG, *args]

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
        proc = subprocess.run(
            self.argv(*args),
            input=input,
            capture_output=True,
            cwd=self.cwd,
            env=git_env(keep_index),
            check=False,
        )
        if check and proc.returncode != 0:
            raise GitError(args[0], last_line(proc.stderr) or f"git {args[0]} failed")
        return proc

    def popen(
        self,
        *args: str,
        stdin: int | IO[bytes] | None = None,
        keep_index: bool = False,
        stderr: int | IO[bytes] = subprocess.PIPE,
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            self.argv(*args),
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=self.cwd,
            env=git_env(keep_index),
            bufsize=1024 * 1024,
        )
        if proc.stdout is not None:
            _grow_pipe(proc.stdout.fileno())
        _RUNNING.add(proc)
        return proc


def _grow_pipe(fd: int) -> None:
    """A 1 MiB pipe instead of 64 KiB: far fewer context switches between git and us."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1024 * 1024)
    except (ImportError, OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size
        pass


def run_group(
    argv: list[str], env: dict[str, str], timeout: float | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run a git command that writes into a temporary directory (a clone) in a process group
    of its own; if it times out or this process is interrupted, the whole group (git and
    its transport helpers, index-pack...) is killed and reaped before the exception goes
    on, so that nothing writes into the directory while it is removed."""
    import signal

    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        with contextlib.suppress(OSError):  # already gone
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def last_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    if not lines:
        return ""
    text = lines[-1]
    for prefix in ("fatal: ", "error: "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return text


def discover(target: str) -> GitRepo:
    """The repository at or above ``target`` (a work tree or a bare repository)."""
    if not os.path.exists(target):
        raise GitError(target, "no such file or directory")
    start = target if os.path.isdir(target) else os.path.dirname(target) or "."
    env = git_env()
    if shutil.which("git") is None:
        raise GitError("git", "not found: install git to scan repositories")
    proc = subprocess.run(
        [
            "git",
            *SAFE_CONFIG,
            "rev-parse",
            "--absolute-git-dir",
            "--is-bare-repository",
            "--is-shallow-repository",
            "--show-toplevel",
        ],
        capture_output=True,
        cwd=start,
        env=env,
        check=False,
    )
    out = proc.stdout.decode("utf-8", "surrogateescape").split("\n")
    if proc.returncode != 0 and len(out) < 3:
        why = last_line(proc.stderr)
        if b"not a git repository" in proc.stderr:
            why = "not a git repository"
        elif b"dubious ownership" in proc.stderr:
            why = "owned by another user: git refuses it (see git config safe.directory)"
        raise GitError(target, why or "not a git repository")
    git_dir, bare, shallow = out[0], out[1] == "true", out[2] == "true"
    work_tree = None if bare or len(out) < 4 or not out[3] else out[3]
    return GitRepo(git_dir=git_dir, work_tree=work_tree, shallow=shallow)


class ObjectRef(NamedTuple):
    oid: str
    type: str  # blob | commit | tag
    size: int
    # A path the history walk first met the blob at, kept only where the content layer
    # reads the name (notebooks, ``.ipynb``): a hint, the reported path comes from provenance.
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
        import tempfile

        # stderr to a file, never a pipe: git's complaints can never block it.
        with tempfile.TemporaryFile() as errlog:
            # --buffer: stdio buffering, not a flush per object (we never wait for one).
            proc = self.repo.popen(
                "cat-file", "--batch", "--buffer", stdin=subprocess.PIPE, stderr=errlog
            )
            assert proc.stdin is not None and proc.stdout is not None
            writer = threading.Thread(
                target=feed.run, args=(proc.stdin,), daemon=True, name="cat-file-feed"
            )
            writer.start()
            out = proc.stdout
            finished = False
            try:
                while True:
                    header = out.readline()
                    if not header or not feed.pending:
                        break  # EOF (or an answer to nothing asked): done, or git died
                    fields = header.split()
                    if len(fields) == 2 and fields[1] == b"missing":
                        yield feed.pending.popleft(), "error", b"object is missing"
                        continue
                    if len(fields) != 3:
                        break
                    size = int(fields[2])
                    data = out.read(size)
                    if len(data) != size:
                        break
                    out.read(1)  # the LF after the contents
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
            errlog.seek(0)
            err = errlog.read()
        return last_line(err) or "corrupt object: git cannot read it"


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
    repo: GitRepo, source: subprocess.Popen[bytes] | None = None, all_objects: bool = False
) -> Iterator[ObjectRef | tuple[str, str]]:
    """Type and size of objects: those ``source`` prints (one id per line), or every object
    in the repository. Yields ObjectRef for blobs, commits and tags and ``(oid, "missing")``
    for objects that cannot be read; trees are skipped (nothing to scan in them)."""
    args = [
        "cat-file",
        "--buffer",
        "--batch-check=%(objecttype) %(objectname) %(objectsize) %(rest)",
    ]
    if all_objects:
        args += ["--batch-all-objects", "--unordered"]
    proc = repo.popen(*args, stdin=source.stdout if source is not None else None)
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
    if proc.wait() != 0:
        raise GitError("cat-file", last_line(err) or "cannot list objects")


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
