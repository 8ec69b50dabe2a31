"""keyscan ci driven by fake CI environments over throwaway repositories, and action.yml."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from keyscan.keygen import key
from keyscan.models import fingerprint_of

ROOT = Path(__file__).resolve().parents[1]
ZERO = "0" * 40


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any real CI variables, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "GITLAB", "CI_", "RUNNER_", "PRE_COMMIT"))
        and k not in ("CI",)
    }
    env.update(
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@t.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@t.invalid",
        GIT_CONFIG_GLOBAL=os.devnull,
        NO_COLOR="1",
    )
    env.update(extra)
    return env


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=clean_env()
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def commit_key(repo: Path, name: str, family: str = "project") -> tuple[str, str]:
    """Commit a file holding a fresh key; returns (key, commit id)."""
    secret = key(family)
    (repo / name).write_text(f'KEY = "{secret}"\n')
    git(repo, "add", name)
    git(repo, "commit", "-qm", f"add {name}")
    return secret, git(repo, "rev-parse", "HEAD")


def keyscan_ci(repo: Path, *args: str, **env: str) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "keyscan", "ci", "-f", "json", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env=clean_env(**env),
    )
    assert proc.returncode in (0, 1, 2), proc.stderr
    doc = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, doc, proc.stderr


def found(doc: dict[str, Any]) -> set[str]:
    return {f["fingerprint"] for f in doc["findings"]}


@pytest.fixture
def history(tmp_path: Path) -> dict[str, Any]:
    """main: an old key (K1); feature (from main): a new key (K2)."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=clean_env())
    (repo / "README").write_text("hello\n")
    git(repo, "add", "README")
    git(repo, "commit", "-qm", "init")
    k1, c1 = commit_key(repo, "old.py")
    git(repo, "checkout", "-qb", "feature")
    k2, c2 = commit_key(repo, "new.py", "svcacct")
    return {"repo": repo, "k1": k1, "c1": c1, "k2": k2, "c2": c2, "tmp": tmp_path}


def event(tmp: Path, doc: dict[str, Any]) -> str:
    path = tmp / "event.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_github_pull_request_scans_base_to_head(history: dict[str, Any]) -> None:
    h = history
    ev = event(
        h["tmp"],
        {
            "number": 7,
            "pull_request": {"base": {"sha": h["c1"]}, "head": {"sha": h["c2"], "ref": "feature"}},
        },
    )
    code, doc, err = keyscan_ci(
        h["repo"], GITHUB_ACTIONS="true", GITHUB_EVENT_NAME="pull_request", GITHUB_EVENT_PATH=ev
    )
    assert code == 1
    assert found(doc) == {fingerprint_of(h["k2"])}
    assert f"github: scanning pull request #7 {h['c1'][:12]}..{h['c2'][:12]}" in err
    assert doc["scan"]["stats"]["ci"]["provider"] == "github"


def test_github_merge_queue_scans_base_to_head(history: dict[str, Any]) -> None:
    h = history
    ev = event(h["tmp"], {"merge_group": {"base_sha": h["c1"], "head_sha": h["c2"]}})
    code, doc, err = keyscan_ci(
        h["repo"], GITHUB_ACTIONS="true", GITHUB_EVENT_NAME="merge_group", GITHUB_EVENT_PATH=ev
    )
    assert code == 1 and found(doc) == {fingerprint_of(h["k2"])}
    assert "merge queue" in err


def test_github_push_scans_before_to_after(history: dict[str, Any]) -> None:
    h = history
    repo = h["repo"]
    k3, c3 = commit_key(repo, "third.py")
    ev = event(h["tmp"], {"before": h["c2"], "after": c3})
    code, doc, _ = keyscan_ci(
        repo, GITHUB_ACTIONS="true", GITHUB_EVENT_NAME="push", GITHUB_EVENT_PATH=ev
    )
    assert code == 1 and found(doc) == {fingerprint_of(k3)}
    # A push with nothing new in it is clean.
    ev = event(h["tmp"], {"before": h["c1"], "after": h["c1"]})
    code, doc, _ = keyscan_ci(
        repo, GITHUB_ACTIONS="true", GITHUB_EVENT_NAME="push", GITHUB_EVENT_PATH=ev
    )
    assert code == 0 and found(doc) == set()


