"""The one git layer (issue 12, item 2 and the git output items).

* The caller's git environment (``GIT_DIR``, ``GIT_WORK_TREE``, ``GIT_INDEX_FILE``,
  ``GIT_CONFIG_COUNT``/``KEY_0``/``VALUE_0``, ``GIT_CONFIG_PARAMETERS``), pointing at another
  repository holding a different key, changes nothing for ``keyscan scan``, ``keyscan hook
  pre-commit`` (staged) and ``keyscan ci``. ``keyscan git`` and ``keyscan audit`` are covered
  by ``tests/security/test_git_safety.py::test_callers_git_environment_changes_nothing``.
* The CI and hook scope plans are pure functions of (repository, environment, stdin lines).
* ``keyscan git`` says which commit removed a key, and which branch tips other than HEAD
  still hold one.

Repositories are real (``git`` in temp dirs); keys come from ``keyscan.keygen`` at run time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from keyscan.keygen import key
from keyscan.models import fingerprint_of
from tests.git_helpers import ENV_TEMPLATE, Repo

# Variables that tell a program it runs in CI or under pre-commit: never inherited.
_FOREIGN = ("GITHUB_", "GITLAB", "CI_", "RUNNER_", "PRE_COMMIT", "GIT_")


# A home of its own for every test (no user git config, caches or state).
pytestmark = pytest.mark.usefixtures("isolated_home")


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess: a clean environment plus ``env``."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN) and k != "CI"}
    full.update(ENV_TEMPLATE, NO_COLOR="1", XDG_CACHE_HOME=str(cwd / ".cache"))
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        cwd=cwd, env=full, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def marker_script(tmp_path: Path) -> tuple[Path, Path]:
    """A program that leaves a marker file when anything runs it."""
    marker = tmp_path / "evil.ran"
    script = tmp_path / "evil.sh"
    script.write_text(f'#!/bin/sh\necho "$0 $*" >> {marker}\nexit 0\n')
    script.chmod(0o755)
    return script, marker


# --------------------------------------------------------------------------------------------
# The caller's git environment changes nothing


def _repos(tmp_path: Path) -> dict[str, Any]:
    """The repository scanned (a key in history, another staged) and a decoy holding other
    keys (committed and staged), whose git dir, work tree and index the environment names."""
    repo = Repo(tmp_path / "repo")
    base = repo.commit("base", ("README.md", "hello\n"))
    committed = key("project")
    head = repo.commit("leak", ("a.env", f"OPENAI_API_KEY={committed}\n"))
    staged = key("svcacct")
    repo.write("s.env", f"K={staged}\n")
    repo.git("add", "s.env")
    decoy = Repo(tmp_path / "decoy")
    decoy_committed = key("admin")
    decoy.commit("decoy", ("d.env", f"K={decoy_committed}\n"))
    decoy_staged = key("legacy")
    decoy.write("e.env", f"K={decoy_staged}\n")
    decoy.git("add", "e.env")
    return {
        "repo": repo, "decoy": decoy, "base": base, "head": head,
        "committed": committed, "staged": staged,
        "decoy_keys": {fingerprint_of(decoy_committed), fingerprint_of(decoy_staged)},
    }  # fmt: skip


def _environments(decoy: Repo, script: Path) -> dict[str, dict[str, str]]:
    dot = decoy.path / ".git"
    return {
        "GIT_DIR": {"GIT_DIR": str(dot)},
        "GIT_WORK_TREE": {"GIT_WORK_TREE": str(decoy.path)},
        "GIT_INDEX_FILE": {"GIT_INDEX_FILE": str(dot / "index")},
        "GIT_CONFIG_COUNT": {
            "GIT_CONFIG_COUNT": "3",
            "GIT_CONFIG_KEY_0": "gpg.program",
            "GIT_CONFIG_VALUE_0": str(script),
            "GIT_CONFIG_KEY_1": "log.showSignature",
            "GIT_CONFIG_VALUE_1": "true",
            "GIT_CONFIG_KEY_2": "core.fsmonitor",
            "GIT_CONFIG_VALUE_2": str(script),
        },
        "GIT_CONFIG_PARAMETERS": {
            "GIT_CONFIG_PARAMETERS": f"'core.fsmonitor'='{script}' 'core.hooksPath'='{dot}' "
            f"'gpg.program'='{script}' 'log.showsignature'='true'"
        },
        "all of them": {
            "GIT_DIR": str(dot),
            "GIT_WORK_TREE": str(decoy.path),
            "GIT_INDEX_FILE": str(dot / "index"),
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "core.fsmonitor",
            "GIT_CONFIG_VALUE_0": str(script),
            "GIT_CONFIG_PARAMETERS": f"'gpg.program'='{script}' 'log.showsignature'='true'",
        },
    }


def _github_push(tmp_path: Path, before: str, after: str) -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"before": before, "after": after}))
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_SHA": after,
    }


def _outcome(proc: subprocess.CompletedProcess[str]) -> tuple[int, list[str], Any]:
    """(exit code, fingerprints found, scan stats but timings) of a JSON report."""
    doc = json.loads(proc.stdout)
    stats = {k: v for k, v in doc["scan"]["stats"].items() if k != "seconds"}
    return proc.returncode, sorted(f["fingerprint"] for f in doc["findings"]), stats


def _commands(tmp_path: Path, r: dict[str, Any]) -> dict[str, tuple[list[str], dict[str, str]]]:
    repo: Repo = r["repo"]
    return {
        "scan": (["scan", "--no-config", "-f", "json", str(repo.path)], {}),
        "hook pre-commit": (["hook", "pre-commit", "--no-config", "-f", "json"], {}),
        "ci": (
            ["ci", "--no-config", "-f", "json"],
            _github_push(tmp_path, r["base"], r["head"]),
        ),
    }


@pytest.mark.parametrize(
    "variant",
    ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_CONFIG_COUNT", "GIT_CONFIG_PARAMETERS",
     "all of them"],
)  # fmt: skip
def test_callers_git_environment_changes_nothing_for_scan_hook_and_ci(
    tmp_path: Path, variant: str
) -> None:
    r = _repos(tmp_path)
    repo: Repo = r["repo"]
    script, marker = marker_script(tmp_path)
    redirect = _environments(r["decoy"], script)[variant]
    expected = {
        "scan": [fingerprint_of(r["committed"]), fingerprint_of(r["staged"])],
        "hook pre-commit": [fingerprint_of(r["staged"])],
        "ci": [fingerprint_of(r["committed"])],
    }
    for name, (args, env) in _commands(tmp_path, r).items():
        plain = run(*args, cwd=repo.path, env=env)
        assert plain.returncode == 1, (name, plain.stderr)
        code, found, stats = _outcome(plain)
        assert found == sorted(expected[name]), name
        proc = run(*args, cwd=repo.path, env={**env, **redirect})
        assert proc.returncode == 1, (name, variant, proc.stderr)
        assert _outcome(proc) == (code, found, stats), (name, variant, proc.stderr)
        assert not set(found) & r["decoy_keys"]
    assert not marker.exists(), marker.read_text()


def test_staged_scan_ignores_another_repositorys_index_but_keeps_its_own(
    tmp_path: Path,
) -> None:
    """GIT_INDEX_FILE is honoured for a temporary index of this repository (git commit's
    partial commits) and ignored when it is another repository's index."""
    r = _repos(tmp_path)
    repo: Repo = r["repo"]
    own = repo.path / ".git" / "next-index-1.lock"
    env = dict(repo.env(), GIT_INDEX_FILE=str(own))
    subprocess.run(["git", "read-tree", "HEAD"], cwd=repo.path, env=env, check=True)
    proc = run("hook", "pre-commit", "--no-config", "-f", "json", cwd=repo.path,
               env={"GIT_INDEX_FILE": str(own)})  # fmt: skip
    # That index holds HEAD's tree only: nothing staged in it (inside a commit: exit 0).
    assert proc.returncode == 0, proc.stderr
    assert "nothing is staged" in proc.stderr
    foreign = r["decoy"].path / ".git" / "index"
    proc = run("git", "--staged", "--no-config", "-f", "json", cwd=repo.path,
               env={"GIT_INDEX_FILE": str(foreign)})  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert _outcome(proc)[1] == [fingerprint_of(r["staged"])]


