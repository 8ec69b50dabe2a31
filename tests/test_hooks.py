"""keyscan's hooks under the real pre-commit framework, in throwaway repositories.

* The fast tests install the hooks of the project's own ``.pre-commit-hooks.yaml`` (every
  field as shipped; only ``language: system`` and the absolute path of this venv's
  ``keyscan``, so no network is needed) with ``pre-commit install``, then commit and push.
* ``test_try_repo_from_the_checkout`` lets pre-commit build its own virtualenv from this
  checkout (``pre-commit try-repo``), exactly as users get it; it needs PyPI.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from keyscan.keygen import key
from keyscan.models import redact

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def env_for(tmp: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "GITLAB", "CI_", "PRE_COMMIT", "GIT_"))
    }
    env.update(
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@t.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@t.invalid",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        PRE_COMMIT_HOME=str(tmp / "pre-commit-home"),
        NO_COLOR="1",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.update(extra)
    return env


class Repo:
    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path = path
        self.env = env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            args, cwd=self.path, capture_output=True, text=True, env=self.env, timeout=600
        )
        if check:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("git", *args, check=check)

    def head(self, ref: str = "HEAD") -> str:
        return self.git("rev-parse", ref).stdout.strip()

    def write(self, name: str, text: str) -> None:
        (self.path / name).write_text(text)


def manifest() -> list[dict[str, Any]]:
    hooks: list[dict[str, Any]] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    return hooks


def make_repo(tmp: Path) -> Repo:
    path = tmp / "work"
    env = env_for(tmp)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=env)
    repo = Repo(path, env)
    repo.write("README", "hello\n")
    repo.git("add", "README")
    repo.git("commit", "-qm", "init")
    return repo


@pytest.fixture
def hooked(tmp_path: Path) -> Repo:
    """A repository with keyscan's hooks (from .pre-commit-hooks.yaml) installed for commit
    and push, and a bare remote ``origin`` holding its first commit."""
    repo = make_repo(tmp_path)
    hooks = []
    for hook in manifest():
        program, _, args = hook["entry"].partition(" ")
        hooks.append({**hook, "entry": f"{BIN / program} {args}", "language": "system"})
    repo.write(
        ".pre-commit-config.yaml", yaml.safe_dump({"repos": [{"repo": "local", "hooks": hooks}]})
    )
    repo.git("add", ".pre-commit-config.yaml")
    repo.git("commit", "-qm", "hooks")
    repo.run(sys.executable, "-m", "pre_commit", "install", "-t", "pre-commit", "-t", "pre-push")
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True, env=repo.env)
    repo.git("remote", "add", "origin", str(remote))
    repo.git("push", "-q", "origin", "main")
    return repo


def test_manifest_and_own_config_are_valid() -> None:
    env = env_for(Path("/nonexistent"))
    for what, name in (("validate-manifest", ".pre-commit-hooks.yaml"),
                       ("validate-config", ".pre-commit-config.yaml")):  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-m", "pre_commit", what, str(ROOT / name)],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
    hooks = {h["id"]: h for h in manifest()}
    assert hooks["keyscan"]["stages"] == ["pre-commit"]
    assert hooks["keyscan-push"]["stages"] == ["pre-push"]
    # The commit hook scans the files pre-commit passes (--all-files too); the push hook
    # scans commits, not files.
    assert hooks["keyscan"]["pass_filenames"] is True
    assert hooks["keyscan-push"]["pass_filenames"] is False
    own = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    local = [r for r in own["repos"] if r["repo"] == "local"]
    assert {h["id"] for r in local for h in r["hooks"]} >= {"keyscan", "keyscan-push"}


def test_commit_with_a_staged_key_is_refused(hooked: Repo) -> None:
    secret = key("project")
    before = hooked.head()
    hooked.write("settings.py", f'OPENAI_API_KEY = "{secret}"\n')
    hooked.git("add", "settings.py")
    proc = hooked.git("commit", "-m", "add settings", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert hooked.head() == before  # no commit was made
    assert redact(secret) in out and "settings.py:1:19" in out
    assert secret not in out
    assert "keyscan:allow" in out and "Not committed yet: unstage the file" in out
    # Never the advice to baseline a fresh leak (issue 12: advice fits the situation).
    assert "keyscan baseline" not in out


def test_clean_commit_passes(hooked: Repo) -> None:
    hooked.write("app.py", "import os\nKEY = os.environ['OPENAI_API_KEY']\n")
    hooked.git("add", "app.py")
    proc = hooked.git("commit", "-m", "clean", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "keyscan (OpenAI keys in staged changes)" in proc.stdout + proc.stderr


def test_exactly_the_staged_content_is_scanned(hooked: Repo) -> None:
    secret = key("svcacct")
    # Staged: clean. Work tree: a key, not staged. The commit holds no key: it passes.
    hooked.write("a.py", "x = 1\n")
    hooked.git("add", "a.py")
    hooked.write("a.py", f'x = "{secret}"\n')
    assert hooked.git("commit", "-m", "clean staged", check=False).returncode == 0
    # Staged: a key. Work tree: cleaned afterwards. The commit would hold the key: refused.
    hooked.git("add", "a.py")
    hooked.write("a.py", "x = 2\n")
    proc = hooked.git("commit", "-m", "key staged", check=False)
    assert proc.returncode != 0 and redact(secret) in proc.stdout + proc.stderr


def test_allow_comment_lets_a_false_positive_through(hooked: Repo) -> None:
    hooked.write("doc.md", f"example: {key('project')}  <!-- keyscan:allow -->\n")
    hooked.git("add", "doc.md")
    assert hooked.git("commit", "-m", "doc", check=False).returncode == 0


def test_push_of_a_key_is_refused(hooked: Repo) -> None:
    secret = key("admin")
    remote_main = hooked.git("ls-remote", "origin", "main").stdout.split()[0]
    hooked.write("ops.py", f'ADMIN = "{secret}"\n')
    hooked.git("add", "ops.py")
    hooked.git("commit", "-qm", "sneaky", "--no-verify")  # skips the pre-commit hook
    hooked.write("more.py", "x = 1\n")
    hooked.git("add", "more.py")
    hooked.git("commit", "-qm", "later clean commit")
    proc = hooked.git("push", "origin", "main", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert redact(secret) in out and secret not in out
    assert hooked.git("ls-remote", "origin", "main").stdout.split()[0] == remote_main


def test_push_of_a_new_branch_scans_only_commits_not_on_the_remote(hooked: Repo) -> None:
    old = key("project")
    # An old key already on the remote (pushed before the hooks existed).
    hooked.write("old.py", f'OLD = "{old}"\n')
    hooked.git("add", "old.py")
    hooked.git("commit", "-qm", "old", "--no-verify")
    hooked.git("push", "-q", "--no-verify", "origin", "main")
    # A new branch with clean commits: pushed, the old key is not the push's business.
    hooked.git("checkout", "-qb", "topic")
    hooked.write("t.py", "y = 1\n")
    hooked.git("add", "t.py")
    hooked.git("commit", "-qm", "topic work")
    proc = hooked.git("push", "origin", "topic", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Another new branch with a key: refused.
    new = key("project")
    hooked.git("checkout", "-qb", "topic2")
    hooked.write("n.py", f'NEW = "{new}"\n')
    hooked.git("add", "n.py")
    hooked.git("commit", "-qm", "key", "--no-verify")
    proc = hooked.git("push", "origin", "topic2", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and redact(new) in out and redact(old) not in out


def test_baseline_in_config_unblocks_known_keys(hooked: Repo) -> None:
    secret = key("project")
    hooked.write("legacy.py", f'K = "{secret}"\n')
    hooked.run(str(BIN / "keyscan"), "baseline", "create", "legacy.py")
    hooked.write(".keyscan.yaml", "baseline: .keyscan-baseline.json\n")
    assert secret not in (hooked.path / ".keyscan-baseline.json").read_text()
    hooked.git("add", "legacy.py", ".keyscan.yaml", ".keyscan-baseline.json")
    proc = hooked.git("commit", "-m", "adopt keyscan", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pre_commit_run_with_a_ref_range_scans_the_range(hooked: Repo) -> None:
    """`pre-commit run --from-ref A --to-ref B` (CI) scans those commits, not the index."""
    start = hooked.head()
    secret = key("project")
    hooked.write("k.py", f'K = "{secret}"\n')
    hooked.git("add", "k.py")
    hooked.git("commit", "-qm", "key", "--no-verify")
    hooked.git("rm", "-q", "k.py")
    hooked.git("commit", "-qm", "gone", "--no-verify")
    proc = hooked.run(
        sys.executable, "-m", "pre_commit", "run", "keyscan",
        "--from-ref", start, "--to-ref", "HEAD", check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and redact(secret) in proc.stdout + proc.stderr
    proc = hooked.run(
        sys.executable, "-m", "pre_commit", "run", "keyscan",
        "--from-ref", "HEAD~1", "--to-ref", "HEAD", check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_plain_git_pre_push_hook_reads_refs_from_stdin(tmp_path: Path) -> None:
    """Without the framework: git's own pre-push hook protocol on stdin."""
    repo = make_repo(tmp_path)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True, env=repo.env)
    repo.git("remote", "add", "origin", str(remote))
    hook = repo.path / ".git" / "hooks" / "pre-push"
    hook.write_text(f'#!/bin/sh\nexec "{BIN / "keyscan"}" hook pre-push\n')
    hook.chmod(0o755)
    repo.git("push", "-q", "origin", "main")
    secret = key("project")
    repo.write("k.py", f'K = "{secret}"\n')
    repo.git("add", "k.py")
    repo.git("commit", "-qm", "key")
    proc = repo.git("push", "origin", "main", check=False)
    assert proc.returncode != 0 and redact(secret) in proc.stdout + proc.stderr


