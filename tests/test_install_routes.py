"""The install routes the README gives work as written and never fetch someone else's code:
the distribution name, the pinned pre-commit and Action snippets, the Action's install step."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_distribution_name_is_not_the_taken_pypi_name() -> None:
    try:
        import tomllib
    except ImportError:  # Python 3.10: what the install made of pyproject.toml
        from importlib.metadata import distribution

        dist = distribution("keyscan-openai")
        assert dist.metadata["Name"] == "keyscan-openai"
        scripts = {e.name: e.value for e in dist.entry_points if e.group == "console_scripts"}
        assert scripts["keyscan"].startswith("keyscan")
        return
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert doc["project"]["name"] == "keyscan-openai"
    assert doc["project"]["scripts"]["keyscan"].startswith("keyscan")


def test_readme_never_tells_anyone_to_pip_install_keyscan() -> None:
    for line in README.splitlines():
        # keyscan, keyscan==1, 'keyscan[dask]', "keyscan>=..." by name: the taken PyPI project.
        if re.search(r"pip install (-U |--upgrade )?['\"]?keyscan(?![-\w/.])", line):
            assert "Never" in line or "never" in line, line
    assert "pip install ./keyscan" in README or "pip install ." in README


def _snippet_sha(pattern: str) -> str:
    m = re.search(pattern, README)
    assert m, pattern
    return m.group(1)


def test_pre_commit_snippet_pins_a_commit_and_its_hook_ids_exist() -> None:
    block = README.split("# .pre-commit-config.yaml", 1)[1].split("```", 1)[0]
    doc = yaml.safe_load(block)
    [repo] = doc["repos"]
    assert re.fullmatch(r"[0-9a-f]{40}", str(repo["rev"])), "pin a commit until a tag exists"
    ids = {h["id"] for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert {h["id"] for h in repo["hooks"]} <= ids
    _pinned_commit_has(repo["rev"], ".pre-commit-hooks.yaml", [h["id"] for h in repo["hooks"]])


def test_action_snippet_pins_a_commit() -> None:
    sha = _snippet_sha(r"uses: keyscan/keyscan@(\S+)")
    assert re.fullmatch(r"[0-9a-f]{40}", sha)
    _pinned_commit_has(sha, "action.yml", ["GITHUB_ACTION_PATH"])
    assert "v0.1.0" not in README


def _pinned_commit_has(sha: str, path: str, needles: list[str]) -> None:
    """The pinned commit is in this repository's history and its file holds ``needles``."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    proc = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{sha}:{path}"], capture_output=True, text=True
    )
    assert proc.returncode == 0, f"{sha} is not a commit of this repository: {proc.stderr}"
    for needle in needles:
        assert needle in proc.stdout


def test_action_install_step_uses_its_own_checkout(tmp_path: Path) -> None:
    """Run the Install step as a runner would, with a stand-in python/pip that records what
    would be installed."""
    doc = yaml.safe_load((ROOT / "action.yml").read_text())
    assert "version" not in doc["inputs"]
    [step] = [s for s in doc["runs"]["steps"] if s.get("name") == "Install keyscan"]
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "pip.log"
    fake_python = bindir / "python"
    fake_python.write_text(
        "#!/bin/sh\n"
        '[ "$1" = "-m" ] && [ "$2" = "venv" ] || exit 9\n'
        'mkdir -p "$3/bin"\n'
        f'printf \'#!/bin/sh\\necho "$@" >> {log}\\n\' > "$3/bin/pip"\n'
        'chmod +x "$3/bin/pip"\n'
    )
    fake_python.chmod(0o755)
    action_path = tmp_path / "action checkout"
    action_path.mkdir()
    gh_path = tmp_path / "gh_path"
    env = {
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "RUNNER_TEMP": str(tmp_path / "runner"),
        "GITHUB_ACTION_PATH": str(action_path),
        "GITHUB_PATH": str(gh_path),
        "HOME": str(tmp_path),
    }
    (tmp_path / "runner").mkdir()
    proc = subprocess.run(["bash", "-c", step["run"]], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().split() == ["install", "-q", str(action_path).split()[0],
                                       *str(action_path).split()[1:]]  # fmt: skip
    assert gh_path.read_text().strip().endswith("keyscan-venv/bin")


def test_action_scan_step_runs_one_scan_for_both_reports(tmp_path: Path) -> None:
    """format junit plus a SARIF file: one keyscan run, the JUnit report on the log, SARIF
    in the file, and an error is not hidden."""
    from keyscan.keygen import key
    from tests.test_hooks import env_for

    doc = yaml.safe_load((ROOT / "action.yml").read_text())
    [step] = [s for s in doc["runs"]["steps"] if s.get("id") == "scan"]
    env = env_for(tmp_path)
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=env)
    (repo / "a.env").write_text(f"K={key('project')}\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "k"], cwd=repo, check=True, env=env)
    calls = tmp_path / "calls"
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    real = Path(sys.executable).parent / "keyscan"
    (wrapper / "keyscan").write_text(f'#!/bin/sh\necho x >> {calls}\nexec {real} "$@"\n')
    (wrapper / "keyscan").chmod(0o755)
    out = tmp_path / "gh_output"
    out.write_text("")
    sarif = tmp_path / "k.sarif"
    env.update(
        PATH=f"{wrapper}{os.pathsep}{env['PATH']}", GITHUB_OUTPUT=str(out),
        KEYSCAN_FORMAT="junit", KEYSCAN_SARIF=str(sarif), KEYSCAN_ARGS="--full",
        KEYSCAN_FAIL="true",
    )  # fmt: skip
    proc = subprocess.run(["bash", "-c", step["run"]], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert len(calls.read_text().split()) == 1
    assert proc.stdout.lstrip().startswith("<?xml") and "<testsuites" in proc.stdout
    import json

    assert len(json.loads(sarif.read_text())["runs"][0]["results"]) == 1
    assert "exit-code=1" in out.read_text()
    # An error is shown and fails the step (exit 2).
    env["KEYSCAN_SARIF"] = str(tmp_path / "nonexistent" / "k.sarif")
    proc = subprocess.run(["bash", "-c", step["run"]], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "SARIF report not written" in proc.stderr