def test_github_new_branch_push_scans_commits_no_other_remote_branch_has(
    history: dict[str, Any],
) -> None:
    h = history
    remote = h["tmp"] / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(h["repo"]), str(remote)], check=True)
    checkout = h["tmp"] / "checkout"
    subprocess.run(["git", "clone", "-q", "-b", "feature", str(remote), str(checkout)], check=True)
    assert git(checkout, "rev-parse", "origin/main") == h["c1"]
    ev = event(h["tmp"], {"before": ZERO, "after": h["c2"], "created": True})
    code, doc, err = keyscan_ci(
        checkout,
        GITHUB_ACTIONS="true",
        GITHUB_EVENT_NAME="push",
        GITHUB_EVENT_PATH=ev,
        GITHUB_REF_NAME="feature",
    )
    assert code == 1, err
    assert found(doc) == {fingerprint_of(h["k2"])}  # K1 is on origin/main already
    assert "commits not on other remote branches" in err


def test_github_deleted_branch_scans_nothing(history: dict[str, Any]) -> None:
    h = history
    ev = event(h["tmp"], {"before": h["c2"], "after": ZERO, "deleted": True})
    code, doc, err = keyscan_ci(
        h["repo"], GITHUB_ACTIONS="true", GITHUB_EVENT_NAME="push", GITHUB_EVENT_PATH=ev
    )
    assert code == 0 and doc["findings"] == [] and "deleted ref" in err


def test_github_other_events_scan_the_full_history(history: dict[str, Any]) -> None:
    h = history
    code, doc, err = keyscan_ci(h["repo"], GITHUB_ACTIONS="true", GITHUB_EVENT_NAME="schedule")
    assert code == 1
    assert found(doc) == {fingerprint_of(h["k1"]), fingerprint_of(h["k2"])}
    assert "full history" in err


def test_bad_event_file_is_an_error(history: dict[str, Any]) -> None:
    h = history
    bad = h["tmp"] / "event.json"
    bad.write_text("{not json")
    code, _, err = keyscan_ci(
        h["repo"], GITHUB_ACTIONS="true", GITHUB_EVENT_NAME="push", GITHUB_EVENT_PATH=str(bad)
    )
    assert code == 2
    [line] = err.strip().splitlines()
    assert line.startswith("keyscan: error:") and str(bad) in line


def test_gitlab_merge_request_and_push(history: dict[str, Any]) -> None:
    h = history
    code, doc, err = keyscan_ci(
        h["repo"],
        GITLAB_CI="true",
        CI_MERGE_REQUEST_DIFF_BASE_SHA=h["c1"],
        CI_MERGE_REQUEST_IID="3",
        CI_COMMIT_SHA=h["c2"],
    )
    assert code == 1 and found(doc) == {fingerprint_of(h["k2"])}
    assert "merge request !3" in err
    k3, c3 = commit_key(h["repo"], "third.py")
    code, doc, _ = keyscan_ci(
        h["repo"],
        GITLAB_CI="true",
        CI_COMMIT_BEFORE_SHA=h["c2"],
        CI_COMMIT_SHA=c3,
        CI_COMMIT_BRANCH="feature",
    )
    assert code == 1 and found(doc) == {fingerprint_of(k3)}


def test_elsewhere_full_history_or_since(history: dict[str, Any]) -> None:
    h = history
    code, doc, err = keyscan_ci(h["repo"])
    assert code == 1 and found(doc) == {fingerprint_of(h["k1"]), fingerprint_of(h["k2"])}
    assert "local: scanning full history" in err
    code, doc, _ = keyscan_ci(h["repo"], "--since", "main")
    assert code == 1 and found(doc) == {fingerprint_of(h["k2"])}
    # --full wins over the CI environment.
    code, doc, _ = keyscan_ci(h["repo"], "--full", GITHUB_ACTIONS="true", GITHUB_EVENT_NAME="push")
    assert len(found(doc)) == 2


