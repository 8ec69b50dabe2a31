"""The policy of a CI run never comes from the changes under review, and every config,
baseline or rule file is a regular file of bounded size."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from keyscan.keygen import key
from keyscan.models import fingerprint_of
from tests.git_helpers import Repo
from tests.test_ci import clean_env, event, found, keyscan_ci


@pytest.fixture
def pr(tmp_path: Path) -> dict[str, Any]:
    """main: a config excluding nothing; feature: a key, and a config change that allows it."""
    repo = Repo(tmp_path / "repo")
    base = repo.commit("init", (".keyscan.yaml", "version: 1\nexclude: ['docs/**']\n"))
    secret = key("project")
    head = repo.commit(
        "add a key and allow it",
        ("app.env", f"OPENAI_API_KEY={secret}\n"),
        (
            ".keyscan.yaml",
            "version: 1\nexclude: ['docs/**']\n"
            f"allow:\n  - fingerprint: {fingerprint_of(secret)}\n    reason: trust me\n",
        ),
    )
    ev = event(
        tmp_path,
        {"number": 9, "pull_request": {"base": {"sha": base}, "head": {"sha": head}}},
    )
    return {"repo": repo, "base": base, "head": head, "secret": secret, "event": ev}


def gh_pr(pr: dict[str, Any], *args: str) -> tuple[int, dict[str, Any], str]:
    return keyscan_ci(
        pr["repo"].path,
        *args,
        GITHUB_ACTIONS="true",
        GITHUB_EVENT_NAME="pull_request",
        GITHUB_EVENT_PATH=pr["event"],
    )


def test_pull_request_cannot_allow_its_own_key(pr: dict[str, Any]) -> None:
    code, doc, err = gh_pr(pr)
    assert code == 1, err
    assert found(doc) == {fingerprint_of(pr["secret"])}
    assert f"policy: .keyscan.yaml of base commit {pr['base'][:12]}" in err
    assert doc["scan"]["stats"]["ci"]["policy"].startswith(".keyscan.yaml of base commit")
    # --full in a pull request's run does not bring the policy back from the work tree.
    code, doc, err = gh_pr(pr, "--full")
    assert code == 1 and fingerprint_of(pr["secret"]) in found(doc), err


def test_base_policy_still_applies(pr: dict[str, Any]) -> None:
    """The base commit's own allow entries, baseline and exclusions keep working."""
    repo: Repo = pr["repo"]
    old = key("project")
    base = repo.commit(
        "base policy", (".keyscan.yaml", "version: 1\nexclude: ['docs/**']\n"),
        ("docs/old.md", f"{old}\n"),
    )
    secret = key("legacy")
    head = repo.commit("key in docs", ("docs/new.md", f"{secret}\n"))
    ev = event(repo.path.parent, {"number": 1, "pull_request": {"base": {"sha": base},
                                                                 "head": {"sha": head}}})
    code, doc, err = keyscan_ci(repo.path, GITHUB_ACTIONS="true",
                                GITHUB_EVENT_NAME="pull_request", GITHUB_EVENT_PATH=ev)
    assert code == 0 and found(doc) == set(), err  # docs/** is excluded by the base policy


def test_explicit_config_wins(pr: dict[str, Any], tmp_path: Path) -> None:
    cfg = tmp_path / "trusted.yaml"
    cfg.write_text(f"version: 1\nallow:\n  - fingerprint: {fingerprint_of(pr['secret'])}\n")
    code, doc, err = gh_pr(pr, "--config", str(cfg))
    assert code == 0 and doc["scan"]["suppressed"] == 1, err
    assert f"policy: --config {cfg}" in err


def test_push_policy_comes_from_before(pr: dict[str, Any], tmp_path: Path) -> None:
    ev = event(tmp_path, {"before": pr["base"], "after": pr["head"]})
    code, doc, err = keyscan_ci(pr["repo"].path, GITHUB_ACTIONS="true",
                                GITHUB_EVENT_NAME="push", GITHUB_EVENT_PATH=ev)
    assert code == 1 and found(doc) == {fingerprint_of(pr["secret"])}, err
    assert f"of base commit {pr['base'][:12]}" in err


def test_gitlab_merge_request_policy_from_base(pr: dict[str, Any]) -> None:
    code, doc, err = keyscan_ci(
        pr["repo"].path, GITLAB_CI="true", CI_MERGE_REQUEST_DIFF_BASE_SHA=pr["base"],
        CI_MERGE_REQUEST_IID="4", CI_COMMIT_SHA=pr["head"],
    )
    assert code == 1 and found(doc) == {fingerprint_of(pr["secret"])}, err