def _pypi_reachable() -> bool:
    try:
        with socket.create_connection(("pypi.org", 443), timeout=3):
            return True
    except OSError:
        return False


def test_try_repo_from_the_checkout(tmp_path: Path) -> None:
    """pre-commit builds its own virtualenv from this checkout (language: python)."""
    if not (ROOT / ".git").exists():
        pytest.skip("the project checkout is not a git repository")
    if not _pypi_reachable():
        pytest.skip("pre-commit try-repo installs keyscan's dependencies from PyPI")
    repo = make_repo(tmp_path)
    secret = key("project")
    repo.write("k.py", f'K = "{secret}"\n')
    repo.git("add", "k.py")
    proc = repo.run(
        sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "keyscan", check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert redact(secret) in out and secret not in out


def test_hook_entry_imports_nothing_heavy(tmp_path: Path) -> None:
    """The pre-commit entry must start fast: no httpx, no GitPython, no sqlite."""
    repo = make_repo(tmp_path)
    repo.write("k.py", f'K = "{key("project")}"\n')
    repo.git("add", "k.py")
    out = tmp_path / "modules.json"
    code = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
        "from keyscan.cli import main\n"
        "main(['hook', 'pre-commit'])\n"
    )
    proc = repo.run(sys.executable, "-c", code, check=False)
    assert proc.returncode == 1, proc.stderr  # it did run, and found the key
    modules = set(json.loads(out.read_text()))
    # The click-free door (keyscan.commands.quick) runs it: by design since issue 16; the
    # staged scan's own entry (keyscan.git.staged), not the history machinery.
    assert "keyscan.commands.quick" in modules and "keyscan.git.staged" in modules
    heavy = {
        "httpx",
        "httpcore",
        "git",
        "sqlite3",
        "anyio",
        "jsonschema",
        "keyscan.verify",
        "tarfile",
        "zipfile",
        "keyscan.formats.archives",
        "hyperscan",
    }
    assert not heavy & modules, sorted(heavy & modules)
