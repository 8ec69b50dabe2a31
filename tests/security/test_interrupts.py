"""Ctrl-C and SIGTERM during `scan`, `git URL` and `audit`: the run ends with one line and
exit 130 (SIGINT) or 143 (SIGTERM), no traceback from any worker, no report file, no
temporary clone left in $TMPDIR, no child process left.

Real subprocesses on slow inputs: stdin that never closes, a tree large enough for worker
processes, an HTTP "remote" that accepts connections and never answers (the clone hangs
with its temporary folder in place), and a file:// remote with a large blob (the full mirror
clone is on disk while it is scanned). Ctrl-C is a SIGINT to the whole process group, as a
terminal sends it; SIGTERM goes to keyscan's process only, as `kill` or a CI runner sends it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from keyscan.keygen import key
from tests.git_helpers import ENV_TEMPLATE, Repo

INTERRUPTED = "keyscan: interrupted: scan incomplete"

# (signal, to the whole process group?, expected exit code)
CTRL_C = (signal.SIGINT, True, 130)
SIGTERM = (signal.SIGTERM, False, 143)
BOTH = [pytest.param(CTRL_C, id="ctrl-c"), pytest.param(SIGTERM, id="sigterm")]


def start(args: list[str], tmpdir: Path, cwd: Path, stdin: int | None = None) -> subprocess.Popen[str]:
    env = dict(os.environ, **ENV_TEMPLATE, TMPDIR=str(tmpdir))
    return subprocess.Popen(
        [sys.executable, "-m", "keyscan", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL if stdin is None else stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: "Ctrl-C" reaches it and its children
    )


def wait_for(what: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"keyscan ended before the signal (exit {proc.returncode}): {out}{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the slow input never got going")
        time.sleep(0.05)


def catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM (it is past its start-up)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(int(ln.split()[1], 16) for ln in status.splitlines() if ln.startswith("SigCgt"))
    return bool(mask & (1 << (signal.SIGTERM - 1)))


def interrupt(
    proc: subprocess.Popen[str], how: tuple[signal.Signals, bool, int]
) -> tuple[int, str, str, list[psutil.Process]]:
    """Send the signal; (exit code, stdout, stderr, the processes keyscan had started)."""
    sig, group, _ = how
    family = psutil.Process(proc.pid).children(recursive=True)
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"keyscan did not stop after the signal: {err}")
    return proc.returncode, out, err, family


def still_running(family: list[psutil.Process], grace: float = 10.0) -> list[str]:
    deadline = time.monotonic() + grace
    while True:
        alive = []
        for p in family:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def assert_interrupted(
    result: tuple[int, str, str, list[psutil.Process]],
    how: tuple[signal.Signals, bool, int],
    tmpdir: Path,
) -> None:
    code, out, err, family = result
    assert code == how[2], (code, err)
    assert err.splitlines() == [INTERRUPTED], err  # one line: no traceback, no "Aborted!"
    assert "Traceback" not in out + err
    assert still_running(family) == []
    assert sorted(os.listdir(tmpdir)) == []  # no temporary clone (nor anything else)


@pytest.fixture
def tmpdir_(tmp_path: Path) -> Path:
    path = tmp_path / "tmp"
    path.mkdir()
    return path


class HangingRemote:
    """An HTTP server that accepts connections and never answers: a clone from it hangs."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(conn)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}/{name}.git"

    def close(self) -> None:
        self.server.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def hanging() -> Iterator[HangingRemote]:
    remote = HangingRemote()
    yield remote
    remote.close()


# --------------------------------------------------------------------------------------------
# scan


