"""The pre-commit hook never passes having checked nothing, and says what it did not check.

Under the REAL pre-commit framework with the project's own .pre-commit-hooks.yaml (as
tests/test_hooks.py installs it): `pre-commit run --all-files` (what pre-commit.ci runs) with
nothing staged must fail on a key committed in HEAD; the files pre-commit passes are what is
scanned. Malformed pre-push input is an error, not an empty scan.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from keyscan.keygen import key
from keyscan.models import redact
from tests.test_hooks import BIN, Repo, make_repo, manifest


def install(repo: Repo, **override: Any) -> None:
    """keyscan's hooks as shipped (``language: system`` and this venv's keyscan), with
    ``override`` on every hook, as a user's .pre-commit-config.yaml would set it."""
    hooks = []
    for hook in manifest():
        program, _, args = hook["entry"].partition(" ")
        hooks.append({**hook, "entry": f"{BIN / program} {args}", "language": "system",
                      **override})  # fmt: skip
    repo.write(
        ".pre-commit-config.yaml", yaml.safe_dump({"repos": [{"repo": "local", "hooks": hooks}]})
    )
    repo.git("add", ".pre-commit-config.yaml")
    repo.git("commit", "-qm", "hooks")
    repo.run(sys.executable, "-m", "pre_commit", "install", "-t", "pre-commit", "-t", "pre-push")


def pre_commit(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    return repo.run(sys.executable, "-m", "pre_commit", "run", "keyscan", *args, check=False)


def commit_key(repo: Repo, name: str = "settings.py") -> str:
    secret = key("project")
    repo.write(name, f'OPENAI_API_KEY = "{secret}"\n')
    repo.git("add", name)
    repo.git("commit", "-qm", "a key", "--no-verify")
    return secret


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    repo = make_repo(tmp_path)
    install(repo)
    return repo


def test_all_files_fails_on_a_key_in_head(repo: Repo) -> None:
    """pre-commit.ci: `pre-commit run --all-files`, nothing staged, no range."""
    secret = commit_key(repo)
    assert repo.git("diff", "--cached", "--name-only").stdout == ""  # nothing staged
    proc = pre_commit(repo, "--all-files")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Failed" in out and "Passed" not in out
    assert redact(secret) in out and secret not in out
    assert "settings.py:1:19" in out


def test_all_files_passes_a_clean_tree_having_scanned_it(repo: Repo) -> None:
    repo.write("app.py", "import os\nKEY = os.environ['OPENAI_API_KEY']\n")
    repo.git("add", "app.py")
    repo.git("commit", "-qm", "clean", "--no-verify")
    proc = pre_commit(repo, "--all-files", "--verbose")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "no OpenAI keys found (3 files" in out  # README, app.py, .pre-commit-config.yaml


def test_files_named_on_the_command_line_are_scanned(repo: Repo) -> None:
    secret = commit_key(repo, "ops.py")
    proc = pre_commit(repo, "--files", "ops.py")
    assert proc.returncode == 1 and redact(secret) in proc.stdout + proc.stderr
    proc = pre_commit(repo, "--files", "README")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_all_files_sees_the_staged_content_of_a_partly_staged_file(repo: Repo) -> None:
    """--all-files does not stash: a key staged, then removed from the work tree only, is
    what would be committed, and is found."""
    secret = key("svcacct")
    repo.write("a.py", f'x = "{secret}"\n')
    repo.git("add", "a.py")
    repo.write("a.py", "x = 2\n")
    proc = pre_commit(repo, "--all-files")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert redact(secret) in out and "a.py:1:6" in out


def test_a_commit_scans_its_staged_file_once(repo: Repo) -> None:
    """During a commit pre-commit passes the staged files; the file and its staged content are
    the same bytes: one location, not two."""
    secret = key("project")
    repo.write("settings.py", f'K = "{secret}"\n')
    repo.git("add", "settings.py")
    proc = repo.git("commit", "-m", "key", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "1 secret in 1 location (1 file" in out


def test_pass_filenames_false_with_all_files_never_passes(tmp_path: Path) -> None:
    """A configuration that withholds the file names: nothing staged means nothing was
    checked, which is an error, never a pass."""
    repo = make_repo(tmp_path)
    install(repo, pass_filenames=False)
    commit_key(repo)
    proc = pre_commit(repo, "--all-files")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "exit code: 2" in out, out  # pre-commit says 1 for any
    assert "Passed" not in out
    assert "nothing to scan" in out and "no OpenAI keys found" not in out


def test_direct_run_with_nothing_staged_says_so(repo: Repo) -> None:
    commit_key(repo)
    proc = repo.run(str(BIN / "keyscan"), "hook", "pre-commit", check=False)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "nothing to scan" in lines[0], proc.stderr
    assert proc.stdout == ""  # no "no OpenAI keys found": nothing was checked


def test_an_empty_commit_says_it_checked_nothing_and_goes_through(repo: Repo) -> None:
    before = repo.head()
    proc = repo.git("commit", "--allow-empty", "-m", "empty", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert repo.head() != before
    # As git runs its hooks (GIT_INDEX_FILE set): one line saying nothing was checked.
    proc = subprocess.run(
        [str(BIN / "keyscan"), "hook", "pre-commit"], cwd=repo.path,
        env={**repo.env, "GIT_INDEX_FILE": str(repo.path / ".git" / "index")},
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0
    assert proc.stdout == "" and "no OpenAI keys found" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "nothing to scan" in lines[0] and "no file checked" in lines[0]


@pytest.mark.parametrize(
    "stdin",
    [
        "garbage\n",
        "refs/heads/main {local} refs/heads/main\n",  # three fields
        "refs/heads/main {local} refs/heads/main not-a-sha\n",
        "refs/heads/main {short} refs/heads/main {zero}\n",  # abbreviated id
        "refs/heads/main {local} refs/heads/main {zero} extra\n",
    ],
)
def test_malformed_pre_push_input_is_an_error(repo: Repo, stdin: str) -> None:
    commit_key(repo)
    local = repo.head()
    text = stdin.format(local=local, short=local[:12], zero="0" * 40)
    proc = subprocess.run(
        [str(BIN / "keyscan"), "hook", "pre-push"],
        input=text, cwd=repo.path, env=repo.env, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("keyscan: error: pre-push input"), lines
    assert proc.stdout == ""


def test_well_formed_pre_push_input_still_scans(repo: Repo) -> None:
    secret = commit_key(repo)
    text = f"refs/heads/main {repo.head()} refs/heads/main {'0' * 40}\n"
    proc = subprocess.run(
        [str(BIN / "keyscan"), "hook", "pre-push"],
        input=text, cwd=repo.path, env=repo.env, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 1 and redact(secret) in proc.stdout
