"""How many git processes the small jobs start (issue 16: every process is a fork, an exec
and a wait on the hook's path).

* ``discover``'s one ``rev-parse`` also answers HEAD's commit: the pre-commit hook starts 2
  git processes (rev-parse, diff-index: the staged blobs, loose objects, are read without
  ``cat-file``; a packed one still goes through it), a 20-commit range ``HEAD~20..HEAD`` 5
  (7 before: ``discover``'s rev-parse resolves the range too, the walk's objects no longer
  go through ``cat-file --batch-check``, and HEAD's submodules come from its folders and
  gitlinks, ``ls-tree -r -d``, not its 10,000 files).
* What that combined rev-parse says is what the separate calls say (HEAD, the work tree,
  the range's ids, or nothing taken from it: an unborn HEAD, a bare repository, a bad range).
* The untyped walk finds, reports and counts what the typed walk did (submodules in a
  range, gitlinks added and removed, merges, notebooks, names, empty and bad ranges), and
  ``ls-tree -r -d`` lists the submodules the full listing does.
* What that answer says is what a separate ``rev-parse --verify HEAD^{commit}`` says, in a
  work tree, a subfolder, an unborn branch and a bare repository.
* The pre-commit framework's hook (``hook pre-commit FILE...``) asks ``ls-files`` about the
  files it names only (literal pathspecs, whatever the caller's pathspec settings).
* A range whose ids git has read (HEAD, a walk from it) is not checked a second time; a
  full-length id or a ref to a missing object still is ("unknown revision").
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from keyscan.git.plumbing import discover
from keyscan.git.scope import _read_by_git, _resolve, head_commit
from keyscan.keygen import key
from keyscan.redaction import redact
from tests.git_helpers import ENV_TEMPLATE, Repo


def _counting_git(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose ``git`` on PATH logs its sub-command, then runs the real git."""
    real = shutil.which("git")
    assert real is not None
    folder = tmp_path / "bin"
    folder.mkdir()
    log = tmp_path / "git.log"
    wrapper = folder / "git"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log}"\n'
        f'exec "{real}" "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, **ENV_TEMPLATE)
    env["PATH"] = f"{folder}{os.pathsep}{env.get('PATH', '')}"
    return env, log


def _subcommands(log: Path) -> list[str]:
    found = []
    for line in log.read_text().splitlines():
        words = [w for w in line.split() if not w.startswith("-") and "=" not in w]
        # "--git-dir DIR" and "-c name=value" come before the sub-command
        words = [w for w in words if not os.path.isabs(w)]
        found.append(words[0] if words else line)
    return found


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args], cwd=cwd, env=env, capture_output=True,
        text=True,
    )  # fmt: skip