# --------------------------------------------------------------------------------------------
# The CI and hook plans are pure functions of (repository, environment, stdin lines)


def _ci_repo(tmp_path: Path) -> tuple[Repo, list[str]]:
    repo = Repo(tmp_path / "repo")
    shas = [repo.commit(f"c{i}", (f"f{i}.txt", f"{i}\n")) for i in range(3)]
    repo.git("update-ref", "refs/remotes/origin/main", shas[1])
    return repo, shas


def test_ci_plans_are_pure_functions_of_repository_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keyscan.git.plumbing import discover
    from keyscan.git.scope import plan_for

    repo, shas = _ci_repo(tmp_path)
    git_repo = discover(str(repo.path))
    push = _github_push(tmp_path, shas[0], shas[2])
    gitlab = {"GITLAB_CI": "true", "CI_COMMIT_BRANCH": "main", "CI_COMMIT_SHA": shas[2],
              "CI_COMMIT_BEFORE_SHA": "0" * 40}  # fmt: skip
    cases: list[tuple[dict[str, str], str | None, bool]] = [
        (push, None, False), (gitlab, None, False), ({}, None, False), (push, shas[1], False),
        (push, None, True),
    ]  # fmt: skip
    plans = [plan_for(git_repo, env, since, full) for env, since, full in cases]
    assert plans[0].scope == [f"{shas[0]}..{shas[2]}"] and plans[0].policy_rev == shas[0]
    assert plans[1].scope == [shas[2]] and plans[1].exclude == [shas[1]]
    assert plans[2].provider == "local" and plans[2].policy == "worktree"
    # The process environment says something else entirely: the plans do not change.
    other = _github_push(tmp_path / "home", shas[1], shas[1])
    for name, value in {**other, "GITLAB_CI": "true", "CI_COMMIT_SHA": shas[0],
                        "CI_MERGE_REQUEST_DIFF_BASE_SHA": shas[0]}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    assert [plan_for(git_repo, env, since, full) for env, since, full in cases] == plans
    # The environment mapping passed in is only read.
    frozen = dict(push)
    plan_for(git_repo, push, None, False)
    assert push == frozen


