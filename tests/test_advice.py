"""The next step after a finding fits the situation (issue 12, "Output people act on").

Real git repositories in temp dirs, the CLI in subprocesses, and the fake OpenAI API for the
dead/live cases. No output ever suggests a baseline for a fresh leak.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from keyscan.keygen import key
from keyscan.models import redact
from tests.git_helpers import Repo

NEXT = "Next step:"
NOT_COMMITTED = "Not committed yet: unstage the file"
UNPUSHED = "In commits not pushed yet: rewrite them"
HISTORY = "In git history: revoke the key first"
FILES = "Move the key out of the file"
DEAD = "nothing to revoke or purge"
LIVE = "live key: revoke now"


def env_for(tmp: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "GITLAB", "CI_", "RUNNER_", "PRE_COMMIT", "GIT_"))
        and k not in ("CI", "OPENAI_BASE_URL", "KEYSCAN_CACHE_DIR")
    }
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        NO_COLOR="1",
        XDG_CACHE_HOME=str(tmp / "cache"),
    )
    env.update(extra)
    return env


def keyscan(
    cwd: Path, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        cwd=cwd,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=env_for(cwd.parent, **env),
        timeout=120,
    )


def advice(out: str) -> str:
    """The text after "Next step:" (the end of the text report), lines joined."""
    assert NEXT in out, out
    return " ".join(out.split(NEXT, 1)[1].split())


def assert_no_baseline_advice(out: str) -> None:
    assert "baseline" not in out.lower(), out


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "work")
    r.commit("init", ("README", "hello\n"))
    return r


def test_refused_commit_says_unstage_or_edit_and_no_history_rewrite(repo: Repo) -> None:
    secret = key("project")
    repo.write("settings.py", f'OPENAI_API_KEY = "{secret}"\n')
    repo.git("add", "settings.py")
    proc = keyscan(repo.path, "hook", "pre-commit")
    assert proc.returncode == 1, proc.stderr
    steps = advice(proc.stdout)
    assert NOT_COMMITTED in steps and "git restore --staged" in steps
    assert "environment" in steps
    assert "rebase" not in steps and "rewrite history" not in steps and "amend" not in steps
    assert "revoke" not in steps  # never committed, not verified live: nothing to revoke
    assert_no_baseline_advice(proc.stdout + proc.stderr)
    assert secret not in proc.stdout + proc.stderr and redact(secret) in proc.stdout
    # The files pre-commit passes get the same advice.
    proc = keyscan(repo.path, "hook", "pre-commit", "settings.py")
    assert proc.returncode == 1 and NOT_COMMITTED in advice(proc.stdout)
    assert_no_baseline_advice(proc.stdout)
    # keyscan git --staged is the same situation.
    proc = keyscan(repo.path, "git", "--staged")
    assert proc.returncode == 1 and NOT_COMMITTED in advice(proc.stdout)


def test_refused_push_says_rewrite_the_unpushed_commits(repo: Repo, tmp_path: Path) -> None:
    remote = Repo(tmp_path / "remote.git", bare=True)
    repo.git("remote", "add", "origin", str(remote.path))
    repo.git("push", "-q", "origin", "main")
    old = repo.git("rev-parse", "HEAD")
    secret = key("svcacct")
    new = repo.commit("add key", ("k.py", f'K = "{secret}"\n'))
    line = f"refs/heads/main {new} refs/heads/main {old}\n"
    proc = keyscan(repo.path, "hook", "pre-push", stdin=line)
    assert proc.returncode == 1, proc.stderr
    steps = advice(proc.stdout)
    assert UNPUSHED in steps and "git rebase -i <remote>/<branch>" in steps
    assert "git commit --amend" in steps
    assert "ever pushed or shared, revoke" in steps
    assert NOT_COMMITTED not in steps and HISTORY not in steps
    assert_no_baseline_advice(proc.stdout + proc.stderr)
    # Under the pre-commit framework's pre-push stage (the range in the environment).
    proc = keyscan(
        repo.path, "hook", "pre-commit",
        PRE_COMMIT_FROM_REF=old, PRE_COMMIT_TO_REF=new, PRE_COMMIT_REMOTE_NAME="origin",
    )  # fmt: skip
    assert proc.returncode == 1 and UNPUSHED in advice(proc.stdout)


def test_key_in_history_says_revoke_first_rewrite_only_if_needed(repo: Repo) -> None:
    secret = key("project")
    repo.commit("add key", ("old.py", f'K = "{secret}"\n'))
    repo.rm("old.py")
    repo.commit("remove key")
    for args in (("git",), ("ci",)):
        proc = keyscan(repo.path, *args)
        assert proc.returncode == 1, proc.stderr
        steps = advice(proc.stdout)
        assert HISTORY in steps and "rewrite history only if needed" in steps, args
        assert "keyscan revoke" in steps and "--revoke" in steps
        assert NOT_COMMITTED not in steps and UNPUSHED not in steps
        assert_no_baseline_advice(proc.stdout + proc.stderr)
    # pre-commit run --from-ref/--to-ref in CI (no remote named): pushed commits.
    first = repo.git("rev-list", "--max-parents=0", "HEAD")
    proc = keyscan(
        repo.path, "hook", "pre-commit",
        PRE_COMMIT_FROM_REF=first, PRE_COMMIT_TO_REF=repo.git("rev-parse", "HEAD"),
    )  # fmt: skip
    assert proc.returncode == 1 and HISTORY in advice(proc.stdout)


def test_scan_of_files_ends_with_the_next_step(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "a.py").write_text(f'K = "{key("project")}"\n')
    proc = keyscan(folder, "scan", "--no-config", ".")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.rstrip().splitlines()
    summary = next(i for i, ln in enumerate(lines) if ln.startswith("keyscan: 1 secret"))
    assert lines[summary + 2] == NEXT  # after the summary: the next step ends the output
    steps = advice(proc.stdout)
    assert FILES in steps and "environment" in steps and "revoke" in steps
    assert_no_baseline_advice(proc.stdout)
    # GitHub annotations carry it as one notice.
    proc = keyscan(folder, "scan", "--no-config", "-f", "github", ".")
    notices = [ln for ln in proc.stdout.splitlines() if ln.startswith("::notice")]
    assert len(notices) == 1 and FILES in notices[0] and "next step" in notices[0]
    assert_no_baseline_advice(proc.stdout)


def test_clean_scan_has_no_advice(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    proc = keyscan(tmp_path, "scan", "--no-config", ".")
    assert proc.returncode == 0 and NEXT not in proc.stdout


def test_dead_key_has_nothing_to_revoke_or_purge(
    repo: Repo, fake_state: Any, fake_server: Any
) -> None:
    dead = key("project")
    project = fake_state.add_project("web")
    fake_state.add_key(dead, "deleted", project_id=project.id)
    repo.commit("add key", ("old.py", f'K = "{dead}"\n'))
    proc = keyscan(repo.path, "git", "--verify", "--api-base", fake_server.base_url)
    assert proc.returncode == 1, proc.stderr
    steps = advice(proc.stdout)
    assert "Dead key (verified invalid): nothing to revoke or purge" in steps
    assert HISTORY not in steps and "revoke now" not in steps and "rewrite" not in steps
    assert_no_baseline_advice(proc.stdout + proc.stderr)


def test_live_key_says_revoke_now_and_dead_ones_are_set_apart(
    repo: Repo, fake_state: Any, fake_server: Any
) -> None:
    live, dead = key("project"), key("project")
    project = fake_state.add_project("web")
    fake_state.add_key(live, "live", project_id=project.id)
    fake_state.add_key(dead, "deleted", project_id=project.id)
    repo.commit("add keys", ("a.py", f'A = "{live}"\nB = "{dead}"\n'))
    proc = keyscan(repo.path, "git", "--verify", "--api-base", fake_server.base_url)
    assert proc.returncode == 1, proc.stderr
    steps = advice(proc.stdout)
    assert f"1 {LIVE}" in steps and HISTORY in steps
    assert f"1 dead key (verified invalid): {DEAD} for those" in steps
    assert live not in proc.stdout + proc.stderr
    assert_no_baseline_advice(proc.stdout + proc.stderr)