def test_pull_request_baseline_dev_zero_is_not_read(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    base = repo.commit("init", ("README", "hi\n"))
    secret = key("project")
    head = repo.commit(
        "key", ("app.env", f"K={secret}\n"), (".keyscan.yaml", "baseline: /dev/zero\n")
    )
    ev = event(tmp_path, {"number": 3, "pull_request": {"base": {"sha": base},
                                                         "head": {"sha": head}}})
    code, doc, err = keyscan_ci(repo.path, GITHUB_ACTIONS="true",
                                GITHUB_EVENT_NAME="pull_request", GITHUB_EVENT_PATH=ev)
    assert "MemoryError" not in err
    assert code == 1 and found(doc) == {fingerprint_of(secret)}, err
    assert f"none (base commit {base[:12]} has no .keyscan.yaml)" in err


def run_cli(cwd: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args], cwd=cwd, capture_output=True, text=True,
        env=clean_env(), timeout=timeout,
    )


def test_work_tree_baseline_dev_zero_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".keyscan.yaml").write_text("baseline: /dev/zero\n")
    (tmp_path / "app.env").write_text(f"K={key('project')}\n")
    proc = run_cli(tmp_path, "scan", ".")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "keyscan: error: /dev/zero: baseline is not a regular file: refusing to read it"
    )


def test_fifo_config_exits_2_quickly(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    (tmp_path / "app.env").write_text("nothing\n")
    started = time.monotonic()
    proc = run_cli(tmp_path, "scan", ".", "--config", str(fifo), timeout=20)
    assert time.monotonic() - started < 15
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line == f"keyscan: error: {fifo}: config file is not a regular file: refusing to read it"
    # Found automatically in the work tree: the same.
    os.unlink(fifo)
    os.mkfifo(tmp_path / ".keyscan.yaml")
    proc = run_cli(tmp_path, "scan", ".", timeout=20)
    assert proc.returncode == 2 and "not a regular file" in proc.stderr


def test_oversized_files_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# x\n" * (300 * 1024))  # 1.2 MiB of comments
    (tmp_path / "app.env").write_text("nothing\n")
    proc = run_cli(tmp_path, "scan", ".", "--config", str(big))
    assert proc.returncode == 2
    assert "config file is larger than 1 MiB: refusing to read it" in proc.stderr
    rules = tmp_path / "rules"
    rules.mkdir()
    os.mkfifo(rules / "r.yaml")
    for given in (rules, rules / "r.yaml"):
        proc = run_cli(tmp_path, "scan", "app.env", "--no-config", "--rules", str(given))
        assert proc.returncode == 2
        assert proc.stderr.strip() == (
            f"keyscan: error: {rules / 'r.yaml'}: rule file is not a regular file: "
            "refusing to read it"
        )


def test_base_commit_policy_files_must_be_regular(tmp_path: Path) -> None:
    """A symlinked config in the base tree is refused, not followed (it could name any file
    of the runner)."""
    repo = Repo(tmp_path / "repo")
    os.symlink("/etc/hostname", repo.path / ".keyscan.yaml")
    repo.git("add", ".keyscan.yaml")
    base = repo.commit("link")
    head = repo.commit("key", ("app.env", f"K={key('project')}\n"))
    ev = event(tmp_path, {"number": 3, "pull_request": {"base": {"sha": base},
                                                         "head": {"sha": head}}})
    code, _, err = keyscan_ci(repo.path, GITHUB_ACTIONS="true",
                              GITHUB_EVENT_NAME="pull_request", GITHUB_EVENT_PATH=ev)
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        f"keyscan: error: {base[:12]}:.keyscan.yaml: config file is not a regular file: "
        "refusing to read it"
    )


def test_pre_commit_range_uses_the_base_policy(pr: dict[str, Any]) -> None:
    env = clean_env(PRE_COMMIT_FROM_REF=pr["base"], PRE_COMMIT_TO_REF=pr["head"])
    proc = subprocess.run(
        [sys.executable, "-m", "keyscan", "hook", "pre-commit"], cwd=pr["repo"].path,
        capture_output=True, text=True, env=env,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"policy: .keyscan.yaml of base commit {pr['base'][:12]}" in proc.stderr