@pytest.mark.parametrize("how", BOTH)
def test_scan_of_stdin_that_never_ends(
    how: tuple[signal.Signals, bool, int], tmp_path: Path, tmpdir_: Path
) -> None:
    read_end, write_end = os.pipe()
    try:
        report = tmp_path / "report.json"
        proc = start(["scan", "-", "--no-config", "-f", "json", "-o", str(report)], tmpdir_,
                     tmp_path, stdin=read_end)  # fmt: skip
        os.close(read_end)
        os.write(write_end, f"K = '{key('project')}'\n".encode())
        deadline = time.monotonic() + 20
        while not catches_sigterm(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        assert_interrupted(interrupt(proc, how), how, tmpdir_)
        assert not report.exists()  # no report that looks complete
    finally:
        os.close(write_end)


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough bytes for `scan -j2` to start its worker processes and take a few seconds."""
    root = tmp_path_factory.mktemp("big-tree")
    line = b"lorem ipsum sk-proj- dolor sit amet sk-svcacct- T3Blbk consectetur\n"
    data = line * (1_500_000 // len(line))
    for i in range(100):
        (root / f"f{i:03}.txt").write_bytes(data)
    return root


@pytest.mark.parametrize("how", BOTH)
def test_scan_with_worker_processes(
    how: tuple[signal.Signals, bool, int], big_tree: Path, tmp_path: Path, tmpdir_: Path
) -> None:
    report = tmp_path / "report.sarif"
    proc = start(["scan", str(big_tree), "-j2", "--no-config", "-f", "sarif", "-o", str(report)],
                 tmpdir_, tmp_path)  # fmt: skip
    wait_for(lambda: len(psutil.Process(proc.pid).children()) >= 2, proc)
    time.sleep(0.3)
    assert_interrupted(interrupt(proc, how), how, tmpdir_)
    assert not report.exists()


# --------------------------------------------------------------------------------------------
# git URL


@pytest.mark.parametrize("how", BOTH)
def test_git_url_while_cloning(
    how: tuple[signal.Signals, bool, int], hanging: HangingRemote, tmp_path: Path,
    tmpdir_: Path,
) -> None:  # fmt: skip
    proc = start(["git", hanging.url("repo"), "--no-config"], tmpdir_, tmp_path)
    wait_for(lambda: bool(hanging.connections) and bool(os.listdir(tmpdir_)), proc)
    time.sleep(0.3)
    assert_interrupted(interrupt(proc, how), how, tmpdir_)


@pytest.fixture(scope="module")
def big_remote(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with a key in a large (well compressed) blob: cloned in a moment,
    scanned for seconds."""
    repo = Repo(tmp_path_factory.mktemp("big-remote") / "src")
    line = "lorem ipsum sk-proj- dolor sit amet sk-svcacct- T3Blbk consectetur\n"
    text = line * (120_000_000 // len(line)) + f"K = '{key('project')}'\n"
    repo.commit("big", ("big.txt", text))
    return repo.path


def test_git_url_while_scanning_the_mirror_clone(
    big_remote: Path, tmp_path: Path, tmpdir_: Path
) -> None:
    """The full mirror (every key in history) is in $TMPDIR while it is scanned: SIGTERM
    must remove it."""
    proc = start(["git", f"file://{big_remote}", "--no-config"], tmpdir_, tmp_path)
    wait_for(lambda: any((tmpdir_ / d / "repo.git" / "packed-refs").exists()
                         for d in os.listdir(tmpdir_)), proc)  # fmt: skip
    time.sleep(0.3)
    assert_interrupted(interrupt(proc, SIGTERM), SIGTERM, tmpdir_)


# --------------------------------------------------------------------------------------------
# audit


@pytest.mark.parametrize("how", BOTH)
def test_audit_with_workers(
    how: tuple[signal.Signals, bool, int], hanging: HangingRemote, tmp_path: Path,
    tmpdir_: Path,
) -> None:  # fmt: skip
    """Two workers, each cloning a URL that never answers: the parent terminates them, each
    removes its temporary clone."""
    db = tmp_path / "audit.db"
    proc = start(["audit", hanging.url("a"), hanging.url("b"), "-j2", "--no-config",
                  "--db", str(db)], tmpdir_, tmp_path)  # fmt: skip
    wait_for(lambda: len(hanging.connections) >= 2 and len(os.listdir(tmpdir_)) >= 2, proc)
    time.sleep(0.3)
    assert_interrupted(interrupt(proc, how), how, tmpdir_)


def test_audit_in_one_process(hanging: HangingRemote, tmp_path: Path, tmpdir_: Path) -> None:
    proc = start(["audit", hanging.url("a"), "--no-config", "--db", str(tmp_path / "a.db")],
                 tmpdir_, tmp_path)  # fmt: skip
    wait_for(lambda: bool(hanging.connections) and bool(os.listdir(tmpdir_)), proc)
    time.sleep(0.3)
    assert_interrupted(interrupt(proc, SIGTERM), SIGTERM, tmpdir_)