def test_shallow_checkout_scans_what_is_there_and_says_how_to_fetch(
    history: dict[str, Any],
) -> None:
    h = history
    remote = h["tmp"] / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(h["repo"]), str(remote)], check=True)
    shallow = h["tmp"] / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", "-b", "feature", remote.as_uri(), str(shallow)],
        check=True,
    )
    ev = event(
        h["tmp"],
        {"number": 1, "pull_request": {"base": {"sha": h["c1"]}, "head": {"sha": h["c2"]}}},
    )
    code, doc, err = keyscan_ci(
        shallow, GITHUB_ACTIONS="true", GITHUB_EVENT_NAME="pull_request", GITHUB_EVENT_PATH=ev
    )
    # The tip's tree holds both files: both keys are found, with the advice to fetch more.
    assert code == 1
    assert fingerprint_of(h["k2"]) in found(doc)
    assert "fetch-depth: 0" in err
    assert "base commit not in the checkout" in err
    assert any("fetch-depth: 0" in w for w in doc["scan"]["warnings"])


def test_ci_honours_baseline_and_sarif(history: dict[str, Any]) -> None:
    h = history
    base = h["tmp"] / "b.json"
    proc = subprocess.run(
        [sys.executable, "-m", "keyscan", "baseline", "create", "--git", "--file", str(base)],
        cwd=h["repo"],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 entries" in proc.stdout
    code, doc, _ = keyscan_ci(h["repo"], "--baseline", str(base))
    assert code == 0 and doc["scan"]["suppressed"] == 2


# --------------------------------------------------------------------------------------------
# action.yml


def action() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text())
    return doc


def test_action_is_a_composite_action_with_no_input_injection() -> None:
    doc = action()
    assert doc["runs"]["using"] == "composite"
    assert {"format", "sarif-file", "args"} <= set(doc["inputs"])
    assert "version" not in doc["inputs"]  # never installed from PyPI by name
    for step in doc["runs"]["steps"]:
        if "run" in step:
            assert step["shell"] == "bash"
            assert "${{" not in step["run"], f"inputs pasted into a script: {step['name']}"


def test_action_scan_step_runs(history: dict[str, Any]) -> None:
    """Run the action's Scan step script as the runner would (keyscan on PATH)."""
    h = history
    [step] = [s for s in action()["runs"]["steps"] if s.get("id") == "scan"]
    out = h["tmp"] / "gh_output"
    out.write_text("")
    sarif = h["tmp"] / "k.sarif"
    ev = event(
        h["tmp"],
        {"number": 2, "pull_request": {"base": {"sha": h["c1"]}, "head": {"sha": h["c2"]}}},
    )
    env = clean_env(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        GITHUB_ACTIONS="true",
        GITHUB_EVENT_NAME="pull_request",
        GITHUB_EVENT_PATH=ev,
        GITHUB_OUTPUT=str(out),
        KEYSCAN_FORMAT="github",
        KEYSCAN_SARIF=str(sarif),
        KEYSCAN_ARGS="--min-confidence low",
        KEYSCAN_FAIL="true",
    )
    if not (Path(sys.executable).parent / "keyscan").exists():
        pytest.skip("the keyscan script is not installed beside this Python")
    proc = subprocess.run(
        ["bash", "-c", step["run"]], cwd=h["repo"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 1, proc.stderr
    assert "exit-code=1" in out.read_text()
    assert proc.stdout.startswith("::error file=new.py,line=1")
    doc = json.loads(sarif.read_text())
    assert len(doc["runs"][0]["results"]) == 1
    assert h["k2"] not in proc.stdout + sarif.read_text()
    env["KEYSCAN_FAIL"] = "false"
    proc = subprocess.run(
        ["bash", "-c", step["run"]], cwd=h["repo"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0
