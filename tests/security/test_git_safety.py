"""Git safety: nothing from a scanned repository (or the caller's git environment) runs or
redirects keyscan; unknown transports are refused; a FIFO under ``.git`` cannot hang a scan;
every stash entry is history.

Repositories are real (``git`` in temp dirs); keys come from ``keyscan.keygen`` at run time.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keyscan.keygen import key
from keyscan.models import fingerprint_of
from tests.git_helpers import ENV_TEMPLATE, Repo

ROOT = Path(__file__).resolve().parents[2]


# A home of its own for every test (no user git config, caches or state).
pytestmark = pytest.mark.usefixtures("isolated_home")


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, with the caller's environment plus ``env``."""
    full = dict(os.environ, **ENV_TEMPLATE)
    full["XDG_CACHE_HOME"] = str(cwd / ".cache")
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def marker_script(tmp_path: Path, name: str = "evil.sh") -> tuple[Path, Path]:
    """A program that leaves a marker file when anything runs it."""
    marker = tmp_path / f"{name}.ran"
    script = tmp_path / name
    script.write_text(f'#!/bin/sh\necho "$0 $*" >> {marker}\nexit 0\n')
    script.chmod(0o755)
    return script, marker


def signed_commit_on_head(repo: Repo) -> str:
    """A commit carrying a gpgsig header on top of HEAD (so ``log.showSignature`` calls
    ``gpg.program`` for it when anything runs ``git log HEAD``)."""
    tree = repo.git("rev-parse", "HEAD^{tree}")
    parent = repo.git("rev-parse", "HEAD")
    raw = (
        f"tree {tree}\nparent {parent}\nauthor A <a@x> 1800000000 +0000\n"
        f"committer A <a@x> 1800000000 +0000\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n"
        f" abc\n -----END PGP SIGNATURE-----\n\nsigned\n"
    )
    signed = repo.git("hash-object", "-t", "commit", "-w", "--stdin", input=raw.encode())
    repo.git("update-ref", "refs/heads/main", signed)
    return signed


def leaky_repo(path: Path) -> tuple[Repo, str]:
    """A key added then removed (so the audit asks which commit removed it), then a signed
    commit on HEAD."""
    secret = key("project")
    repo = Repo(path)
    repo.commit("base", ("README.md", "hello\n"))
    repo.commit("leak", ("a.env", f"OPENAI_API_KEY={secret}\n"))
    repo.rm("a.env")
    repo.commit("remove")
    signed_commit_on_head(repo)
    return repo, secret


def tips(repo: Repo) -> set[str]:
    out = repo.git("for-each-ref", "--format=%(objectname)")
    return {*out.split(), repo.git("rev-parse", "HEAD")}


def seen_commits(db: Path) -> set[str]:
    con = sqlite3.connect(db)
    try:
        return {str(r[0]) for r in con.execute("SELECT sha FROM seen_commits")}
    finally:
        con.close()


# --------------------------------------------------------------------------------------------
# Item 2: the audit runs nothing from the repository; only supported transports


