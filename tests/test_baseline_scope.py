"""``keyscan baseline``: create leaves the repository so that plain scans use the baseline, and
prune scans the scope the baseline was made from (issue 12, "Output people act on").

Real git repositories in temp dirs, the CLI in subprocesses.
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
from tests.git_helpers import Repo

BASE = ".keyscan-baseline.json"


def keyscan(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "GITLAB", "CI_", "RUNNER_", "PRE_COMMIT", "GIT_"))
        and k not in ("CI",)
    }
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        cwd=cwd, capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def ok(proc: subprocess.CompletedProcess[str], code: int = 0) -> str:
    assert proc.returncode == code, proc.stdout + proc.stderr
    return proc.stdout


def entries(path: Path) -> set[str]:
    return {e["fingerprint"] for e in json.loads(path.read_text())["findings"]}


def reported(cwd: Path, *args: str) -> tuple[int, set[str]]:
    proc = keyscan(cwd, *args, "-f", "json")
    assert proc.returncode in (0, 1), proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return proc.returncode, {f["fingerprint"] for f in doc["findings"]}


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "work")
    r.commit("init", ("README", "hello\n"))
    return r


# --------------------------------------------------------------------------------------------
# create: the next plain scan and git use the baseline


def test_create_then_plain_scan_and_git_use_the_baseline(repo: Repo) -> None:
    old = key("project")
    repo.commit("legacy", ("app/settings.py", f'KEY = "{old}"\n'))
    out = ok(keyscan(repo.path, "baseline", "create"))
    assert f"created .keyscan.yaml with `baseline: {BASE}`" in out
    assert (repo.path / ".keyscan.yaml").read_text().endswith(f"baseline: {BASE}\n")
    assert old not in (repo.path / ".keyscan.yaml").read_text() + (repo.path / BASE).read_text()
    # Plain scans, no option: the baselined key no longer fails them.
    assert reported(repo.path, "scan") == (0, set())
    assert reported(repo.path, "git") == (0, set())
    assert ok(keyscan(repo.path, "scan")).startswith("keyscan: no OpenAI keys found")
    # From a subfolder too (the config is found at the repository root).
    (repo.path / "app" / "sub").mkdir()
    assert reported(repo.path / "app" / "sub", "scan", "..") == (0, set())
    # A new key fails both.
    new = key("svcacct")
    repo.write("app/new.py", f'NEW = "{new}"\n')
    assert reported(repo.path, "scan") == (1, {fingerprint_of(new)})
    repo.git("add", "app/new.py")
    repo.git("commit", "-qm", "new key")
    assert reported(repo.path, "git") == (1, {fingerprint_of(new)})


def test_create_from_history_then_plain_git_uses_it(repo: Repo) -> None:
    old = key("project")
    repo.commit("legacy", ("old.py", f'KEY = "{old}"\n'))
    repo.rm("old.py")
    repo.commit("remove")
    assert reported(repo.path, "git") == (1, {fingerprint_of(old)})
    ok(keyscan(repo.path, "baseline", "create", "--git"))
    assert reported(repo.path, "git") == (0, set())
    new = key("project")
    repo.commit("new", ("n.py", f'N = "{new}"\n'))
    assert reported(repo.path, "git") == (1, {fingerprint_of(new)})


def test_create_adds_the_line_to_an_existing_config(repo: Repo) -> None:
    old = key("project")
    repo.write("a.py", f'KEY = "{old}"\n')
    config = "# ours\nexclude: [vendor]\n"
    repo.write(".keyscan.yaml", config)
    out = ok(keyscan(repo.path, "baseline", "create"))
    assert f"added `baseline: {BASE}` to" in out
    assert (repo.path / ".keyscan.yaml").read_text() == f"{config}baseline: {BASE}\n"
    assert reported(repo.path, "scan") == (0, set())


def test_create_prints_the_one_step_when_it_cannot_edit_the_config(repo: Repo) -> None:
    old = key("project")
    repo.write("a.py", f'KEY = "{old}"\n')
    # A flow mapping: appending a line would break it. The file is left as it was.
    config = "{exclude: [vendor]}"
    repo.write(".keyscan.yaml", config)
    out = ok(keyscan(repo.path, "baseline", "create"))
    assert f"put `baseline: {BASE}` in" in out and f"--baseline {BASE}" in out
    assert (repo.path / ".keyscan.yaml").read_text() == config
    assert reported(repo.path, "scan", "--baseline", BASE) == (0, set())
    # --no-config: nothing is written, the step is said.
    (repo.path / ".keyscan.yaml").unlink()
    out = ok(keyscan(repo.path, "baseline", "create", "--force", "--no-config"))
    assert f"scans use this baseline with --baseline {BASE}" in out
    assert not (repo.path / ".keyscan.yaml").exists()
    # A baseline outside the repository: the step, no config pointing outside.
    outside = repo.path.parent / "b.json"
    out = ok(keyscan(repo.path, "baseline", "create", "--file", str(outside)))
    assert f"--baseline {outside}" in out and not (repo.path / ".keyscan.yaml").exists()


# --------------------------------------------------------------------------------------------
# prune: the recorded scope


def test_prune_keeps_a_key_still_in_history(repo: Repo) -> None:
    old = key("project")
    repo.commit("legacy", ("old.py", f'KEY = "{old}"\n'))
    repo.rm("old.py")
    repo.commit("remove")  # gone from the work tree, still in history
    ok(keyscan(repo.path, "baseline", "create", "--git"))
    doc = json.loads((repo.path / BASE).read_text())
    assert doc["scope"] == [{"kind": "git", "repo": "."}]
    out = ok(keyscan(repo.path, "baseline", "prune"))
    assert "1 entry; 0 pruned" in out
    assert entries(repo.path / BASE) == {fingerprint_of(old)}
    assert reported(repo.path, "git") == (0, set())


def test_prune_scans_the_recorded_paths_wherever_it_runs(repo: Repo) -> None:
    one, two = key("project"), key("project")
    repo.write("src/a.py", f'ONE = "{one}"\n')
    repo.write("src/b.py", f'TWO = "{two}"\n')
    (repo.path / "docs").mkdir()
    ok(keyscan(repo.path, "baseline", "create", "src"))
    assert json.loads((repo.path / BASE).read_text())["scope"] == [
        {"kind": "files", "paths": ["src"]}
    ]
    # Run from another folder: the recorded scope (src), not the current folder, is scanned.
    assert "2 entries; 0 pruned" in ok(keyscan(repo.path / "docs", "baseline", "prune"))
    # A key really gone from the scope is still pruned.
    repo.write("src/b.py", "TWO = os.environ['KEY']\n")
    assert "1 entry; 1 pruned" in ok(keyscan(repo.path / "docs", "baseline", "prune"))
    assert entries(repo.path / BASE) == {fingerprint_of(one)}


def test_update_adds_its_scope_and_prune_scans_every_scope(repo: Repo) -> None:
    one, two = key("project"), key("admin")
    repo.write("src/a.py", f'ONE = "{one}"\n')
    repo.write("lib/b.py", f'TWO = "{two}"\n')
    ok(keyscan(repo.path, "baseline", "create", "src"))
    ok(keyscan(repo.path, "baseline", "update", "lib"))
    scopes = json.loads((repo.path / BASE).read_text())["scope"]
    assert scopes == [{"kind": "files", "paths": ["lib"]}, {"kind": "files", "paths": ["src"]}]
    # prune with a narrower PATH still scans the recorded scopes: nothing is dropped.
    assert "2 entries; 0 pruned" in ok(keyscan(repo.path, "baseline", "prune", "src"))
    assert entries(repo.path / BASE) == {fingerprint_of(one), fingerprint_of(two)}


def test_a_bad_scope_is_one_clear_error(repo: Repo) -> None:
    repo.write("a.py", "x = 1\n")
    (repo.path / BASE).write_text('{"version": 1, "findings": [], "scope": [{"kind": "x"}]}')
    proc = keyscan(repo.path, "baseline", "prune")
    assert proc.returncode == 2 and proc.stdout == ""
    [line] = proc.stderr.splitlines()
    assert line.startswith("keyscan: error: ") and "scope[0]" in line