def test_hook_starts_two_git_processes(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.commit("first", ("a.py", "x = 1\n"))
    secret = key("project")
    repo.write("k.py", f'K = "{secret}"\n')
    repo.git("add", "k.py")
    env, log = _counting_git(tmp_path)
    proc = _run(["hook", "pre-commit"], repo.path, env)
    assert proc.returncode == 1, proc.stderr
    assert redact(secret) in proc.stdout + proc.stderr
    assert _subcommands(log) == ["rev-parse", "diff-index"]
    # A staged blob that is packed (not loose) is read by git cat-file, as before.
    repo.git("repack", "-a", "-d", "-q")
    repo.git("prune-packed")
    log.unlink()
    proc = _run(["hook", "pre-commit"], repo.path, env)
    assert proc.returncode == 1 and redact(secret) in proc.stdout + proc.stderr
    assert _subcommands(log) == ["rev-parse", "diff-index", "cat-file"]


def test_range_starts_five_git_processes(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    for i in range(22):
        repo.commit(f"c{i}", (f"f{i}.py", f"x = {i}\n"))
    env, log = _counting_git(tmp_path)
    proc = _run(["git", "--range", "HEAD~20..HEAD", "."], repo.path, env)
    assert proc.returncode == 0, proc.stderr
    # discover (with HEAD and the range), refs, the walk, the reads, HEAD's submodules
    assert sorted(_subcommands(log)) == sorted(
        ["rev-parse", "for-each-ref", "rev-list", "cat-file", "ls-tree"]
    ), _subcommands(log)
    lines = log.read_text().splitlines()
    assert next(ln for ln in lines if " rev-parse " in f" {ln} ").endswith(
        " --end-of-options HEAD~20..HEAD")
    reads = next(ln for ln in lines if " cat-file " in f" {ln} ")
    assert reads.split()[-2:] == ["--batch", "--buffer"]
    assert " -d " in next(ln for ln in lines if " ls-tree " in f" {ln} ")


def _gitlink(repo: Repo, path: str, commit: str) -> None:
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{commit},{path}")


def _history_with_gitlinks(tmp_path: Path) -> tuple[Repo, dict[str, str]]:
    """main: files, a notebook with a key, a folder named by a key, gitlinks added and
    removed, a merge of a topic branch holding a key; topic left as a branch."""
    other = Repo(tmp_path / "other")
    sub_a = other.commit("a", ("a.txt", "a\n"))
    sub_b = other.commit("b", ("b.txt", "b\n"))
    repo = Repo(tmp_path / "repo")
    marks: dict[str, str] = {}
    marks["c0"] = repo.commit("c0", ("a.py", "x = 1\n"), ("pkg/b.py", "y = 2\n"))
    cell = {"cell_type": "code", "source": [f"K = '{key('project')}'"]}
    notebook = json.dumps({"cells": [cell]}) + "\n"
    _gitlink(repo, "vendor/lib", sub_a)
    marks["c1"] = repo.commit("c1 notebook, gitlink", ("nb/x.ipynb", notebook))
    _gitlink(repo, "deep/er/sub mod", sub_b)
    _gitlink(repo, "vendor/lib", sub_b)  # moved on
    marks["c2"] = repo.commit("c2", (f"d{key('project')}/x.txt", "named\n"))
    repo.git("checkout", "-q", "-b", "topic")
    marks["t1"] = repo.commit("t1", ("t.py", f'T = "{key("svcacct")}"\n'))
    repo.git("checkout", "-q", "main")
    repo.git("rm", "-q", "--cached", "vendor/lib")  # a gitlink removed
    marks["c3"] = repo.commit("c3", ("c.py", "z = 3\n"))
    repo.tick += 60
    repo.git("merge", "-q", "--no-ff", "-m", "merge topic", "topic")
    marks["m"] = repo.git("rev-parse", "HEAD")
    marks["c4"] = repo.commit("c4", ("e.py", "w = 4\n"))
    return repo, marks


def _range_json(repo: Repo, rev_range: str, untyped: bool) -> tuple[int, str, str]:
    """``keyscan git --range`` (JSON, one process) with the untyped walk on or off, in a
    process of its own; the scan's duration blanked."""
    code = (
        "import keyscan.git.history as history\n"
        f"history.UNTYPED_WALK = {untyped!r}\n"
        "from keyscan.cli import main\n"
        f"main(['git', '--range', {rev_range!r}, '-f', 'json', '-j', '1', '.'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo.path, capture_output=True,
                          text=True, env=dict(os.environ, **ENV_TEMPLATE))  # fmt: skip
    seconds = re.compile(r'("duration_seconds": |"enumerate_and_scan": |"provenance": )[0-9.e-]+')
    return proc.returncode, seconds.sub(r"\g<1>0", proc.stdout), proc.stderr


@pytest.mark.parametrize(
    "rev_range",
    ["HEAD~1..HEAD", "HEAD~3..HEAD", "c0..HEAD", "c1..c2", "c2..t1", "main..topic",
     "topic..main", "HEAD..HEAD", "c3...t1", "HEAD~1", "t1", "nowhere..HEAD", "c1..nowhere"],
)  # fmt: skip
def test_untyped_walk_reports_what_the_typed_walk_reports(
    tmp_path: Path, rev_range: str
) -> None:
    repo, marks = _history_with_gitlinks(tmp_path)
    for name, sha in marks.items():
        rev_range = re.sub(rf"\b{name}\b", sha, rev_range) if name[0] in "ctm" and name != "m" \
            else rev_range
    untyped = _range_json(repo, rev_range, True)
    typed = _range_json(repo, rev_range, False)
    assert untyped == typed
    code, out, err = untyped
    if "nowhere" in rev_range:
        assert code == 2 and "unknown revision" in out + err
        return
    doc = json.loads(out)
    assert code == (1 if doc["findings"] else 0), err
    warnings = [w for w in doc["scan"]["warnings"] if w.startswith("submodule ")]
    assert len(warnings) == 1 and "deep/er/sub mod" in warnings[0], warnings  # HEAD's one
    empty = rev_range in ("HEAD..HEAD", "main..topic")  # topic is merged: nothing new
    assert (doc["scan"]["stats"]["objects"] == 0) == empty


def test_head_folders_list_the_submodules_the_full_listing_lists(tmp_path: Path) -> None:
    """``ls-tree -r -d`` (folders and gitlinks) against the full ``ls-tree -r`` of every
    commit: gitlinks added, moved on, removed, nested, named with spaces."""
    from keyscan.git.history import _submodules_at
    from keyscan.git.provenance import head_tree

    repo, marks = _history_with_gitlinks(tmp_path)
    git = discover(str(repo.path))
    seen = set()
    for sha in marks.values():
        full = head_tree(git, sha)[1]
        assert _submodules_at(git, sha) == full, sha
        seen.add(len(full))
    assert seen == {0, 1, 2}
    assert _submodules_at(git, None) == []


def _separate_head(path: Path) -> str | None:
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", "HEAD^{commit}"], cwd=path, capture_output=True,
        text=True,
    )  # fmt: skip
    return proc.stdout.strip() or None


@pytest.mark.parametrize("where", ["work tree", "subfolder", "unborn", "bare", "bare unborn"])
def test_discover_answers_head_as_rev_parse_does(tmp_path: Path, where: str) -> None:
    source = Repo(tmp_path / "source")
    source.commit("first", ("pkg/a.py", "x = 1\n"))
    if where == "work tree":
        path = source.path
    elif where == "subfolder":
        path = source.path / "pkg"
    elif where == "unborn":
        path = Repo(tmp_path / "unborn").path
    elif where == "bare":
        subprocess.run(["git", "clone", "-q", "--bare", str(source.path), str(tmp_path / "b")],
                       check=True)  # fmt: skip
        path = tmp_path / "b"
    else:
        path = Repo(tmp_path / "bu", bare=True).path
    repo = discover(str(path))
    assert head_commit(repo) == _separate_head(path)
    if where in ("work tree", "subfolder"):
        assert repo.head_known and repo.head == _separate_head(path)
        assert repo.work_tree == str(source.path.resolve())
    if where == "unborn":
        assert repo.head_known and repo.head is None and repo.work_tree is not None
    if where.startswith("bare"):
        assert repo.work_tree is None


@pytest.mark.parametrize("where", ["work tree", "subfolder", "unborn", "bare", "bare unborn"])
@pytest.mark.parametrize(
    "rev", ["HEAD~1..HEAD", "HEAD~2...topic", "topic", "main..topic", "HEAD", "@~1..@",
            "nowhere..HEAD", "HEAD~1..nowhere", "HEAD:pkg", "first..HEAD", "1111111111"],
)  # fmt: skip
def test_discover_resolves_a_range_as_the_separate_calls_do(
    tmp_path: Path, where: str, rev: str
) -> None:
    from keyscan.git.plumbing import GitError

    source = Repo(tmp_path / "source")
    first = source.commit("first", ("pkg/a.py", "x = 1\n"))
    source.commit("second", ("pkg/b.py", "x = 2\n"))
    source.git("branch", "topic")
    source.commit("third", ("pkg/c.py", "x = 3\n"))
    rev = rev.replace("first", first)
    if where in ("work tree", "subfolder"):
        path = source.path / ("pkg" if where == "subfolder" else "")
    elif where == "unborn":
        path = Repo(tmp_path / "unborn").path
    elif where == "bare":
        subprocess.run(["git", "clone", "-q", "--bare", str(source.path), str(tmp_path / "b")],
                       check=True)  # fmt: skip
        path = tmp_path / "b"
    else:
        path = Repo(tmp_path / "bu", bare=True).path
    plain, combined = discover(str(path)), discover(str(path), rev)
    assert combined.git_dir == plain.git_dir and combined.work_tree == plain.work_tree
    assert combined.shallow == plain.shallow and head_commit(combined) == head_commit(plain)
    if combined.head_known:
        assert combined.head == plain.head
    known = combined.resolved_ids(rev)
    if known is not None:
        separate = subprocess.run(["git", "rev-parse", "--revs-only", "--end-of-options", rev],
                                  cwd=path, capture_output=True, text=True)  # fmt: skip
        assert known == separate.stdout.split() and known
    answers = []
    for repo in (plain, combined):
        try:
            answers.append(_resolve(repo, rev))
        except GitError as exc:
            answers.append(str(exc))
    assert answers[0] == answers[1]
    if where == "work tree" and rev in ("HEAD~1..HEAD", "HEAD~2...topic", "@~1..@"):
        assert known is not None  # the range job's one process fewer
    if "nowhere" in rev or where not in ("work tree", "subfolder"):
        assert known is None


def test_range_check_still_runs_where_rev_parse_reads_nothing(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    first = repo.commit("first", ("a.py", "x = 1\n"))
    repo.commit("second", ("b.py", "x = 2\n"))
    found = discover(str(repo.path))
    assert _read_by_git(found, "HEAD~1..HEAD") and _read_by_git(found, "HEAD^")
    assert not _read_by_git(found, f"{first}..HEAD") and not _read_by_git(found, "main")
    assert _resolve(found, "HEAD~1..HEAD") == [repo.git("rev-parse", "HEAD"), f"^{first}"]
    # A ref to an object that is not here: rev-parse passes its id through unread.
    missing = "1" * 40
    (repo.path / ".git" / "refs" / "heads" / "gone").write_text(missing + "\n")
    for rev in ("gone", "HEAD~1..gone", f"{missing}..HEAD"):
        with pytest.raises(Exception, match="unknown revision"):
            _resolve(found, rev)


def test_framework_hook_asks_git_only_for_the_files_it_names(tmp_path: Path) -> None:
    """``keyscan hook pre-commit FILE...``: ``ls-files`` is given the files (literal
    pathspecs), not the whole index; the caller's pathspec settings change nothing."""
    repo = Repo(tmp_path / "repo")
    repo.commit("first", *((f"f{i}.py", f"x = {i}\n") for i in range(50)))
    secret = key("project")
    repo.write("[p]*.py", f'P = "{secret}"\n')  # a name that is also a glob
    repo.git("add", "[p]*.py")
    repo.write("[p]*.py", "P = None\n")  # the key is only in what would be committed
    env, log = _counting_git(tmp_path)
    for extra in ({}, {"GIT_LITERAL_PATHSPECS": "1"}, {"GIT_GLOB_PATHSPECS": "1"},
                  {"GIT_ICASE_PATHSPECS": "1"}):  # fmt: skip
        log.unlink(missing_ok=True)
        proc = _run(["hook", "pre-commit", "[p]*.py", "f1.py"], repo.path, {**env, **extra})
        assert proc.returncode == 1, (extra, proc.stderr)
        assert redact(secret) in proc.stdout and secret not in proc.stdout + proc.stderr
        calls = [line for line in log.read_text().splitlines() if " ls-files " in f" {line} "]
        assert len(calls) == 1 and calls[0].endswith("-- :(literal)[p]*.py :(literal)f1.py")


def test_index_differs_reads_the_whole_index_for_many_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond PATHSPECS_MAX files the whole index is listed: the same answer."""
    from keyscan.commands import quick

    repo = Repo(tmp_path / "repo")
    repo.commit("first", *((f"f{i}.py", f"x = {i}\n") for i in range(5)))
    repo.write("f1.py", "x = 10\n")
    repo.git("add", "f1.py")
    repo.write("f1.py", "x = 1\n")
    repo.write("f3.py", "x = 30\n")  # not staged: the index still holds the commit's f3
    git = discover(str(repo.path))
    monkeypatch.chdir(repo.path)
    names = [f"f{i}.py" for i in range(5)]
    few = quick._index_differs(git, names)
    monkeypatch.setattr(quick, "PATHSPECS_MAX", 2)
    assert quick._index_differs(git, names) == few == ["f1.py", "f3.py"]


def test_hook_starts_no_thread(tmp_path: Path) -> None:
    """The hook's git commands are watched from the reading thread (plumbing._read_to_end):
    no watchdog thread is started (each start is a wait for the scheduler, milliseconds on a
    loaded machine)."""
    repo = Repo(tmp_path / "repo")
    repo.commit("first", ("a.py", "x = 1\n"))
    secret = key("project")
    repo.write("k.py", f'K = "{secret}"\n')
    repo.git("add", "k.py")
    out = tmp_path / "threads.txt"
    code = (
        "import atexit, threading\n"
        "started = []\n"
        "real = threading.Thread.start\n"
        "def start(self):\n"
        "    started.append(self.name)\n"
        "    real(self)\n"
        "threading.Thread.start = start\n"
        f"atexit.register(lambda: open({str(out)!r}, 'w').write(repr(started)))\n"
        "from keyscan.cli import main\n"
        "main(['hook', 'pre-commit'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo.path, capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert redact(secret) in proc.stdout
    assert out.read_text() == "[]"


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads started from now on in this test (not the ones an earlier
    test in this worker left)."""
    names: list[str] = []
    real_start = threading.Thread.start

    def recording_start(self: threading.Thread) -> None:
        names.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", recording_start)
    return names


def test_watchdog_without_a_thread_stops_a_stuck_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[str]
) -> None:
    """run_git's thread-free watchdog: a git stuck on a FIFO is killed after the timeout
    (GitTimeout, one line), a slow but progressing one is not."""
    from keyscan.git import plumbing

    monkeypatch.setenv("KEYSCAN_GIT_TIMEOUT", "1")
    repo = Repo(tmp_path / "repo")
    repo.commit("first", ("a.py", "x = 1\n"))
    git = discover(str(repo.path))
    fifo = tmp_path / "included.cfg"
    os.mkfifo(fifo)
    with pytest.raises(plumbing.GitTimeout, match="made no progress for 1 s"):
        git.run("-c", f"include.path={fifo}", "config", "--list")
    assert started == []
    # Slow output that keeps coming is progress: never killed.
    script = tmp_path / "slow.sh"
    script.write_text("#!/bin/sh\nfor i in 1 2 3 4 5 6; do echo $i; sleep 0.3; done\n")
    script.chmod(0o755)
    env = plumbing.git_env()
    proc = plumbing.run_git([str(script)], "slow", str(tmp_path), cwd=str(tmp_path), env=env)
    assert proc.stdout.split() == [b"1", b"2", b"3", b"4", b"5", b"6"]


def test_refs_of_a_resolved_range_are_listed_beside_the_scan(tmp_path: Path) -> None:
    """A range discover resolved: the refs are listed in a thread while the walk and the
    scan go on (``later_refs``), the same refs as ``list_refs``; the report counts them
    and names the refs that reach a key as before."""
    from keyscan.git.options import GitScanOptions
    from keyscan.git.scope import list_refs, resolve_scope
    from tests.git_helpers import cli_json

    repo = Repo(tmp_path / "repo")
    first = repo.commit("first", ("a.py", "x = 1\n"))
    secret = key("project")
    repo.commit("key", ("k.py", f'K = "{secret}"\n'))
    repo.git("tag", "v1")
    repo.git("branch", "topic", first)
    plain = discover(str(repo.path))
    combined = discover(str(repo.path), "HEAD~1..HEAD")
    options = GitScanOptions(range="HEAD~1..HEAD")
    later = resolve_scope(combined, options, later_refs=True)
    assert later.refs_listing is not None  # listed beside what comes next
    assert later.wait_refs() == list_refs(plain) and len(later.refs) == 3
    assert later.refs_listing is None
    now = resolve_scope(plain, options, later_refs=True)  # nothing resolved: as before
    assert now.refs_listing is None and now.refs == later.refs
    assert (now.include, now.exclude) == (later.include, later.exclude)
    assert not [t for t in threading.enumerate() if t.name == "keyscan-refs"]
    code, doc, err = cli_json("git", "--range", "HEAD~1..HEAD", cwd=repo.path)
    assert code == 1, err
    assert doc["scan"]["stats"]["refs"] == 3
    refs = doc["findings"][0]["extra"]["git"]["refs"]
    assert sorted(refs) == ["refs/heads/main", "refs/tags/v1"]


def test_a_started_git_answers_later_through_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[str]
) -> None:
    """``GitRepo.start`` (the history walk beside the pack reader): git's input, output and
    errors are files, not pipes (a pool forked meanwhile holds no pipe end of it); no
    thread is started; ``result`` answers status, output and errors; a stuck git is
    stopped after the timeout (GitTimeout), ``stop`` kills one at once."""
    from keyscan.git import plumbing

    monkeypatch.setenv("KEYSCAN_GIT_TIMEOUT", "1")
    repo = Repo(tmp_path / "repo")
    for i in range(3):
        repo.commit(f"c{i}", (f"f{i}.py", f"x = {i}\n"))
    git = discover(str(repo.path))
    walk = git.start("rev-list", "--stdin", input=b"HEAD\n")
    done = walk.result()
    assert walk.ended() and done.returncode == 0 and done.stderr == b""
    assert done.stdout.split() == repo.git("rev-list", "HEAD").encode().split()
    bad = git.start("rev-list", "--stdin", input=b"no-such-ref\n").result()
    assert bad.returncode != 0 and b"no-such-ref" in bad.stderr and bad.stdout == b""
    fifo = tmp_path / "included.cfg"
    os.mkfifo(fifo)
    stuck = git.start("-c", f"include.path={fifo}", "config", "--list", input=b"")
    if sys.platform.startswith("linux"):
        ends = [os.readlink(f"/proc/{stuck.proc.pid}/fd/{fd}") for fd in (0, 1, 2)]
        assert all(end.startswith("/memfd:keyscan-git-") for end in ends), ends
    assert not stuck.ended()
    with pytest.raises(plumbing.GitTimeout, match="made no progress for 1 s"):
        stuck.result()
    assert stuck.ended()
    again = git.start("-c", f"include.path={fifo}", "config", "--list", input=b"")
    again.stop()
    assert again.ended() and again.proc.returncode == -signal.SIGKILL
    assert started == []