def test_audit_never_runs_the_repositorys_gpg_program(tmp_path: Path) -> None:
    repo, secret = leaky_repo(tmp_path / "repo")
    script, marker = marker_script(tmp_path)
    for name, value in [
        ("gpg.program", str(script)),
        ("log.showSignature", "true"),
        ("core.fsmonitor", str(script)),
        ("diff.external", str(script)),
        ("core.pager", str(script)),
    ]:
        repo.git("config", name, value)
    db = tmp_path / "a.db"
    proc = run("audit", str(repo.path), "--db", str(db), "--no-config", "-f", "json",
               cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert not marker.exists(), marker.read_text()
    doc = json.loads(proc.stdout)
    assert doc["keys"] == 1 and doc["repositories"][0]["status"] == "ok"
    # The same through a file:// URL (the clone and every command on it).
    proc = run("audit", f"file://{repo.path}", "--db", str(tmp_path / "b.db"), "--no-config",
               cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert not marker.exists(), marker.read_text()
    # The plant is real: plain git runs it.
    subprocess.run(["git", "log", "-1", "HEAD"], cwd=repo.path, env=repo.env(),
                   capture_output=True)  # fmt: skip
    assert marker.exists()
    assert secret not in proc.stdout + proc.stderr


@pytest.mark.parametrize("command", ["audit", "git"])
def test_unknown_transports_are_refused_before_git_runs(tmp_path: Path, command: str) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _helper, marker = marker_script(bindir, "git-remote-evil")
    ext_marker = tmp_path / "ext.ran"
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    # The plant is real: plain git runs the helper for these URLs.
    subprocess.run(["git", "ls-remote", "evil://x"], cwd=tmp_path, capture_output=True,
                   env=dict(os.environ, **env), timeout=60)  # fmt: skip
    assert marker.exists()
    marker.unlink()
    urls = ["evil::x", "evil://x", "EVIL://host/x", "ext::sh -c touch% " + str(ext_marker),
            "fd::3"]  # fmt: skip
    for url in urls:
        extra = ["--db", str(tmp_path / "a.db")] if command == "audit" else []
        proc = run(command, url, *extra, "--no-config", cwd=tmp_path, env=env)
        assert proc.returncode == 2, (url, proc.stdout, proc.stderr)
        assert not marker.exists(), (url, marker.read_text())
        assert not ext_marker.exists(), url
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("keyscan: error:")]
        assert len(errors) == 1, (url, proc.stderr)
        assert "unsupported transport" in errors[0], (url, errors)


def test_supported_transports_still_clone(tmp_path: Path) -> None:
    repo, _ = leaky_repo(tmp_path / "repo")
    proc = run("git", "--no-config", f"file://{repo.path}", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    proc = run("audit", f"file://{repo.path}", "--db", str(tmp_path / "a.db"), "--no-config",
               cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1, proc.stderr


def test_only_the_plumbing_module_starts_processes() -> None:
    """Every git command goes through keyscan.git.plumbing (safe config, environment,
    deadline): no other module of keyscan starts a process."""
    pattern = re.compile(r"subprocess\.(run|Popen|check_output|check_call|call)\b|os\.system|"
                         r"os\.popen|os\.exec|os\.spawn|import git\b")  # fmt: skip
    offenders = []
    for path in sorted((ROOT / "keyscan").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "keyscan/git/plumbing.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == []


# --------------------------------------------------------------------------------------------
# Item 4: the caller's git environment (set inside every git hook) redirects nothing


def _decoy(tmp_path: Path) -> Repo:
    decoy = Repo(tmp_path / "decoy")
    decoy.commit("decoy one", ("x.txt", "decoy\n"))
    decoy.commit("decoy two", ("y.txt", "decoy\n"))
    return decoy


def _redirecting_envs(tmp_path: Path, decoy: Repo, script: Path) -> dict[str, dict[str, str]]:
    dot = decoy.path / ".git"
    params = f"'gpg.program'='{script}' 'log.showsignature'='true' 'core.fsmonitor'='{script}'"
    return {
        "GIT_DIR": {"GIT_DIR": str(dot)},
        "GIT_WORK_TREE": {"GIT_WORK_TREE": str(decoy.path)},
        "GIT_INDEX_FILE": {"GIT_INDEX_FILE": str(dot / "index")},
        "GIT_CONFIG_COUNT": {
            "GIT_CONFIG_COUNT": "2",
            "GIT_CONFIG_KEY_0": "gpg.program",
            "GIT_CONFIG_VALUE_0": str(script),
            "GIT_CONFIG_KEY_1": "log.showSignature",
            "GIT_CONFIG_VALUE_1": "true",
        },
        "GIT_CONFIG_PARAMETERS": {"GIT_CONFIG_PARAMETERS": params},
        "GIT_OBJECT_DIRECTORY": {"GIT_OBJECT_DIRECTORY": str(dot / "objects")},
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": {
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(dot / "objects")
        },
        "GIT_COMMON_DIR": {"GIT_COMMON_DIR": str(dot)},
        "all of them": {
            "GIT_DIR": str(dot),
            "GIT_WORK_TREE": str(decoy.path),
            "GIT_INDEX_FILE": str(dot / "index"),
            "GIT_OBJECT_DIRECTORY": str(dot / "objects"),
            "GIT_COMMON_DIR": str(dot),
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "gpg.program",
            "GIT_CONFIG_VALUE_0": str(script),
            "GIT_CONFIG_PARAMETERS": "'log.showsignature'='true'",
        },
    }


@pytest.mark.parametrize(
    "variant",
    ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_CONFIG_COUNT", "GIT_CONFIG_PARAMETERS",
     "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR",
     "all of them"],
)  # fmt: skip
def test_callers_git_environment_changes_nothing(tmp_path: Path, variant: str) -> None:
    repo, secret = leaky_repo(tmp_path / "repo")
    decoy = _decoy(tmp_path)
    script, marker = marker_script(tmp_path)
    env = _redirecting_envs(tmp_path, decoy, script)[variant]
    expected_commits = int(repo.git("rev-list", "--count", "--all"))

    proc = run("git", "--no-config", "--format", "json", str(repo.path), cwd=tmp_path, env=env)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert [f["fingerprint"] for f in doc["findings"]] == [fingerprint_of(secret)]
    assert doc["scan"]["stats"]["commits"] == expected_commits
    assert set(doc["scan"]["stats"]["heads"]) == tips(repo)

    db = tmp_path / "a.db"
    proc = run("audit", str(repo.path), "--db", str(db), "--no-config", "-f", "json",
               cwd=tmp_path, env=env)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["repositories"][0]["status"] == "ok", doc
    assert doc["commits_scanned"] == expected_commits and doc["keys"] == 1
    # The audit remembers this repository's tips, not the decoy's: the next incremental
    # audit finds a key committed since.
    assert seen_commits(db) == tips(repo)
    later = key("svcacct")
    repo.commit("later", ("b.env", f"K={later}\n"))
    proc = run("audit", str(repo.path), "--db", str(db), "--no-config", "-f", "json",
               cwd=tmp_path, env=env)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["keys"] == 2 and doc["repositories"][0]["new_keys"] == 1, doc
    assert doc["commits_scanned"] == 1
    assert not marker.exists(), marker.read_text()


def test_staged_scan_still_honours_the_hooks_index(tmp_path: Path) -> None:
    """The one legitimate exception: --staged reads GIT_INDEX_FILE (partial commits)."""
    repo = Repo(tmp_path / "repo")
    repo.commit("base", ("README.md", "hello\n"))
    secret = key("project")
    repo.write("k.env", f"K={secret}\n")
    index = tmp_path / "other-index"
    env = dict(repo.env(), GIT_INDEX_FILE=str(index))
    subprocess.run(["git", "read-tree", "HEAD"], cwd=repo.path, env=env, check=True)
    subprocess.run(["git", "add", "k.env"], cwd=repo.path, env=env, check=True)
    assert run("git", "--staged", "--no-config", cwd=repo.path).returncode == 0
    proc = run("git", "--staged", "--no-config", cwd=repo.path,
               env={"GIT_INDEX_FILE": str(index)})  # fmt: skip
    assert proc.returncode == 1, proc.stderr


# --------------------------------------------------------------------------------------------
# Item 9: a FIFO under .git cannot hang keyscan git or keyscan audit


def _fifo_repo(tmp_path: Path, where: str) -> Repo:
    repo = Repo(tmp_path / "repo")
    repo.commit("leak", ("a.env", f"K={key('project')}\n"))
    repo.git("tag", "v1")
    dot = repo.path / ".git"
    if where == "config include":
        fifo = tmp_path / "included.cfg"
        repo.git("config", "include.path", str(fifo))
    elif where == "alternates":
        (dot / "objects" / "info").mkdir(parents=True, exist_ok=True)
        fifo = dot / "objects" / "info" / "alternates"
    elif where == "packed-refs":
        repo.git("pack-refs", "--all")
        (dot / "packed-refs").unlink()  # the refs are gone with it: the FIFO takes its place
        fifo = dot / "packed-refs"
    else:
        fifo = dot / "shallow"
    os.mkfifo(fifo)
    return repo


FIFO_PLACES = ["config include", "alternates", "packed-refs", "shallow"]


@pytest.mark.parametrize("where", FIFO_PLACES)
def test_fifo_under_git_dir_does_not_hang_git_or_audit(tmp_path: Path, where: str) -> None:
    repo = _fifo_repo(tmp_path, where)
    env = {"KEYSCAN_GIT_TIMEOUT": "2"}
    targets = [str(repo.path), f"file://{repo.path}"]
    for target in targets:
        for command in (["git", target], ["audit", target, "--db", str(tmp_path / "a.db")]):
            started = time.monotonic()
            try:
                proc = run(*command, "--no-config", cwd=tmp_path, env=env, timeout=60)
            except subprocess.TimeoutExpired:
                pytest.fail(f"keyscan {command[0]} {target} hung on a FIFO ({where})")
            assert time.monotonic() - started < 45
            assert proc.returncode == 2, (command, where, proc.stdout, proc.stderr)
            errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("keyscan: error:")]
            assert errors, (command, where, proc.stderr)
            assert any(str(repo.path) in ln for ln in errors), (command, where, errors)
            assert all("Traceback" not in ln for ln in proc.stderr.splitlines())


def test_watchdog_kills_a_stuck_object_stream_not_a_slow_consumer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The long-running cat-file stream: killed when git makes no progress (here: an
    alternates FIFO planted after the repository was opened), never for time the consumer
    spends on its side."""
    from keyscan.content import ContentOptions
    from keyscan.git.history import scan_history
    from keyscan.git.options import GitScanOptions
    from keyscan.git.plumbing import GitTimeout, ObjectReader, discover
    from keyscan.models import ScanResult
    from keyscan.rules import load_rules

    monkeypatch.setenv("KEYSCAN_GIT_TIMEOUT", "1")
    repo = Repo(tmp_path / "repo")
    blob_a = repo.git("hash-object", "-w", "--stdin", input=b"a\n")
    blob_b = repo.git("hash-object", "-w", "--stdin", input=b"b\n")
    git_repo = discover(str(repo.path))
    got = []
    for oid, _kind, _data in ObjectReader(git_repo).read(iter([blob_a, blob_b])):
        got.append(oid)
        time.sleep(2.5)  # a slow consumer: git waits on us, not the other way round
    assert got == [blob_a, blob_b]

    repo.commit("c", ("a.txt", "x\n"))
    os.mkfifo(repo.path / ".git" / "objects" / "info" / "alternates")
    started = time.monotonic()
    with pytest.raises(GitTimeout) as info:
        list(ObjectReader(git_repo).read([blob_a]))
    assert time.monotonic() - started < 30
    assert str(repo.path) in str(info.value) and "no progress" in str(info.value)
    started = time.monotonic()
    with pytest.raises(GitTimeout):
        scan_history(git_repo, GitScanOptions(jobs=1, content=ContentOptions()), load_rules(),
                     ScanResult(kind="git", targets=[str(repo.path)]))  # fmt: skip
    assert time.monotonic() - started < 30


# --------------------------------------------------------------------------------------------
# Item 15: every stash entry is history


def test_key_only_in_the_oldest_of_three_stashes(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.commit("base", ("app.py", "print(1)\n"))
    tracked, untracked = key("project"), key("svcacct")
    # The oldest stash: a key in a tracked file and one in an untracked file (-u).
    repo.write("app.py", f"print(1)\nkey = '{tracked}'\n")
    repo.write("new.env", f"K={untracked}\n")
    repo.git("stash", "push", "-u", "-q")
    for i in (2, 3):
        repo.write("app.py", f"print({i})\n")
        repo.git("stash", "push", "-q")
    assert len(repo.git("stash", "list").splitlines()) == 3
    proc = run("git", "--no-config", "--format", "json", str(repo.path), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    found = {f["fingerprint"]: f for f in doc["findings"]}
    assert set(found) == {fingerprint_of(tracked), fingerprint_of(untracked)}
    assert "stash@{2}" in found[fingerprint_of(tracked)]["extra"]["git"]["refs"]
    paths = {f["locations"][0]["path"] for f in doc["findings"]}
    assert paths == {"app.py", "new.env"}
    proc = run("audit", str(repo.path), "--db", str(tmp_path / "a.db"), "--no-config",
               "-f", "json", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["keys"] == 2
