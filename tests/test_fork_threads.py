"""Worker pools fork a process with one thread: no thread of keyscan's is alive when a pool
forks (forking while another thread holds a lock can leave the child stuck on it; Python
3.12+ warns). Each git command's watchdog thread ends when the command is waited on."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from keyscan.git import history, packs, plumbing
from keyscan.rules import load_rules
from keyscan.sources import files
from tests.git_helpers import Repo, new_key, scan

pytestmark = pytest.mark.usefixtures("isolated_home")


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The threads (beyond those alive before the test: pytest's, xdist's) alive at each
    fork of this process."""
    before = set(threading.enumerate())
    seen: list[list[str]] = []
    real_fork = os.fork

    def fork() -> int:
        if os.getpid() == parent:
            seen.append(sorted(t.name for t in threading.enumerate() if t not in before
                               and t is not threading.current_thread()))  # fmt: skip
        return real_fork()

    parent = os.getpid()
    monkeypatch.setattr(os, "fork", fork)
    return seen


def _history(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "repo")
    for i in range(5):
        repo.commit(f"c{i}", (f"f{i}.txt", f"{'x' * 1000}\n{new_key()}\n"),
                    (f"pad{i}.bin", bytes(range(256)) * 40))  # fmt: skip
    return repo


@pytest.mark.parametrize("how", ["id-order", "pack-order-git", "pack-order-reader"])
def test_history_pools_fork_with_no_thread_of_keyscan_alive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: list[list[str]], how: str
) -> None:
    repo = _history(tmp_path)
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    if how.startswith("pack-order"):
        repo.git("repack", "-adf", "-q")
        monkeypatch.setattr(history, "PACKS_IN_PROCESS", how == "pack-order-reader")
        if how == "pack-order-reader" and packs.apply_delta_function() is None:
            pytest.skip("dulwich's compiled apply_delta")
    result = scan(repo.path, jobs=2, **({"branch": "main"} if how == "id-order" else {}))
    assert result.stats["workers"] == 2 and len(result.findings) == 5
    assert forks, "no worker was forked"
    assert all(alive == [] for alive in forks), forks
    assert not [t for t in threading.enumerate() if t.name == "keyscan-git-watch"]


def test_the_file_pool_forks_with_no_thread_of_keyscan_alive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: list[list[str]]
) -> None:
    folder = tmp_path / "tree"
    folder.mkdir()
    for i in range(40):
        (folder / f"f{i}.txt").write_text(f"k = '{new_key()}'\n" if i % 10 == 0 else "x\n")
    monkeypatch.setattr(files, "PARALLEL_MIN_FILES", 2)
    monkeypatch.setattr(files, "BATCH_FILES", 4)
    errors: list[object] = []
    out = files.scan_files(load_rules(), files.iter_walk([str(folder)], [], errors, []), jobs=2)
    assert out.files == 40 and len(out.hits) == 4
    assert forks, "no worker was forked"
    assert all(alive == [] for alive in forks), forks


def test_a_waited_git_process_has_no_watchdog_thread(tmp_path: Path) -> None:
    """A streaming command (``popen``) waited on: its watchdog's thread has ended (before,
    it lived on until its next look, up to a second later)."""
    repo = _history(tmp_path)
    git = plumbing.discover(str(repo.path))
    proc = git.popen("rev-list", "--all")
    assert proc.stdout is not None
    proc.stdout.read()
    proc.stdout.close()
    assert proc.stderr is not None
    proc.stderr.close()
    assert proc.wait() == 0
    assert not [t for t in threading.enumerate() if t.name == "keyscan-git-watch"]