def test_hook_plans_are_pure_functions_of_repository_environment_and_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keyscan.git.plumbing import discover
    from keyscan.git.scope import push_plan, push_scope, range_base

    repo, shas = _ci_repo(tmp_path)
    git_repo = discover(str(repo.path))
    zero = "0" * 40
    lines = [f"refs/heads/main {shas[2]} refs/heads/main {shas[0]}",
             f"refs/heads/new {shas[2]} refs/heads/new {zero}"]  # fmt: skip
    framework = {"PRE_COMMIT_FROM_REF": shas[0], "PRE_COMMIT_TO_REF": shas[2]}
    new_branch = {"PRE_COMMIT_FROM_REF": zero, "PRE_COMMIT_TO_REF": shas[2]}

    def plans() -> list[Any]:
        return [
            push_scope({}, lines), push_scope(framework, []), push_scope(new_branch, []),
            push_scope({}, []), range_base(git_repo, framework), range_base(git_repo, new_branch),
            push_plan(git_repo, [f"{shas[0]}..{shas[2]}", shas[2]], True),
            push_plan(git_repo, [f"{'1' * 40}..{shas[2]}"], False),
        ]  # fmt: skip

    first = plans()
    assert first[0] == ([f"{shas[0]}..{shas[2]}", shas[2]], True)
    assert first[1] == ([f"{shas[0]}..{shas[2]}"], False)
    assert first[2] == ([shas[2]], True)
    assert first[3] == (["HEAD"], True)
    assert first[4] == shas[0] and first[5] == shas[1]
    assert first[6] == ([f"{shas[0]}..{shas[2]}", shas[2]], [shas[1]])
    assert first[7] == ([shas[2]], [shas[1]])  # the remote's old tip is not here
    for name, value in {**framework, "PRE_COMMIT_ORIGIN": shas[1],
                        "PRE_COMMIT_SOURCE": shas[1]}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    assert plans() == first
    with pytest.raises(ValueError, match="pre-push input line 1"):
        push_scope({}, ["not the protocol"])


# --------------------------------------------------------------------------------------------
# keyscan git: which commit removed a key; which branch tips still hold one


def test_git_report_says_which_commit_removed_a_key(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.commit("base", ("README.md", "hello\n"))
    secret = key("project")
    added = repo.commit("add config", ("app.env", f"K={secret}\n"))
    repo.commit("edit config", ("app.env", f"K={secret}\nDEBUG=1\n"))  # still there
    repo.rm("app.env")
    removed = repo.commit("drop the key")
    repo.commit("later", ("README.md", "bye\n"))
    proc = run("git", "--no-config", "-f", "json", str(repo.path), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    (finding,) = json.loads(proc.stdout)["findings"]
    git = finding["extra"]["git"]
    assert git["first_commit"] == added and git["present_at_head"] is False
    assert git["removed_in"]["sha"] == removed
    assert git["removed_in"]["subject"] == "drop the key"
    assert git["removed_in"]["author_name"] == "Alice Author"
    assert "branch_tips" not in git
    proc = run("git", "--no-config", str(repo.path), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert f"not at HEAD (removed in {removed[:12]} by Alice Author" in proc.stdout
    assert "drop the key" in proc.stdout
    # Still at HEAD: nothing was removed.
    repo.commit("again", ("other.env", f"K={secret}\n"))
    proc = run("git", "--no-config", "-f", "json", str(repo.path), cwd=tmp_path)
    git = json.loads(proc.stdout)["findings"][0]["extra"]["git"]
    assert git["present_at_head"] is True and "removed_in" not in git


def test_git_report_says_a_key_is_still_at_the_tip_of_another_branch(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.commit("base", ("README.md", "hello\n"))
    on_feature, gone_from_topic = key("project"), key("svcacct")
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit("feature key", ("conf/k.env", f"K={on_feature}\n"))
    repo.git("checkout", "-q", "-b", "topic", "main")
    repo.commit("topic key", ("t.env", f"K={gone_from_topic}\n"))
    repo.rm("t.env")
    repo.commit("topic drops it")
    repo.git("checkout", "-q", "main")
    repo.commit("main moves on", ("README.md", "bye\n"))
    proc = run("git", "--no-config", "-f", "json", str(repo.path), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    found = {f["fingerprint"]: f["extra"]["git"] for f in json.loads(proc.stdout)["findings"]}
    feature = found[fingerprint_of(on_feature)]
    assert feature["present_at_head"] is False
    assert feature["branch_tips"] == [{"ref": "refs/heads/feature", "paths": ["conf/k.env"]}]
    assert "removed_in" not in feature  # never on HEAD's history
    topic = found[fingerprint_of(gone_from_topic)]
    assert "branch_tips" not in topic  # in topic's history, not at its tip
    proc = run("git", "--no-config", str(repo.path), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "still at the tip of feature in conf/k.env" in proc.stdout
    assert proc.stdout.count("still at the tip of") == 1
