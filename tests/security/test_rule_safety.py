"""A user rule that backtracks catastrophically is refused when loaded, with one line naming
its file, its id and why; it never gets to hang a scan."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keyscan.regexlint import check_linear
from keyscan.rules import RuleError, load_rules

RULE = """
rules:
  - id: {rid}
    description: a user rule
    family: unknown
    confidence: medium
    keywords: ["acme_"]
    regex: '{regex}'
"""
EXPONENTIAL = "(?P<secret>acme_(?:[a-z]+)+!)"
QUADRATIC = r"(?P<secret>acme_\w+\w+!)"
LINEAR = "(?P<secret>acme_[a-f0-9]{32})"


def rules_dir(tmp_path: Path, regex: str, rid: str = "acme-token") -> Path:
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / "acme.yaml").write_text(RULE.format(rid=rid, regex=regex))
    return folder


def keyscan(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSCAN_")}
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args], cwd=cwd, capture_output=True, text=True,
        env=env, timeout=timeout,
    )


def test_catastrophic_user_rule_is_refused_not_run(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, EXPONENTIAL)
    # A file that would keep the old engine busy for 2**40 steps.
    (tmp_path / "victim.txt").write_text("acme_" + "a" * 40 + "\n")
    started = time.monotonic()
    proc = keyscan(tmp_path, "scan", "victim.txt", "--no-config", "--rules", str(folder))
    assert time.monotonic() - started < 30
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(
        f"keyscan: error: {folder / 'acme.yaml'}: rule acme-token: regex refused: "
        "catastrophic backtracking"
    )


def test_config_rules_folder_is_checked_too(tmp_path: Path) -> None:
    rules_dir(tmp_path, EXPONENTIAL)
    (tmp_path / ".keyscan.yaml").write_text("rules: [rules]\n")
    (tmp_path / "victim.txt").write_text("acme_" + "a" * 40 + "\n")
    proc = keyscan(tmp_path, "scan", "victim.txt")
    assert proc.returncode == 2
    assert "rule acme-token: regex refused: catastrophic backtracking" in proc.stderr


def test_quadratic_user_rule_is_refused(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, QUADRATIC)
    with pytest.raises(RuleError, match="rule acme-token: regex refused: work grows faster"):
        load_rules(extra_dirs=[folder])
    proc = keyscan(tmp_path, "rules", "check", "--rules", str(folder))
    assert proc.returncode == 2 and "regex refused" in proc.stderr


def test_catastrophic_deny_pattern_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "acme.yaml").write_text(
        RULE.format(rid="acme-token", regex=LINEAR) + "    deny: ['^(a|a)*$']\n"
    )
    with pytest.raises(RuleError, match="rule acme-token: deny pattern refused"):
        load_rules(extra_dirs=[folder])


def test_linear_user_rule_is_loaded_and_used(tmp_path: Path) -> None:
    folder = rules_dir(tmp_path, LINEAR)
    (tmp_path / "app.txt").write_text("token = acme_" + "0123456789abcdef" * 2 + "\n")
    proc = keyscan(tmp_path, "scan", "app.txt", "--no-config", "--rules", str(folder))
    assert proc.returncode == 1, proc.stderr
    assert "acme-token" in proc.stdout


def test_shipped_rules_pass_the_load_time_check() -> None:
    """The shipped rules are not checked at load (start-up time): they must pass here."""
    for rule in load_rules():
        assert check_linear(rule.regex, rule.keywords) is None, rule.id
